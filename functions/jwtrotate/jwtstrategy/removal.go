package jwtstrategy

import (
	"time"

	"github.com/rotation-suite/rotation/pkg/jwks"
)

// removeAfter is when the retired key r may leave the JWK Set, as seen by
// the createSecret that rotates cur at now. It is never earlier than the
// time r records.
func (s *Strategy) removeAfter(cur *jwks.Document, r jwks.RetiredKey, now time.Time) time.Time {
	due := r.RemoveAfter
	// A longer removal delay configured since the key retired applies to it
	// too (a shorter one never shortens a stored time).
	if d := r.RetiredAt.Add(s.cfg.RemovalDelay()); d.After(due) {
		due = d
	}
	// The key AWSCURRENT's own rotation retired signed until that version
	// was promoted, at an unknown time after its createSecret (the service
	// retries whole rotations; finishSecret can come much later). This
	// createSecret read that version as AWSCURRENT, so the promotion is
	// behind us: the removal clock starts now at the latest.
	if retiredByPromotionOf(cur, r) {
		if d := now.Add(s.cfg.RemovalDelay()); d.After(due) {
			due = d
		}
	}
	return due
}

// retiredByPromotionOf reports whether r is the key that cur's promotion
// retired: the createSecret that built cur stamped the key it made active
// (ActivatedAt) and the key it retired (RetiredAt) with the same time.
func retiredByPromotionOf(cur *jwks.Document, r jwks.RetiredKey) bool {
	return cur.Active != nil && !cur.Active.ActivatedAt.IsZero() && r.RetiredAt.Equal(cur.Active.ActivatedAt)
}
