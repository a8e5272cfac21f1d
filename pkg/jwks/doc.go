// Package jwks owns the JWT signing-key secret format that functions/jwtrotate
// writes, and the helpers services use to consume it:
//
//   - Document: the versioned JSON schema of the rotated secret (active key,
//     pre-published next key, retired public keys with their removal times,
//     and the JWK Set ready to serve), with its validation rules;
//   - the JWK side: RFC 7638 thumbprints as kid, public JWKs, the algorithms
//     (ES256, RS256, EdDSA) and their key checks;
//   - Signer: reads AWSCURRENT through pkg/secretcache, opens the active
//     private key through a Sealer (pkg/envelope under a KMS key) off the
//     request path, and signs with the kid header;
//   - Verifier: verifies tokens against the JWK Set with pinned algorithms
//     (RFC 8725), read through pkg/secretcache (refreshed in the background,
//     and, rate limited, on an unknown kid);
//   - Handler: serves the JWK Set over HTTP with Cache-Control and ETag.
//
// Private keys never appear in the JWK Set: the set a Document carries, and
// every set a Verifier loads, is rejected if a key has a private member.
package jwks
