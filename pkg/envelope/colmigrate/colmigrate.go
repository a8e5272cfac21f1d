// Package colmigrate owns the two bulk operations on an encrypted table
// column in PostgreSQL (through pgx v5): Backfill, which encrypts the
// legacy plaintext values of a column in place, and ReWrap, which moves a
// column's values to another key (KMS, or a local key). It does not create
// or alter tables, and encrypts through the caller's envelope.Column. Both work in batches ordered by the
// row id, report progress after each batch and can be resumed from the last
// id they report; both are safe while the application keeps writing, because
// every change is a conditional UPDATE … WHERE id = $id AND column = $old,
// which changes nothing when the application has written the row since it
// was read (counted as Raced). An application still writing plaintext
// leaves rows a run has passed in plaintext; run Backfill again once every
// writer encrypts, and it picks them up.
//
// Neither ever overwrites a value it cannot account for. The rule
// (docs/envelope-format.md §11): a value without an envelope text prefix
// ("env", digits, ":") is plaintext; a value with one is an envelope, and if
// it does not open it is reported as damaged and left untouched — even when
// it is really a plaintext that happens to start with "env1:", which a
// person then re-encrypts by hand. A key-provider failure (KMS throttled or
// unreachable) stops the run with an error; run it again from the reported
// id.
package colmigrate

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotation-suite/rotation/pkg/envelope"
)

// DB is what the operations need from a connection: *pgx.Conn, *pgxpool.Pool
// and pgx.Tx all have it.
type DB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Target names the column: a table, its primary-key column (text, or
// anything that sorts and compares as text once cast) and the encrypted
// text column, which Column encrypts (its table and column names are the
// ones bound into the values).
type Target struct {
	Table, IDColumn, ValueColumn string
	Column                       *envelope.Column
}

// Options tune a run.
type Options struct {
	BatchSize int            // rows per batch (default 500)
	After     string         // resume after this row id ("" starts at the beginning)
	Progress  func(Progress) // called after each batch, and once at the end
}

// Progress counts a run so far.
type Progress struct {
	LastID  string // the last row id processed; pass it as Options.After to resume
	Scanned int    // non-NULL values read
	Changed int    // values rewritten (encrypted, or re-wrapped)
	Skipped int    // values already in the wanted state
	Raced   int    // values the application changed between read and write (left to its write)
	Damaged int    // values reported, not touched
	Done    bool   // the last batch has been processed
}

// Damaged is a value that did not open: reported, never changed. Err says
// why (its text holds no plaintext and no stored value).
type Damaged struct {
	RowID string
	Err   error
}

// Report is the outcome of a run.
type Report struct {
	Progress
	DamagedRows []Damaged
}

// PrintProgress returns a Progress callback writing one line per call to w.
func PrintProgress(w io.Writer, what string) func(Progress) {
	return func(p Progress) {
		state := "batch done"
		if p.Done {
			state = "finished"
		}
		fmt.Fprintf(w, "%s: %s; scanned %d, changed %d, skipped %d, raced %d, damaged %d; resume after id %q\n",
			what, state, p.Scanned, p.Changed, p.Skipped, p.Raced, p.Damaged, p.LastID)
	}
}

func (t Target) check() error {
	if t.Table == "" || t.IDColumn == "" || t.ValueColumn == "" || t.Column == nil {
		return errors.New("colmigrate: Target needs a table, an id column, a value column and an envelope.Column")
	}
	return nil
}

type row struct{ id, value string }

// batches runs fn over the non-NULL values in id order, batch by batch.
func batches(ctx context.Context, db DB, t Target, o Options, rep *Report, fn func(r row) error) error {
	if err := t.check(); err != nil {
		return err
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	tbl := pgx.Identifier{t.Table}.Sanitize()
	id, val := pgx.Identifier{t.IDColumn}.Sanitize(), pgx.Identifier{t.ValueColumn}.Sanitize()
	q := fmt.Sprintf(`SELECT %s::text, %s FROM %s WHERE %s::text > $1 AND %s IS NOT NULL ORDER BY %s::text LIMIT $2`, id, val, tbl, id, val, id)
	after := o.After
	for {
		rows, err := db.Query(ctx, q, after, o.BatchSize)
		if err != nil {
			return fmt.Errorf("colmigrate: read a batch after id %q: %w", after, err)
		}
		batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			return x, r.Scan(&x.id, &x.value)
		})
		if err != nil {
			return fmt.Errorf("colmigrate: read a batch after id %q: %w", after, err)
		}
		for _, r := range batch {
			rep.Scanned++
			if err := fn(r); err != nil {
				return err
			}
			rep.LastID = r.id
			after = r.id
		}
		if len(batch) < o.BatchSize {
			rep.Done = true
		}
		if o.Progress != nil {
			o.Progress(rep.Progress)
		}
		if rep.Done {
			return nil
		}
	}
}

// update writes next where the row still holds old.
func update(ctx context.Context, db DB, t Target, r row, next string, rep *Report) error {
	q := fmt.Sprintf(`UPDATE %s SET %s = $1 WHERE %s::text = $2 AND %s = $3`,
		pgx.Identifier{t.Table}.Sanitize(), pgx.Identifier{t.ValueColumn}.Sanitize(), pgx.Identifier{t.IDColumn}.Sanitize(), pgx.Identifier{t.ValueColumn}.Sanitize())
	tag, err := db.Exec(ctx, q, next, r.id, r.value)
	if err != nil {
		return fmt.Errorf("colmigrate: update row %q: %w", r.id, err)
	}
	if tag.RowsAffected() == 0 {
		rep.Raced++
	} else {
		rep.Changed++
	}
	return nil
}

// classify opens an envelope value: nil when it opens, a *damage when it
// does not for a reason about the value, any other error (the provider
// failed) to stop the run.
func classify(ctx context.Context, col *envelope.Column, r row) error {
	pt, err := col.Decrypt(ctx, r.id, r.value)
	clear(pt)
	if err == nil {
		return nil
	}
	if errors.Is(err, envelope.ErrProvider) {
		return fmt.Errorf("colmigrate: row %q: %w", r.id, err)
	}
	return &damage{err}
}

type damage struct{ err error }

func (d *damage) Error() string { return d.err.Error() }

// Backfill encrypts every plaintext value of the column with its row id
// and leaves every envelope that opens as it is; values that carry an
// envelope prefix but do not open are reported in Report.DamagedRows and
// not touched.
func Backfill(ctx context.Context, db DB, t Target, o Options) (*Report, error) {
	rep := &Report{}
	err := batches(ctx, db, t, o, rep, func(r row) error {
		if !envelope.HasEnvelopePrefix(r.value) {
			text, err := t.Column.Encrypt(ctx, r.id, []byte(r.value))
			if err != nil {
				return fmt.Errorf("colmigrate: encrypt row %q: %w", r.id, err)
			}
			return update(ctx, db, t, r, text, rep)
		}
		switch err := classify(ctx, t.Column, r); {
		case err == nil:
			rep.Skipped++
		case isDamage(err):
			rep.Damaged++
			rep.DamagedRows = append(rep.DamagedRows, Damaged{RowID: r.id, Err: err.(*damage).err})
		default:
			return err
		}
		return nil
	})
	return rep, err
}

func isDamage(err error) bool {
	var d *damage
	return errors.As(err, &d)
}
