// JWT signing keys as jwtrotate writes them (docs/jwt.md): the keyring
// document with its validation rules, a verifier on the JWK Set with pinned
// algorithms and a rate-limited reload on an unknown kid, and a signer that
// opens the keyring's active private key (envelope + KMS under the
// documented context) and signs with its kid — the rules of pkg/jwks.
//
// This module is the public surface; the code is in ./jwt/: jwk.ts (JWKs and
// JWK Sets), keyring.ts (the signing-key document), source.ts (reading the
// secret), reload.ts (the shared single-flight reload), verifier.ts
// (JwtVerifier), signer.ts (JwtSigner and opening a private key).

export { ALGORITHMS, checkAlgorithm, parsePublicJWK, parseJwkSet, type Algorithm, type PublicKey } from './jwt/jwk.js';
export { JWT_SCHEMA_VERSION, parseJwtKeyring, extractJwkSet, type SigningKey, type RetiredKey, type JwtKeyring } from './jwt/keyring.js';
export { cachedSecret, fromCache, currentSecret, type SecretReader } from './jwt/source.js';
export { JwtVerifier, type JwtVerifierConfig } from './jwt/verifier.js';
export { keyContext, KeyMismatchError, openSigningKey, JwtSigner, type JwtSignerConfig } from './jwt/signer.js';
