// Package apikey owns the API-key and webhook-signing-key formats and records
// that both sides of a rotation share: the key format (type prefix, public key
// id, random body, CRC32 checksum), the caller secret (what a caller presents)
// and the verifier secret (what a receiving service checks against), the
// hashing of keys into verifier records, and webhook signatures.
//
// On top of those it offers the consumer side: a Keyring verifies a presented
// key or a webhook signature against one verifier document; a Verifier keeps a
// Keyring built from the verifier secret read through pkg/secretcache
// (refreshed in the background, and rate limited on an unknown key); an HTTP
// middleware authenticates requests with it; Credentials gives a caller its
// current key, with Refresh for after a refusal. Types that hold keys redact themselves when printed or logged.
//
// It does not rotate anything: functions/apikeyrotate does, using these types.
// See docs/apikey.md for the schemas and the overlap semantics.
package apikey
