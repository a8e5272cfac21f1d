package keyrotate

import (
	"crypto/sha256"
	"encoding/hex"
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

// derivedToken is the ClientRequestToken of a verifier-secret version written
// by one step of one rotation on top of one base version: a UUID (version 8)
// from SHA-256 of the rotation's token and the purpose (which names the base),
// so a retried step writes under the same token and never creates another
// version, while a retry over a version someone else wrote meanwhile merges
// into a new one instead of failing on a reused token.
func derivedToken(token, purpose string) string {
	sum := sha256.Sum256([]byte("apikeyrotate/verifier\x00" + purpose + "\x00" + token))
	u := sum[:16]
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	h := hex.EncodeToString(u)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// applySet returns the verifier document setSecret writes. It changes only
// the records of owner (the rotated secret; see apikey.OwnerID), so many
// caller secrets can share one verifier secret: the pending key's record
// active; the current key's record active (added if missing, adopted if it
// was made by hand without an owner, never un-revoked); every other live
// record of owner — the key from two rotations ago, or a key of an abandoned
// rotation — revoked with notAfter no later than the pending key's creation.
// The result depends only on its inputs (no clock), and applying it to its
// own output changes nothing: a retried setSecret finds nothing to write.
func applySet(doc *apikey.VerifierDoc, pending, current *apikey.CallerSecret, alg string, pepper []byte, owner string) (*apikey.VerifierDoc, error) {
	out := &apikey.VerifierDoc{Kind: pending.Kind, PepperFingerprint: doc.PepperFingerprint}
	if doc.Kind != pending.Kind {
		return nil, rotation.NewError(rotation.ClassConfiguration, "verifier secret", "the verifier secret is of kind "+doc.Kind+" but the rotated key is of kind "+pending.Kind+"; point APIKEY_VERIFIER_SECRET_ARN at a verifier secret of the same kind", nil)
	}
	if pending.Kind == apikey.KindAPIKey && alg == apikey.AlgHMACSHA256 {
		fp := apikey.PepperFingerprint(pepper)
		for _, r := range doc.Records {
			if r.Alg == apikey.AlgHMACSHA256 && r.Status != apikey.StatusRevoked && doc.PepperFingerprint != fp {
				return nil, rotation.NewError(rotation.ClassConfiguration, "APIKEY_PEPPER_SECRET_ARN", "the pepper differs from the one the live verifier records were made with (pepperFingerprint); a pepper cannot change while records made with the old one are live", nil)
			}
		}
		out.PepperFingerprint = fp
	}
	pend, err := apikey.NewRecord(pending, alg, pepper, apikey.StatusActive)
	if err != nil {
		return nil, rotation.NewError(rotation.ClassInput, "verifier record", "the pending key's record could not be built", err)
	}
	pend.Owner = owner
	cutoff := pending.CreatedAt
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
		case r.Owner != owner:
			// Another caller's record (or one made by hand): not ours to change.
		case r.Status != apikey.StatusRevoked:
			r.Status = apikey.StatusRevoked
			if r.NotAfter.IsZero() || r.NotAfter.After(cutoff) {
				r.NotAfter = cutoff
			}
		}
		if r.Owner == owner && r.Status == apikey.StatusRevoked && r.Hash == nil {
			continue // a revoked webhook key: drop it with its material
		}
		out.Records = append(out.Records, r)
	}
	if current.Issued() && !sawCurrent && current.KeyID != pending.KeyID {
		cur, err := apikey.NewRecord(current, alg, pepper, apikey.StatusActive)
		if err != nil {
			return nil, rotation.NewError(rotation.ClassInput, "verifier record", "the current key's record could not be built", err)
		}
		cur.Owner = owner
		out.Records = append(out.Records, cur)
	}
	out.Records = append(out.Records, pend)
	out.Records = pruneRevoked(out.Records, owner)
	if len(out.Records) > apikey.MaxRecords {
		return nil, rotation.NewError(rotation.ClassState, "verifier secret", "the verifier secret would hold more than the allowed records; give some callers their own verifier secret", nil)
	}
	if !usesHMAC(out.Records) {
		out.PepperFingerprint = ""
	}
	return out, nil
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
