package rotation

import (
	"fmt"
	"io"
	"time"

	"github.com/rotation-suite/rotation/pkg/redact"
)

// The request types hold versions with their values, and a Redactor. A
// SecretValue formats itself as [REDACTED], but fmt prints the pointee of a
// pointer field for %s and %q (its "%!s(*Version=&{…})" form) with every
// method switched off, which would show the value's bytes. So each request
// formats itself, for every verb: the secret's ARN, the token, the version
// ids and the time, never a value.

// Format describes the request without any value.
func (r CreateRequest) Format(f fmt.State, _ rune) {
	formatRequest(f, "CreateRequest", r.Secret, r.Token, r.Now, "Current", r.Current)
}

// Format describes the request without any value.
func (r SetRequest) Format(f fmt.State, _ rune) {
	formatRequest(f, "SetRequest", r.Secret, r.Token, r.Now, "Current", r.Current, "Pending", r.Pending)
}

// Format describes the request without any value.
func (r TestRequest) Format(f fmt.State, _ rune) {
	formatRequest(f, "TestRequest", r.Secret, r.Token, r.Now, "Current", r.Current, "Pending", r.Pending)
	if r.ConfigTest {
		_, _ = io.WriteString(f, " (configuration test)")
	}
}

// Format describes the request without any value.
func (r FinishRequest) Format(f fmt.State, _ rune) {
	formatRequest(f, "FinishRequest", r.Secret, r.Token, r.Now, "Current", r.Current, "Previous", r.Previous)
}

// formatRequest writes rotation.<name>{Secret:<arn> Token:<token>
// <label>:<version id>… Now:<time>}; versions alternates labels and
// *Version.
func formatRequest(w io.Writer, name string, info SecretInfo, token string, now time.Time, versions ...any) {
	_, _ = fmt.Fprintf(w, "rotation.%s{Secret:%s Token:%s", name, info.ARN, token)
	for i := 0; i+1 < len(versions); i += 2 {
		id := "<nil>"
		if v, _ := versions[i+1].(*Version); v != nil {
			id = v.ID
		}
		_, _ = fmt.Fprintf(w, " %s:%s", versions[i], id)
	}
	_, _ = fmt.Fprintf(w, " Now:%s}", now.Format(time.RFC3339))
}

// Format keeps the registered secrets out of every fmt verb. A Redactor
// holds a lock and is used through a pointer.
func (r *Redactor) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, "rotation.Redactor{"+redact.Placeholder+"}")
}
