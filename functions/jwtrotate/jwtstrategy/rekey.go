package jwtstrategy

import (
	"github.com/rotation-suite/rotation/pkg/jwks"
)

// RekeyTag is the secret tag that requests an emergency re-key: set it to a
// new value (a nonce: a date, a ticket number) and rotate. The handled nonce
// is recorded in the new version, so later rotations are normal again while
// the tag stays; a different value requests another re-key. The nonce is
// not a secret: the re-key's warning and its details (rekeyNonce) carry it
// in clear, and the document records it.
const RekeyTag = "jwt-rotation/emergency-rekey"

// isRekey reports whether pend was made by an emergency re-key of cur.
func isRekey(cur, pend *jwks.Document) bool {
	return pend.EmergencyRekey != nil && (cur.EmergencyRekey == nil || cur.EmergencyRekey.Nonce != pend.EmergencyRekey.Nonce)
}
