package envelope

import "errors"

// ErrNotEnvelope refines ErrMalformed: the value has no envelope text prefix
// at all ("env", digits, ":"), so it was never an envelope — legacy
// plaintext, typically. Every other failure to open a stored value means an
// envelope that is damaged, forged, bound to another cell, or under a key
// this Envelope may not use; a migration must never treat those as
// plaintext. An error matching ErrNotEnvelope also matches ErrMalformed.
var ErrNotEnvelope = errors.New("not an envelope")

// IsNotEnvelope reports whether err says the value was never an envelope.
func IsNotEnvelope(err error) bool { return errors.Is(err, ErrNotEnvelope) }
