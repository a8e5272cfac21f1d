package pgstrategy

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/rotation-suite/rotation/pkg/redact"
)

// Login holds a plaintext password. String and GoString (db.go) already
// leave it out; the methods here close the other ways out: Format covers
// every fmt verb (%d and %x of the struct included, which bypass String),
// LogValue covers slog, and MarshalJSON writes the password as [REDACTED].
// A Login is never encoded for storage. Secret gets the same methods from
// the pgsecret.Secret it embeds.

// Format prints String for every verb.
func (l Login) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, l.String()) }

// LogValue logs the user, never the password.
func (l Login) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", l.User), slog.Bool("admin", l.Admin), slog.String("password", redact.Placeholder))
}

// MarshalJSON writes the login with the password redacted.
func (l Login) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		User     string
		Password redact.String
		Admin    bool
	}{l.User, redact.NewString(l.Password), l.Admin})
}
