package apikeystrategy

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// keepRevoked is how many revoked API-key records stay in the verifier
// document (so a consumer can say "revoked" rather than "unknown"); older
// ones are dropped. Revoked webhook records are dropped at once: they would
// hold key material for nothing.
const keepRevoked = 5

// maxRetiring is how many keys of one caller secret may be retiring (in
// their overlap) at once. Each rotation within an overlap adds one, and a
// retiring key is never revoked before its notAfter, so setSecret refuses a
// rotation that would make more (see applySet) instead of revoking a live
// key; the operator waits until the earliest overlap ends or revokes at once
// with EmergencyRevokeTag. With the current and the pending key that is at
// most maxRetiring+1 live records per caller, which keeps a verifier secret
// shared by a few dozen callers well inside Secrets Manager's 64 KiB.
const maxRetiring = 4

// policy is what applySet needs besides the documents.
type policy struct {
	// Owner is the rotated secret's owner id (apikey.OwnerID).
	Owner string
	// Overlap is the configured overlap (APIKEY_OVERLAP).
	Overlap time.Duration
	// RevokeBefore, if set (EmergencyRevokeTag), revokes every key of Owner
	// issued (notBefore) before it, except the pending and current keys.
	RevokeBefore time.Time
	// Now is the clock, used only to tell which retiring keys still count
	// against maxRetiring; the document written never depends on it.
	Now time.Time
}

