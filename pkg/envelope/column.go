package envelope

import (
	"context"
	"log/slog"
)

// Column encrypts and decrypts the values of one table column: its stable
// context (table, column and the caller's further stable pairs) is prepared
// once and goes to the key provider, and each value is bound to its row by
// the message context {"row": id}, authenticated with the body. With a
// data-key cache, one data key serves every row the cache's limits allow
// (one GenerateDataKey for a whole backfill, one Decrypt per distinct data
// key when reading back), and a value copied to another row or column still
// fails with ErrContextMismatch. It is safe for concurrent use.
type Column struct {
	e             *Envelope
	pc            *PreparedContext
	table, column string
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

// Encrypt encrypts the value of row rowID and returns its text form.
func (c *Column) Encrypt(ctx context.Context, rowID string, plaintext []byte) (string, error) {
	msg, err := c.msg("encrypt-field", rowID)
	if err != nil {
		return "", err
	}
	blob, err := c.e.AppendEncryptWith(ctx, nil, plaintext, c.pc, msg)
	if err != nil {
		return "", err
	}
	return EncodeText(blob), nil
}

// Decrypt decrypts the text form stored in row rowID (format 1 or 2; see
// DecryptField for what every failure means).
func (c *Column) Decrypt(ctx context.Context, rowID, text string) (Secret, error) {
	msg, err := c.msg("decrypt-field", rowID)
	if err != nil {
		return nil, err
	}
	blob, err := DecodeText(text)
	if err != nil {
		return nil, err
	}
	return c.e.AppendDecryptWith(ctx, nil, blob, c.pc, msg)
}
