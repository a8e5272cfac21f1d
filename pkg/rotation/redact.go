package rotation

import (
	"encoding/json"
	"sort"
	"strings"
	"sync"

	"github.com/rotation-suite/rotation/pkg/redact"
)

// minSecretLen is the shortest string treated as a secret for redaction;
// shorter leaves (ports, booleans, "postgres") would redact ordinary words.
const minSecretLen = 6

// Redactor replaces known secret strings in text. It learns secrets from
// secret values (every string leaf of a JSON value and the whole value) and
// from strategies (generated passwords, decrypted keys). A printed or logged
// Redactor shows none of them: they are held as redact.String.
type Redactor struct {
	mu      sync.Mutex
	secrets map[redact.String]struct{}
}

// NewRedactor returns an empty Redactor.
func NewRedactor() *Redactor { return &Redactor{secrets: map[redact.String]struct{}{}} }

// Add registers literal secret strings.
func (r *Redactor) Add(secrets ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if len(s) >= minSecretLen {
			r.secrets[redact.NewString(s)] = struct{}{}
		}
	}
}

// AddValue registers a secret value: the whole value and, if it is JSON, every
// string leaf in it except well-known non-secret fields.
func (r *Redactor) AddValue(v []byte) {
	if r == nil || len(v) == 0 {
		return
	}
	r.Add(string(v))
	var doc any
	if json.Unmarshal(v, &doc) == nil {
		r.addLeaves("", doc)
	}
}

// nonSecretFields are JSON keys whose values are identifiers, not secrets;
// redacting them would hide the very names an operator needs in an error.
var nonSecretFields = map[string]bool{
	"engine": true, "host": true, "port": true, "username": true, "dbname": true,
	"masterarn": true, "schemaVersion": true, "kind": true, "keyId": true, "kid": true,
	"alg": true, "kty": true, "crv": true, "use": true, "createdAt": true, "expiresAt": true,
	"notBefore": true, "notAfter": true, "status": true, "prefix": true, "sslmode": true,
	"owner": true, "hash": true, "pepperFingerprint": true, "algorithm": true, "removeAfter": true,
	"userpair": true, "sslservername": true, "sslrootcertpem": true,
	"nonce": true, "publishedAt": true, "activatedAt": true, "retiredAt": true, "handledAt": true,
}

func (r *Redactor) addLeaves(key string, v any) {
	switch t := v.(type) {
	case string:
		if !nonSecretFields[key] {
			r.Add(t)
		}
	case map[string]any:
		for k, c := range t {
			r.addLeaves(k, c)
		}
	case []any:
		for _, c := range t {
			r.addLeaves(key, c)
		}
	}
}

// Redact returns s with every known secret replaced by [REDACTED].
func (r *Redactor) Redact(s string) string {
	if r == nil || s == "" {
		return s
	}
	r.mu.Lock()
	list := make([]string, 0, len(r.secrets))
	for k := range r.secrets {
		list = append(list, k.Reveal())
	}
	r.mu.Unlock()
	// Longest first, so a secret that contains another is replaced whole.
	sort.Slice(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	for _, k := range list {
		if strings.Contains(s, k) {
			s = strings.ReplaceAll(s, k, "[REDACTED]")
		}
	}
	return s
}

// SecretValue is a secret's value. It is redact.Bytes: it prints as
// [REDACTED] in every fmt verb (%x, %q and %#v included), in slog and in
// encoding/json and MarshalText; Bytes returns the value itself. Because it
// is an alias, a SecretValue converts to and from []byte and envelope.Secret
// without copying.
type SecretValue = redact.Bytes
