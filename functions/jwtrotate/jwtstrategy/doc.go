// Package jwtstrategy is the JWT signing-key rotation strategy that
// functions/jwtrotate runs in the shared engine (pkg/rotation). Each secret
// version holds an active key, a next key that is already published in the
// JWK Set, and retired public keys kept until no token they signed can still
// be valid (the format is pkg/jwks.Document; docs/jwt.md describes it).
//
// createSecret builds the pending version: the current next key becomes
// active, a fresh next key is generated and the current active key is
// retired (a new secret gets fresh active and next keys). setSecret
// publishes the pending JWK Set to the optional public-JWKS secret.
// testSecret proves that the pending keys sign and verify with an
// independent JWKS consumer (keyfunc) and that tokens from the current
// active key still verify. Private keys are sealed with pkg/envelope under a
// KMS key, bound to the secret and the kid. An explicit emergency re-key
// mode (RekeyTag on the secret) replaces both keys at once. A retired key's
// removal clock starts no earlier than the first createSecret that finds it
// retired in AWSCURRENT, i.e. after the promotion that retired it, however
// late that promotion came.
//
// It owns the rotation's decisions and the function's configuration
// (Config, ConfigFromEnv). It does not own the document format and its
// validation (pkg/jwks), the sealing (pkg/envelope), the order of the steps
// and the promotion in finishSecret (pkg/rotation's engine), the grammar of
// environment values (internal/envconf), or the AWS clients (main builds
// them and passes them in Deps).
package jwtstrategy
