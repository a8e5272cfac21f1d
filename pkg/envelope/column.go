package envelope

import (
	"context"
	"encoding/binary"
	"log/slog"
	"sync/atomic"
	"unicode/utf8"
)

// Column encrypts and decrypts the values of one table column: its stable
// context (table, column and the caller's further stable pairs) is prepared
// once and goes to the key provider, and each value is bound to its row by
// the message context {"row": id}, authenticated with the body. With a
// data-key cache and format 2, one data key serves every row the cache's
// limits allow (one GenerateDataKey for a whole backfill, one Decrypt per
// distinct data key when reading back), and a value copied to another row
// or column still fails with ErrContextMismatch. It is safe for concurrent
// use.
type Column struct {
	e             *Envelope
	pc            *PreparedContext
	table, column string
	enc, dec      atomic.Pointer[cacheEntry] // the cache entries used last (a hint; the cache still decides)
}

// Column returns the handle of table.column. stable holds further pairs to
// bind to the data key (say a tenant id); it may be nil, and may not use the
// reserved keys "table", "column" and "row".
func (e *Envelope) Column(table, column string, stable Context) (*Column, error) {
	ref := FieldRef{Table: table, Column: column, RowID: "-", Stable: stable}
	if err := ref.check("column"); err != nil {
		return nil, err
	}
	pc, err := PrepareContext(ref.KeyContext())
	if err != nil {
		return nil, err
	}
	return &Column{e: e, pc: pc, table: table, column: column}, nil
}

// Table returns the table name; Name the column name.
func (c *Column) Table() string { return c.table }

// Name returns the column name.
func (c *Column) Name() string { return c.column }

// Envelope returns the Envelope the column encrypts with.
func (c *Column) Envelope() *Envelope { return c.e }

// KeyContext returns the stable context (a copy).
func (c *Column) KeyContext() Context { return c.pc.Context() }

// Prepared returns the column's prepared stable context.
func (c *Column) Prepared() *PreparedContext { return c.pc }

func (c *Column) String() string   { return "envelope.Column{" + c.table + "." + c.column + "}" }
func (c *Column) GoString() string { return c.String() }

// LogValue logs the table and column names.
func (c *Column) LogValue() slog.Value {
	return slog.GroupValue(slog.String("table", c.table), slog.String("column", c.column))
}

func (c *Column) msg(op, rowID string) (Context, error) {
	if rowID == "" {
		return nil, newErr(ErrMalformed, op, "a row id is required")
	}
	return Context{"row": rowID}, nil
}

// rowContext appends the canonical message context {"row": rowID} without
// building a map.
func rowContext(dst []byte, op, rowID string) ([]byte, error) {
	if rowID == "" || len(rowID) > MaxContextBytes-11 || !utf8.ValidString(rowID) {
		return nil, newErr(ErrMalformed, op, "a row id of 1 to %d bytes of UTF-8 is required", MaxContextBytes-11)
	}
	dst = append(dst, 0, 1, 0, 3, 'r', 'o', 'w')
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(rowID)))
	return append(dst, rowID...), nil
}

// AppendEncrypt encrypts the value of row rowID and appends the blob (not
// its text form) to dst, with the aliasing rules of Envelope.AppendEncrypt:
// the hot-loop form of Encrypt.
func (c *Column) AppendEncrypt(ctx context.Context, dst []byte, rowID string, plaintext []byte) ([]byte, error) {
	if c.e.version == Version1 {
		msg, err := c.msg("encrypt", rowID)
		if err != nil {
			return nil, err
		}
		return c.e.AppendEncryptWith(ctx, dst, plaintext, c.pc, msg)
	}
	var buf [64]byte
	mc, err := rowContext(buf[:0], "encrypt", rowID)
	if err != nil {
		return nil, err
	}
	return c.e.encrypt2m(ctx, dst, plaintext, c.pc.stable, c.pc.canon, c.pc.encKey, mc, &c.enc)
}

// AppendDecrypt decrypts the blob stored in row rowID and appends the
// plaintext to dst (the aliasing rules of Envelope.AppendDecrypt apply).
func (c *Column) AppendDecrypt(ctx context.Context, dst []byte, rowID string, blob []byte) (Secret, error) {
	if len(blob) == 0 || blob[0] != Version2 {
		msg, err := c.msg("decrypt", rowID)
		if err != nil {
			return nil, err
		}
		return c.e.AppendDecryptWith(ctx, dst, blob, c.pc, msg)
	}
	var buf [64]byte
	mc, err := rowContext(buf[:0], "decrypt", rowID)
	if err != nil {
		return nil, err
	}
	return c.e.decrypt2m(ctx, dst, blob, c.pc.stable, c.pc.canon, nil, mc, nil, &c.dec)
}

// Encrypt encrypts the value of row rowID and returns its text form.
func (c *Column) Encrypt(ctx context.Context, rowID string, plaintext []byte) (string, error) {
	blob, err := c.AppendEncrypt(ctx, nil, rowID, plaintext)
	if err != nil {
		return "", err
	}
	return EncodeText(blob), nil
}

// Decrypt decrypts the text form stored in row rowID (format 1 or 2; see
// DecryptField for what every failure means).
func (c *Column) Decrypt(ctx context.Context, rowID, text string) (Secret, error) {
	blob, err := DecodeText(text)
	if err != nil {
		return nil, err
	}
	return c.AppendDecrypt(ctx, nil, rowID, blob)
}
