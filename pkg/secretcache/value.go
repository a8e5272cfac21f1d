package secretcache

import (
	"fmt"
	"log/slog"
	"time"
)

// Value is one version of a secret. Its secret part is reached only through
// Bytes and Text; String, GoString, fmt verbs and slog print the version's
// identity only.
type Value struct {
	ARN         string
	Name        string
	VersionID   string
	Stages      []string // the version's stages when it was read
	CreatedDate time.Time
	FetchedAt   time.Time // when the cache read it

	text   string
	binary []byte
}

// NewValue builds a Value, for tests and for sources other than Secrets
// Manager.
func NewValue(arn, versionID string, secret []byte) *Value {
	return &Value{ARN: arn, Name: arn, VersionID: versionID, text: string(secret)}
}

// Bytes returns a copy of the secret: SecretString's bytes, or SecretBinary.
func (v *Value) Bytes() []byte {
	if v.binary != nil {
		return append([]byte(nil), v.binary...)
	}
	return []byte(v.text)
}

// Text returns SecretString (or SecretBinary as a string).
func (v *Value) Text() string {
	if v.binary != nil {
		return string(v.binary)
	}
	return v.text
}

// String names the version, never its value.
func (v *Value) String() string {
	if v == nil {
		return "secretcache.Value(nil)"
	}
	return "secretcache.Value{" + v.ARN + " version " + v.VersionID + " [REDACTED]}"
}

// GoString is String.
func (v *Value) GoString() string { return v.String() }

// Format prints String for every verb. Its receiver is a Value, so that a
// copy (*v) printed with fmt, or logged by slog's text handler, is redacted
// too.
func (v Value) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(v.String())) }

// LogValue logs the identity only.
func (v *Value) LogValue() slog.Value {
	if v == nil {
		return slog.StringValue("nil")
	}
	return slog.GroupValue(slog.String("arn", v.ARN), slog.String("versionId", v.VersionID))
}
