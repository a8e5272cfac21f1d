package envelope

import (
	"context"
	"encoding/base64"
	"strings"
)

// TextPrefix starts the text form of a version-1 blob: the prefix, then the
// blob in unpadded base64url. The text form fits JSON strings, text columns
// and environment variables without escaping.
const TextPrefix = "env1:"

var b64 = base64.RawURLEncoding.Strict()

// maxTextLen is the longest text form of a well-formed blob.
var maxTextLen = len(TextPrefix) + b64.EncodedLen(MaxBlobSize)

// EncodeText returns the text form of blob.
func EncodeText(blob []byte) string {
	buf := make([]byte, len(TextPrefix)+b64.EncodedLen(len(blob)))
	copy(buf, TextPrefix)
	b64.Encode(buf[len(TextPrefix):], blob)
	return string(buf)
}

// DecodeText returns the blob of a text form. It checks the prefix and the
// length before decoding; the blob itself is checked by Decrypt or
// ParseHeader.
func DecodeText(s string) ([]byte, error) {
	if !strings.HasPrefix(s, TextPrefix) {
		if i := strings.IndexByte(s, ':'); i > 0 && i <= 8 && strings.HasPrefix(s, "env") {
			return nil, newErr(ErrUnsupportedVersion, "decode-text", "text prefix %q (this package reads %q)", s[:i+1], TextPrefix)
		}
		return nil, newErr(ErrMalformed, "decode-text", "text does not start with %q", TextPrefix)
	}
	if len(s) > maxTextLen {
		return nil, newErr(ErrMalformed, "decode-text", "text of %d bytes exceeds the %d-byte maximum", len(s), maxTextLen)
	}
	body := s[len(TextPrefix):]
	for i := 0; i < len(body); i++ { // the decoder would skip \r and \n
		if c := body[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, newErr(ErrMalformed, "decode-text", "byte %d is not in the base64url alphabet", len(TextPrefix)+i)
		}
	}
	b, err := b64.DecodeString(body)
	if err != nil {
		return nil, newErr(ErrMalformed, "decode-text", "not unpadded base64url")
	}
	return b, nil
}

// FieldRef names one encrypted value in a table: the table, the column and
// the row's id (a primary key known before the row is written). Its context
// binds a ciphertext to that cell: a value copied to another row or column
// fails to decrypt with ErrContextMismatch.
type FieldRef struct {
	Table, Column, RowID string
}

// Context returns {"table": Table, "column": Column, "row": RowID}.
func (r FieldRef) Context() Context {
	return Context{"table": r.Table, "column": r.Column, "row": r.RowID}
}

func (r FieldRef) check(op string) error {
	if r.Table == "" || r.Column == "" || r.RowID == "" {
		return newErr(ErrMalformed, op, "FieldRef needs a table, a column and a row id")
	}
	return nil
}

// EncryptField encrypts a column value for the cell ref and returns its text
// form, ready to store in a text column or a JSON field.
func (e *Envelope) EncryptField(ctx context.Context, ref FieldRef, plaintext []byte) (string, error) {
	if err := ref.check("encrypt-field"); err != nil {
		return "", err
	}
	blob, err := e.Encrypt(ctx, plaintext, ref.Context())
	if err != nil {
		return "", err
	}
	return EncodeText(blob), nil
}

// DecryptField decrypts the text form stored in the cell ref. Every failure
// is an error — a value that is not in the text form (say, legacy
// plaintext) is ErrMalformed, never passed through — so a caller cannot
// mistake ciphertext or an empty value for the plaintext and save it back.
func (e *Envelope) DecryptField(ctx context.Context, ref FieldRef, text string) (Secret, error) {
	if err := ref.check("decrypt-field"); err != nil {
		return nil, err
	}
	blob, err := DecodeText(text)
	if err != nil {
		return nil, err
	}
	return e.Decrypt(ctx, blob, ref.Context())
}
