package colmigrate

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/rotation-suite/rotation/pkg/envelope"
)

// ReWrap moves every value of the column to the KMS key toKeyID (on the
// provider's allow-list): a format-2 value keeps its body and gets a new key
// section, with one provider ReEncrypt (and at most one Decrypt) per
// distinct data key however many rows share it; a format-1 value is
// re-wrapped on its own (one ReEncrypt per value). Values already under
// toKeyID are skipped, so a run can be repeated or resumed. Values that do
// not verify are reported as damaged and not touched; a plaintext value is
// reported too (backfill the column first).
//
// Report.Changed counts rewritten rows; ProviderReWraps on the returned
// ReWrapper (the second result) counts distinct data keys re-wrapped.
func ReWrap(ctx context.Context, db DB, t Target, toKeyID string, o Options) (*Report, *envelope.ReWrapper, error) {
	if t.Column == nil {
		return nil, nil, errors.New("colmigrate: Target needs an envelope.Column")
	}
	rw := t.Column.Envelope().NewReWrapper(toKeyID)
	stable := t.Column.KeyContext()
	rep := &Report{}
	err := batches(ctx, db, t, o, rep, func(r row) error {
		report := func(err error) error {
			rep.Damaged++
			rep.DamagedRows = append(rep.DamagedRows, Damaged{RowID: r.id, Err: err})
			return nil
		}
		blob, err := envelope.DecodeText(r.value)
		if err != nil {
			return report(err)
		}
		h, err := envelope.ParseHeader(blob)
		if err != nil {
			return report(err)
		}
		if h.KeyID == toKeyID {
			rep.Skipped++
			return nil
		}
		var next []byte
		if h.Version == envelope.Version1 {
			// Format 1 binds one context: the column's stable pairs and the row.
			ec := maps.Clone(stable)
			ec["row"] = r.id
			next, err = t.Column.Envelope().ReWrap(ctx, blob, ec, toKeyID)
		} else {
			next, err = rw.ReWrap(ctx, blob, stable)
		}
		if err != nil {
			if errors.Is(err, envelope.ErrProvider) {
				return fmt.Errorf("colmigrate: re-wrap row %q: %w", r.id, err)
			}
			return report(err)
		}
		return update(ctx, db, t, r, envelope.EncodeText(next), rep)
	})
	return rep, rw, err
}
