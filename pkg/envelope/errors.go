package envelope

import (
	"errors"
	"fmt"

	"github.com/rotation-suite/rotation/pkg/redact"
)

// The error kinds. Every error this package returns is an *Error that
// matches exactly one of them with errors.Is, so callers can fail closed on
// the kind without parsing text. Error texts name fields, lengths, key ids
// and context keys, never plaintext, data keys or context values.
var (
	// ErrAuthentication: the blob does not authenticate — a header or body
	// byte was changed, the encrypted data key belongs to another message or
	// does not open under the named key, or the key commitment does not match.
	ErrAuthentication = errors.New("authentication failed")
	// ErrContextMismatch: the encryption context in the blob is not the one
	// the caller expects (an entry changed, added or removed).
	ErrContextMismatch = errors.New("encryption context mismatch")
	// ErrKeyNotAllowed: the blob names a key or provider this Envelope may not
	// decrypt with; no call was made to the key provider.
	ErrKeyNotAllowed = errors.New("key not allowed")
	// ErrUnsupportedVersion: the blob's format version is not one this
	// package reads.
	ErrUnsupportedVersion = errors.New("unsupported format version")
	// ErrMalformed: the blob or its text form cannot be parsed (truncated,
	// trailing bytes, a length over its limit, a non-canonical context), or an
	// argument is invalid (an oversized plaintext or context).
	ErrMalformed = errors.New("malformed")
	// ErrProvider: the key provider failed for a reason that is not about the
	// blob — KMS unreachable, throttled after the SDK's retries, access denied,
	// key disabled. The chain holds an *extcall.Error with the class.
	ErrProvider = errors.New("key provider failed")
)

// Error is the error type of this package.
type Error struct {
	Kind   error  // one of the Err* values above
	Op     string // "encrypt", "decrypt", "rewrap", "parse", "decode-text", "kms:Decrypt", …
	Detail string // what failed, without secrets
	Cause  error  // underlying error, when there is one (never holds secrets)
}

func (e *Error) Error() string {
	s := "envelope " + e.Op + ": " + e.Kind.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap exposes the kind and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

func newErr(kind error, op, format string, args ...any) *Error {
	return &Error{Kind: kind, Op: op, Detail: fmt.Sprintf(format, args...)}
}

// Secret is plaintext or key material. It is redact.Bytes: it prints as
// [REDACTED] in every fmt verb (%x, %q and %#v included), in slog, in
// encoding/json and MarshalText. It is a []byte, so pass it where a []byte
// is expected (no conversion needed) to use the bytes, or call Bytes; encode
// []byte(s) to write the bytes on purpose. Clear it with clear() when done.
type Secret = redact.Bytes
