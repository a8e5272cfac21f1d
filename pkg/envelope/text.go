package envelope

import (
	"context"
	"encoding/base64"
	"strings"
)

// TextPrefix starts the text form of a version-1 blob, TextPrefix2 that of
// a version-2 blob: the prefix, then the blob in unpadded base64url. The
// text form fits JSON strings, text columns and environment variables
// without escaping.
const (
	TextPrefix  = "env1:"
	TextPrefix2 = "env2:"
)

var b64 = base64.RawURLEncoding.Strict()

// maxTextLen is the longest text form of a well-formed blob.
var maxTextLen = len(TextPrefix2) + b64.EncodedLen(MaxBlobSize2)

// EncodeText returns the text form of blob ("env2:…" for a version-2 blob,
// "env1:…" otherwise).
func EncodeText(blob []byte) string {
	prefix := TextPrefix
	if len(blob) > 0 && blob[0] == Version2 {
		prefix = TextPrefix2
	}
	buf := make([]byte, len(prefix)+b64.EncodedLen(len(blob)))
	copy(buf, prefix)
	b64.Encode(buf[len(prefix):], blob)
	return string(buf)
}

// HasEnvelopePrefix reports whether s starts like the text form of some
// envelope version: "env", one or more ASCII digits, ":". It is the rule
// that tells "not an envelope" from "an envelope, possibly damaged"
// (docs/envelope-format.md §11): a value with the prefix is always treated
// as an envelope, so a damaged ciphertext is never mistaken for plaintext.
func HasEnvelopePrefix(s string) bool {
	return envelopePrefixLen(s) > 0
}

func envelopePrefixLen(s string) int {
	if !strings.HasPrefix(s, "env") {
		return 0
	}
	i := 3
	for i < len(s) && i < 12 && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	if i == 3 || i >= len(s) || s[i] != ':' {
		return 0
	}
	return i + 1
}

// DecodeText returns the blob of a text form. It checks the prefix and the
// length before decoding, and that the blob's version byte is the prefix's;
// the blob itself is checked by Decrypt or ParseHeader. A value without an
// envelope prefix (HasEnvelopePrefix) fails with an error matching both
// ErrMalformed and ErrNotEnvelope; every other failure means an envelope
// that is damaged, or not one this package reads.
func DecodeText(s string) ([]byte, error) {
	n := envelopePrefixLen(s)
	if n == 0 {
		return nil, &Error{Kind: ErrMalformed, Op: "decode-text", Detail: "text has no envelope prefix (" + TextPrefix2 + " or " + TextPrefix + ")", Cause: ErrNotEnvelope}
	}
	var version byte
	switch s[:n] {
	case TextPrefix:
		version = Version1
	case TextPrefix2:
		version = Version2
	default:
		return nil, newErr(ErrUnsupportedVersion, "decode-text", "text prefix %q (this package reads %q and %q)", s[:n], TextPrefix, TextPrefix2)
	}
	if len(s) > maxTextLen {
		return nil, newErr(ErrMalformed, "decode-text", "text of %d bytes exceeds the %d-byte maximum", len(s), maxTextLen)
	}
	body := s[n:]
	for i := 0; i < len(body); i++ { // the decoder would skip \r and \n
		if c := body[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, newErr(ErrMalformed, "decode-text", "byte %d is not in the base64url alphabet", n+i)
		}
	}
	b, err := b64.DecodeString(body)
	if err != nil {
		return nil, newErr(ErrMalformed, "decode-text", "not unpadded base64url")
	}
	if len(b) == 0 || b[0] != version {
		return nil, newErr(ErrMalformed, "decode-text", "prefix %q does not match the blob's version", s[:n])
	}
	return b, nil
}

// FieldRef names one encrypted value in a table: the table, the column and
// the row's id (a primary key known before the row is written), plus
// optional further pairs the caller marks stable (a tenant id, say). The
// table, the column and Stable are the stable context: they go to the key
// provider, so one cached data key serves the whole column. The row id is
// the message context, authenticated with the value only. Either way a
// value copied to another row or column fails to decrypt with
// ErrContextMismatch. For many rows use a Column, which prepares the stable
// context once.
type FieldRef struct {
	Table, Column, RowID string
	Stable               Context // optional; keys "table", "column" and "row" are reserved
}

// KeyContext returns the stable context: {"table": Table, "column": Column}
// and the pairs of Stable.
func (r FieldRef) KeyContext() Context {
	c := Context{"table": r.Table, "column": r.Column}
	for k, v := range r.Stable {
		if k != "table" && k != "column" && k != "row" {
			c[k] = v
		}
	}
	return c
}

// MessageContext returns {"row": RowID}.
func (r FieldRef) MessageContext() Context { return Context{"row": r.RowID} }

// Context returns the union of the stable and the message context: the
// single context a format-1 field value is bound to.
func (r FieldRef) Context() Context {
	c := r.KeyContext()
	c["row"] = r.RowID
	return c
}

func (r FieldRef) check(op string) error {
	if r.Table == "" || r.Column == "" || r.RowID == "" {
		return newErr(ErrMalformed, op, "FieldRef needs a table, a column and a row id")
	}
	for k := range r.Stable {
		if k == "table" || k == "column" || k == "row" {
			return newErr(ErrMalformed, op, "FieldRef.Stable may not set the reserved key %q", k)
		}
	}
	return nil
}

// EncryptField encrypts a column value for the cell ref and returns its text
// form, ready to store in a text column or a JSON field.
func (e *Envelope) EncryptField(ctx context.Context, ref FieldRef, plaintext []byte) (string, error) {
	if err := ref.check("encrypt-field"); err != nil {
		return "", err
	}
	pc, err := PrepareContext(ref.KeyContext())
	if err != nil {
		return "", err
	}
	blob, err := e.AppendEncryptWith(ctx, nil, plaintext, pc, ref.MessageContext())
	if err != nil {
		return "", err
	}
	return EncodeText(blob), nil
}

// DecryptField decrypts the text form stored in the cell ref (format 1 or
// 2). Every failure is an error — a value without an envelope text prefix
// (legacy plaintext, say) matches ErrNotEnvelope and is never passed
// through — so a caller cannot mistake ciphertext or an empty value for the
// plaintext and save it back.
func (e *Envelope) DecryptField(ctx context.Context, ref FieldRef, text string) (Secret, error) {
	if err := ref.check("decrypt-field"); err != nil {
		return nil, err
	}
	blob, err := DecodeText(text)
	if err != nil {
		return nil, err
	}
	pc, err := PrepareContext(ref.KeyContext())
	if err != nil {
		return nil, err
	}
	return e.AppendDecryptWith(ctx, nil, blob, pc, ref.MessageContext())
}
