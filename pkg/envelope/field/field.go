// Package field owns the database column type for values encrypted with
// pkg/envelope: Encrypted stores a value's envelope text form ("env2:…") in
// a text column, maps SQL NULL, implements database/sql's driver.Valuer and
// sql.Scanner as well as pgx v5's native text interfaces, and redacts itself
// in every print, log, JSON and error path (pgx quotes values it refuses in
// its errors). A value read from the database is opened afterwards with the
// row's id, because the row is part of what it is bound to:
//
//	col, _ := env.Column("organizations", "tax_id", nil)
//	v, _ := field.Seal(ctx, col, org.ID, []byte(taxID))       // write: INSERT … VALUES ($1, …), org.ID, v
//	var got field.Encrypted
//	_ = conn.QueryRow(ctx, "SELECT id, tax_id …").Scan(&id, &got)
//	_ = got.Open(ctx, col, id)                                 // got.Plaintext() is the tax id
//
// It does not encrypt (envelope.Column does) or migrate a column's values
// (package colmigrate does). Nothing here is a mock of the database: the
// tests run against PostgreSQL through pgx.
package field

import (
	"context"
	"database/sql/driver"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rotation-suite/rotation/pkg/envelope"
)

// Encrypted is one encrypted column value: the stored text form, or NULL,
// and once opened the plaintext. The zero value is NULL. It redacts itself
// everywhere: String, GoString, every fmt verb, slog, encoding/json and
// encoding.TextMarshaler all print "[REDACTED]" (or "NULL").
type Encrypted struct {
	text   string          // envelope text form; "" when NULL
	valid  bool            // false: SQL NULL
	plain  envelope.Secret // set by Open
	opened bool
}

// Seal encrypts plaintext for row rowID of col.
func Seal(ctx context.Context, col *envelope.Column, rowID string, plaintext []byte) (Encrypted, error) {
	text, err := col.Encrypt(ctx, rowID, plaintext)
	if err != nil {
		return Encrypted{}, err
	}
	return Encrypted{text: text, valid: true}, nil
}

// Null returns the NULL value.
func Null() Encrypted { return Encrypted{} }

// FromStored wraps a stored text form (from a migration, say) without
// checking it; Open checks it.
func FromStored(text string) Encrypted { return Encrypted{text: text, valid: true} }

// IsNull reports whether the value is SQL NULL.
func (v Encrypted) IsNull() bool { return !v.valid }

// Stored returns the stored text form ("" for NULL). It is ciphertext, not
// secret by itself, but it is not printed either.
func (v Encrypted) Stored() string { return v.text }

// Open decrypts the value for row rowID of col. NULL opens to a nil
// plaintext. A stored value that is not an envelope at all (legacy
// plaintext) fails with envelope.ErrNotEnvelope; every other failure means a
// damaged, forged or misplaced value.
func (v *Encrypted) Open(ctx context.Context, col *envelope.Column, rowID string) error {
	if !v.valid {
		v.plain, v.opened = nil, true
		return nil
	}
	pt, err := col.Decrypt(ctx, rowID, v.text)
	if err != nil {
		return err
	}
	v.plain, v.opened = pt, true
	return nil
}

// Plaintext returns the opened plaintext (a Secret: it redacts itself), or
// nil when the value is NULL or not opened yet.
func (v Encrypted) Plaintext() envelope.Secret { return v.plain }

// Opened reports whether Open succeeded.
func (v Encrypted) Opened() bool { return v.opened }

// Clear drops the plaintext (best effort: clears the bytes).
func (v *Encrypted) Clear() {
	clear(v.plain)
	v.plain, v.opened = nil, false
}

// Value implements driver.Valuer: the text form, or nil for NULL.
func (v Encrypted) Value() (driver.Value, error) {
	if !v.valid {
		return nil, nil
	}
	return v.text, nil
}

// Scan implements sql.Scanner: a text (string or []byte) or NULL. It keeps
// the text form; call Open to decrypt.
func (v *Encrypted) Scan(src any) error {
	switch s := src.(type) {
	case nil:
		*v = Encrypted{}
	case string:
		*v = Encrypted{text: s, valid: true}
	case []byte:
		*v = Encrypted{text: string(s), valid: true}
	default:
		return fmt.Errorf("field: cannot scan a %T into an encrypted value", src)
	}
	return nil
}

// TextValue implements pgx v5's pgtype.TextValuer.
func (v Encrypted) TextValue() (pgtype.Text, error) {
	return pgtype.Text{String: v.text, Valid: v.valid}, nil
}

// ScanText implements pgx v5's pgtype.TextScanner.
func (v *Encrypted) ScanText(t pgtype.Text) error {
	*v = Encrypted{text: t.String, valid: t.Valid}
	return nil
}

func (v Encrypted) redacted() string {
	if !v.valid {
		return "NULL"
	}
	return "[REDACTED]"
}

func (v Encrypted) String() string   { return v.redacted() }
func (v Encrypted) GoString() string { return "field.Encrypted{" + v.redacted() + "}" }

// Format keeps the value out of every fmt verb, %x, %q and %#v included.
func (v Encrypted) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(v.GoString()))
		return
	}
	_, _ = f.Write([]byte(v.redacted()))
}

// LogValue keeps the value out of slog.
func (v Encrypted) LogValue() slog.Value { return slog.StringValue(v.redacted()) }

// MarshalJSON writes "[REDACTED]" (null for NULL): a struct holding an
// Encrypted can be logged as JSON without leaking it.
func (v Encrypted) MarshalJSON() ([]byte, error) {
	if !v.valid {
		return []byte("null"), nil
	}
	return []byte(`"[REDACTED]"`), nil
}

// MarshalText writes "[REDACTED]" (encoding.TextMarshaler, used by slog's
// text handler, YAML and others).
func (v Encrypted) MarshalText() ([]byte, error) { return []byte(v.redacted()), nil }

var (
	_ driver.Valuer      = Encrypted{}
	_ pgtype.TextValuer  = Encrypted{}
	_ pgtype.TextScanner = (*Encrypted)(nil)
)