// applySet returns the verifier document setSecret writes. It changes only
// the records of p.Owner (the rotated secret; see apikey.OwnerID), so many
// caller secrets can share one verifier secret: the pending key's record
// active; the current key's record active (added if missing, adopted if it
// was made by hand without an owner, never un-revoked). Every other live
// record of the owner — keys of earlier rotations in their overlap, or a key
// of an abandoned rotation, which a caller may have picked up from
// AWSPENDING — stays valid until its own notAfter: a retiring record whose
// notAfter has passed by the pending key's creation is revoked; a retiring
// one is otherwise left alone; an active one (the previous key when the
// finish hook never ran, an abandoned rotation's key) becomes retiring with
// notAfter no later than the pending key's creation + overlap, which is
// never earlier than the hook would have set (that rotation's promotion came
// before this rotation's createSecret). Only p.RevokeBefore (the operator's
// emergency revocation) revokes a live record early.
//
// More than maxRetiring retiring keys after the finish hook would add the
// current one is refused with a state error naming when the earliest
// overlap ends; so is a document of more than apikey.MaxRecords records or
// over Secrets Manager's 64 KiB (apikey.MaxDocBytes).
//
// It also returns the key ids the emergency revocation revoked. The
// document depends only on its inputs (times from the pending key's
// createdAt, never the clock), and applying it to its own output changes
// nothing: a retried setSecret finds nothing to write.
func applySet(doc *apikey.VerifierDoc, pending, current *apikey.CallerSecret, alg string, pepper []byte, p policy) (_ *apikey.VerifierDoc, revoked []string, _ error) {
	owner := p.Owner
	out := &apikey.VerifierDoc{Kind: pending.Kind, PepperFingerprint: doc.PepperFingerprint}
	if doc.Kind != pending.Kind {
		return nil, nil, rotation.NewError(rotation.ClassConfiguration, "verifier secret", "the verifier secret is of kind "+doc.Kind+" but the rotated key is of kind "+pending.Kind+"; point APIKEY_VERIFIER_SECRET_ARN at a verifier secret of the same kind", nil)
	}
	if pending.Kind == apikey.KindAPIKey && alg == apikey.AlgHMACSHA256 {
		fp := apikey.PepperFingerprint(pepper)
		for _, r := range doc.Records {
			if r.Alg == apikey.AlgHMACSHA256 && r.Status != apikey.StatusRevoked && doc.PepperFingerprint != fp {
				return nil, nil, rotation.NewError(rotation.ClassConfiguration, "APIKEY_PEPPER_SECRET_ARN", "the pepper differs from the one the live verifier records were made with (pepperFingerprint); a pepper cannot change while records made with the old one are live", nil)
			}
		}
		out.PepperFingerprint = fp
	}
	pend, err := apikey.NewRecord(pending, alg, pepper, apikey.StatusActive)
	if err != nil {
		return nil, nil, rotation.NewError(rotation.ClassInput, "verifier record", "the pending key's record could not be built", err)
	}
	pend.Owner = owner
	cutoff := pending.CreatedAt
	revoke := func(r *apikey.Record) {
		r.Status = apikey.StatusRevoked
		if r.NotAfter.IsZero() || r.NotAfter.After(cutoff) {
			r.NotAfter = cutoff
		}
	}
	sawCurrent := false
	for _, r := range doc.Records {
		switch {
		case r.KeyID == pending.KeyID:
			continue // replaced by pend below
		case current.Issued() && r.KeyID == current.KeyID:
			sawCurrent = true
			if r.Owner == "" {
				r.Owner = owner
			}
			if r.Status == apikey.StatusRetiring {
				r.Status = apikey.StatusActive
			}
		case r.Owner != owner || r.Status == apikey.StatusRevoked:
			// Another caller's record (or one made by hand), or revoked
			// already: not ours to change.
		case r.NotBefore.After(cutoff):
			// A key issued after the pending one: a later rotation's, which
			// this (late) step has no say over.
		case !p.RevokeBefore.IsZero() && r.NotBefore.Before(p.RevokeBefore):
			revoke(&r) // the operator's emergency revocation
			revoked = append(revoked, r.KeyID)
		case !r.NotAfter.IsZero() && !r.NotAfter.After(cutoff):
			revoke(&r) // its notAfter has passed: it verifies nowhere any more
		case r.Status == apikey.StatusActive:
			r.Status = apikey.StatusRetiring
			if until := cutoff.Add(p.Overlap); r.NotAfter.IsZero() || until.Before(r.NotAfter) {
				r.NotAfter = until
			}
		case r.NotAfter.IsZero():
			// Retiring without an end (made by hand): its overlap ends one
			// overlap after this rotation began.
			r.NotAfter = cutoff.Add(p.Overlap)
		}
		if r.Owner == owner && r.Status == apikey.StatusRevoked && r.Hash == nil {
			continue // a revoked webhook key: drop it with its material
		}
		out.Records = append(out.Records, r)
	}
	if current.Issued() && !sawCurrent && current.KeyID != pending.KeyID {
		cur, err := apikey.NewRecord(current, alg, pepper, apikey.StatusActive)
		if err != nil {
			return nil, nil, rotation.NewError(rotation.ClassInput, "verifier record", "the current key's record could not be built", err)
		}
		cur.Owner = owner
		out.Records = append(out.Records, cur)
	}
	if err := checkRetiring(out.Records, pending, current, p); err != nil {
		return nil, nil, err
	}
	out.Records = append(out.Records, pend)
	out.Records = pruneRevoked(out.Records, owner)
	if len(out.Records) > apikey.MaxRecords {
		return nil, nil, rotation.NewError(rotation.ClassState, "verifier secret", "the verifier secret would hold more than the allowed records; give some callers their own verifier secret", nil)
	}
	if !usesHMAC(out.Records) {
		out.PepperFingerprint = ""
	}
	if b, err := out.Encode(); err == nil && len(b) > apikey.MaxDocBytes {
		return nil, nil, rotation.NewError(rotation.ClassState, "verifier secret", fmt.Sprintf("the verifier secret would be %d bytes, more than Secrets Manager's %d; give some callers their own verifier secret", len(b), apikey.MaxDocBytes), nil)
	}
	return out, revoked, nil
}

