package pgstrategy

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/rotation-suite/rotation/pkg/redact"
)

// Login and Secret hold a plaintext password. String and GoString (db.go,
// secret.go) already leave it out; the methods here close the other ways
// out: Format covers every fmt verb (%d and %x of the struct included, which
// bypass String), LogValue covers slog, and MarshalJSON writes the password
// as [REDACTED]. Neither type is ever encoded for storage: a secret's JSON
// is written by Secret.WithCredentials, from the raw fields.

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

// Format prints String for every verb, for a Secret and a *Secret alike.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// LogValue logs where the secret points, never its password or raw fields.
func (s Secret) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", s.Username), slog.String("host", s.Host), slog.Int("port", s.Port), slog.String("db", s.DBName), slog.String("password", redact.Placeholder))
}

// MarshalJSON writes the secret's description (String), never its password
// or raw fields.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }
