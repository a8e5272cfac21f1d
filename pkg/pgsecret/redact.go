package pgsecret

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/rotation-suite/rotation/pkg/redact"
)

// A Secret holds a plaintext password. String and GoString leave it out;
// the methods here close the other ways out: Format covers every fmt verb
// (%d and %x of the struct included, which bypass String), LogValue covers
// slog, and MarshalJSON writes the description, never the password or the
// raw fields. A Secret is never encoded for storage: WithCredentials writes
// a secret's JSON from its raw fields. A type that embeds Secret gets the
// same methods.

// Format prints String for every verb, for a Secret and a *Secret alike.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, (&s).String()) }

// LogValue logs where the secret points, never its password or raw fields.
func (s Secret) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", s.Username), slog.String("host", s.Host), slog.Int("port", s.Port),
		slog.String("db", s.DBName), slog.String("password", redact.Placeholder))
}

// MarshalJSON writes the secret's description (String).
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal((&s).String()) }
