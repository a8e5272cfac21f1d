// Package redact holds the types that keep a secret out of every output the
// standard library produces: fmt (every verb, %#v included), log/slog (JSON
// and text handlers), encoding/json and encoding.TextMarshaler users. Bytes
// holds binary or JSON secret material, String a secret string. The only way
// to the value is an accessor whose name says so (Bytes.Bytes,
// String.Reveal), so a secret reaches a log, an error or a document only when
// a caller takes it out on purpose.
//
// The package owns the redacting method set and nothing else: it does not
// find secrets inside text (rotation.Redactor does) and it does not clear
// memory. It imports only the standard library, so the consumer libraries
// (pkg/envelope, pkg/apikey) and the rotation engine share it.
//
// Reading JSON into a Bytes decodes base64, as for any []byte; a Bytes never
// writes base64, so a struct holding one cannot round-trip through JSON.
// Stored documents use wire structs with plain fields and copy the value in
// and out on purpose.
//
// A redaction type protects itself, not the struct around it, in two cases
// fmt does not call its methods: when it is reached through an unexported
// field, and when a pointer to the struct holding it is a field printed with
// %s or %q (fmt then prints the pointee with every method switched off). A
// type that holds a secret that way needs a Format of its own;
// internal/redactcheck finds every such type and proves it prints nothing
// secret.
package redact

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Placeholder is what every redacted value prints as.
const Placeholder = "[REDACTED]"

// Bytes is secret binary or JSON material: a secret's value, a plaintext, a
// data key. It converts to and from []byte without copying (it is a []byte),
// so it can be sliced, appended to and cleared with clear(); Bytes returns
// the material as a plain []byte.
type Bytes []byte

// Bytes returns the secret material itself.
func (b Bytes) Bytes() []byte { return b }

// String returns Placeholder.
func (Bytes) String() string { return Placeholder }

// GoString returns Placeholder, for %#v.
func (Bytes) GoString() string { return Placeholder }

// Format writes Placeholder for every verb and flag, %x and %q included.
func (Bytes) Format(f fmt.State, _ rune) { format(f, "") }

// LogValue keeps the material out of slog output.
func (Bytes) LogValue() slog.Value { return slog.StringValue(Placeholder) }

// MarshalJSON writes the JSON string "[REDACTED]", never the material.
func (Bytes) MarshalJSON() ([]byte, error) { return marshalJSON("") }

// MarshalText writes Placeholder, never the material.
func (Bytes) MarshalText() ([]byte, error) { return []byte(Placeholder), nil }

// String is a secret string: a password, an API key. The zero value holds
// no secret. A String may carry a label — a part of the value that is not
// secret, such as an API key's prefix and key id — which its printed form
// shows before Placeholder. It is comparable; two Strings are equal when
// their values and labels are.
type String struct {
	s     string
	label string
}

// NewString wraps the secret s; it prints as Placeholder.
func NewString(s string) String { return String{s: s} }

// NewLabelled wraps the secret s with a label that is not secret; it prints
// as label followed by Placeholder. The caller is responsible for label
// holding nothing secret.
func NewLabelled(s, label string) String { return String{s: s, label: label} }

// Reveal returns the secret string itself.
func (v String) Reveal() string { return v.s }

// IsZero reports whether v holds no secret.
func (v String) IsZero() bool { return v.s == "" }

// Redacted returns the printable form: the label followed by Placeholder.
func (v String) Redacted() string { return v.label + Placeholder }

// String returns the printable form (Redacted).
func (v String) String() string { return v.Redacted() }

// GoString returns the printable form (Redacted), for %#v.
func (v String) GoString() string { return v.Redacted() }

// Format writes the printable form for every verb and flag, %x and %q
// included.
func (v String) Format(f fmt.State, _ rune) { format(f, v.label) }

// LogValue keeps the secret out of slog output.
func (v String) LogValue() slog.Value { return slog.StringValue(v.Redacted()) }

// MarshalJSON writes the printable form as a JSON string, never the secret.
func (v String) MarshalJSON() ([]byte, error) { return marshalJSON(v.label) }

// MarshalText writes the printable form, never the secret.
func (v String) MarshalText() ([]byte, error) { return []byte(v.Redacted()), nil }

func format(w io.Writer, label string) {
	_, _ = io.WriteString(w, label)
	_, _ = io.WriteString(w, Placeholder)
}

// marshalJSON writes label+Placeholder as a JSON string.
func marshalJSON(label string) ([]byte, error) { return json.Marshal(label + Placeholder) }
