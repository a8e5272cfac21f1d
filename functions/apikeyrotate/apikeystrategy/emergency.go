package apikeystrategy

import (
	"fmt"
	"strings"
	"time"

	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// EmergencyRevokeTag is the caller-secret tag that requests an emergency
// revocation: set it to an RFC 3339 instant (the time the leak was found) and
// rotate. That rotation revokes every key of the caller secret issued before
// the instant — the earlier keys in their overlap at setSecret, the key being
// replaced right after the promotion (finish hook) — instead of letting them
// live to their notAfter. The new key is never revoked. Keys issued after the
// instant are not affected, so the tag need not be removed: later rotations
// are ordinary; a later instant requests another revocation. A value that is
// not an RFC 3339 instant, or lies more than emergencyFutureSlack in the
// future, fails the rotation with a configuration error (see revokeBefore).
const EmergencyRevokeTag = "apikey-rotation/emergency-revoke"

// emergencyFutureSlack is how far in the future an EmergencyRevokeTag instant
// may lie (clock skew); a later one would revoke the keys of rotations yet to
// come and is refused.
const emergencyFutureSlack = 5 * time.Minute

// revokeBefore reads EmergencyRevokeTag from the secret's tags: the zero
// time when absent, a configuration error naming the tag (never its value)
// when it is not an RFC 3339 instant or lies more than emergencyFutureSlack
// in the future.
func revokeBefore(tags map[string]string, now time.Time) (time.Time, error) {
	v, ok := tags[EmergencyRevokeTag]
	if !ok || v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, rotation.NewError(rotation.ClassConfiguration, EmergencyRevokeTag, "the tag "+EmergencyRevokeTag+" must be an RFC 3339 instant such as 2026-03-20T14:00:00Z (revoke every key issued before it); fix or remove it", nil)
	}
	if t.After(now.Add(emergencyFutureSlack)) {
		return time.Time{}, rotation.NewError(rotation.ClassConfiguration, EmergencyRevokeTag, "the tag "+EmergencyRevokeTag+" lies in the future; it would revoke the keys of rotations yet to come: set it to the time the leak was found", nil)
	}
	return t.UTC(), nil
}

// applyEmergency revokes, at at, every live record of owner (and the
// previous key's record, which may predate owners) issued before before and
// before the current key (createdAt current) — never the current key nor one
// a later rotation issued, should this be a late re-run of the finish hook;
// a revoked webhook record is dropped with its material. It returns the key
// ids revoked. before zero: nothing.
func applyEmergency(doc *apikey.VerifierDoc, owner, previousKeyID, currentKeyID string, current, before, at time.Time) []string {
	if before.IsZero() {
		return nil
	}
	at = at.UTC().Truncate(time.Second)
	var revoked []string
	out := doc.Records[:0:0]
	for _, r := range doc.Records {
		if (r.Owner == owner || r.KeyID == previousKeyID) && r.KeyID != currentKeyID && r.Status != apikey.StatusRevoked && r.NotBefore.Before(before) && r.NotBefore.Before(current) {
			revoked = append(revoked, r.KeyID)
			r.Status = apikey.StatusRevoked
			if r.NotAfter.IsZero() || r.NotAfter.After(at) {
				r.NotAfter = at
			}
			if r.Hash == nil {
				continue // a revoked webhook key: drop it with its material
			}
		}
		out = append(out, r)
	}
	doc.Records = out
	return revoked
}

// reportEmergency adds the emergency revocation's warning and details.
func (s *Strategy) reportEmergency(rep *rotation.Report, before time.Time, revoked []string) {
	if rep.Details == nil {
		rep.Details = map[string]string{}
	}
	rep.Details["mode"] = "emergency-revoke"
	rep.Details["revokeBefore"] = before.Format(time.RFC3339)
	rep.Details["revokedKeyIds"] = strings.Join(revoked, ",")
	rep.Warnings = append(rep.Warnings, fmt.Sprintf("EMERGENCY REVOCATION (%s): the keys of this caller issued before %s [%s] are revoked now, before their overlap ends; callers still using them are refused (the key being replaced, if issued before it, is revoked right after the promotion)", EmergencyRevokeTag, before.Format(time.RFC3339), strings.Join(revoked, ", ")))
}
