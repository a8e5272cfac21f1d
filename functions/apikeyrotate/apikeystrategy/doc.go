// Package apikeystrategy is the API-key and webhook-signing-key rotation
// strategy: createSecret issues a new key as the pending caller secret;
// setSecret adds its verifier record to the verifier secret (and registers it
// with an optional HTTPS endpoint); testSecret verifies it through the
// consumer library pkg/apikey (and an optional test endpoint); after the
// engine promotes it, the after-finish hook sets the previous key to retiring
// until the end of the overlap. Every issued key verifies until its own
// notAfter: a later rotation within the overlap retires another key but
// revokes none before its end (at most maxRetiring per caller; beyond that
// the rotation is refused), and only the operator's EmergencyRevokeTag
// revokes earlier keys at once.
//
// It owns the configuration (config.go), the four steps (steps.go), the
// record transitions (records.go, emergency.go), the compare-and-swap writes
// of the shared verifier secret (verifier.go) and the HTTP calls (http.go).
// It does not own the key format, the documents or verification (pkg/apikey),
// nor labels, events, notifications and storage of the rotated secret (the
// engine, pkg/rotation).
package apikeystrategy
