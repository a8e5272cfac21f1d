package testenv

import (
	"encoding/json"
	"fmt"
	"io"
)

// String, GoString and LogValue (postgres.go) keep the superuser password
// out of logs; Format covers the fmt verbs that bypass String (%d, %+d…),
// and MarshalJSON keeps it out of JSON. Both take a pointer: a Postgres
// holds a sync.Once and is never copied.

// Format prints String for every verb.
func (p *Postgres) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, p.String()) }

// MarshalJSON writes the server's description (String), never the password.
func (p *Postgres) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }

// Format describes the CA for every verb: with %s or %q fmt would print its
// private key's fields through the pointer.
func (c CA) Format(f fmt.State, _ rune) {
	name := ""
	if c.cert != nil {
		name = c.cert.Subject.CommonName
	}
	_, _ = io.WriteString(f, "testenv.CA{"+name+" key:[REDACTED]}")
}