// checkRetiring refuses a rotation after which the owner would have more
// than maxRetiring keys in their overlap: the retiring records still live at
// p.Now (and at the pending key's creation), plus the current key, which the
// finish hook retires. Nothing is revoked to make room.
func checkRetiring(rs []apikey.Record, pending, current *apikey.CallerSecret, p policy) error {
	live := 0
	var earliest time.Time
	for _, r := range rs {
		if r.Owner != p.Owner || r.Status != apikey.StatusRetiring || r.KeyID == pending.KeyID || current.Issued() && r.KeyID == current.KeyID {
			continue
		}
		if !r.NotAfter.After(p.Now) {
			continue // expired by now; the next rotation revokes it
		}
		live++
		if earliest.IsZero() || r.NotAfter.Before(earliest) {
			earliest = r.NotAfter
		}
	}
	if current.Issued() && current.KeyID != pending.KeyID {
		live++
	}
	if live <= maxRetiring {
		return nil
	}
	return &rotation.Error{Class: rotation.ClassState, Op: "verifier secret", Retryable: true,
		Msg: fmt.Sprintf("this caller already has %d earlier keys in their overlap and the finish hook would retire one more, over the limit of %d; a retiring key is never revoked before its notAfter, so the rotation is refused and nothing was changed: rotate again after %s, when the earliest overlap ends, or revoke the earlier keys at once with the %s tag", live-1, maxRetiring, earliest.UTC().Format(time.RFC3339), EmergencyRevokeTag)}
}

func usesHMAC(rs []apikey.Record) bool {
	return slices.ContainsFunc(rs, func(r apikey.Record) bool { return r.Alg == apikey.AlgHMACSHA256 })
}

// pruneRevoked keeps the keepRevoked newest revoked records of owner (by
// notBefore, then key id) and every other record.
func pruneRevoked(rs []apikey.Record, owner string) []apikey.Record {
	var revoked []int
	for i, r := range rs {
		if r.Owner == owner && r.Status == apikey.StatusRevoked {
			revoked = append(revoked, i)
		}
	}
	sort.Slice(revoked, func(a, b int) bool {
		ra, rb := rs[revoked[a]], rs[revoked[b]]
		if !ra.NotBefore.Equal(rb.NotBefore) {
			return ra.NotBefore.After(rb.NotBefore)
		}
		return ra.KeyID > rb.KeyID
	})
	drop := map[int]bool{}
	for n, i := range revoked {
		if n >= keepRevoked {
			drop[i] = true
		}
	}
	out := rs[:0:0]
	for i, r := range rs {
		if !drop[i] {
			out = append(out, r)
		}
	}
	return out
}

// applyFinish sets the previous key's record to retiring with notAfter no
// later than until, and puts the current key's record back (from mkCurrent)
// if a writer of a shared verifier secret lost it — unless the same caller
// secret already has a newer key's record: then a later rotation has run
// (this is a late re-run of the hook) and the missing record was revoked and
// dropped on purpose, so it stays gone. It reports whether anything changed;
// a previous record already retiring or revoked, or missing, is left alone.
func applyFinish(doc *apikey.VerifierDoc, previousKeyID, currentKeyID string, until time.Time, mkCurrent func() (apikey.Record, error)) (bool, error) {
	changed := false
	if doc.Find(currentKeyID) == nil && mkCurrent != nil {
		r, err := mkCurrent()
		if err != nil {
			return false, err
		}
		newer := slices.ContainsFunc(doc.Records, func(x apikey.Record) bool {
			return x.Owner == r.Owner && x.NotBefore.After(r.NotBefore)
		})
		if !newer {
			doc.Records = append(doc.Records, r)
			changed = true
		}
	}
	if previousKeyID == currentKeyID {
		return changed, nil
	}
	r := doc.Find(previousKeyID)
	if r == nil || r.Status != apikey.StatusActive {
		return changed, nil
	}
	r.Status = apikey.StatusRetiring
	if r.NotAfter.IsZero() || until.Before(r.NotAfter) {
		r.NotAfter = until.UTC().Truncate(time.Second)
	}
	return true, nil
}
