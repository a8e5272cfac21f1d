// Package secretcache is the rotation-aware cache of AWS Secrets Manager
// values an application reads its rotated secrets through. It owns when a
// secret is read and what a request gets while it is being read. It does
// not interpret values (a Derived value is built by the caller's function),
// write or rotate secrets, or listen for notifications itself (package
// sqsinvalidate does, and calls Invalidate):
//
//   - Values are cached by version: a stage (AWSCURRENT by default) maps to
//     the version that carried it when last read, and a version's value never
//     changes, so GetVersion does not read a version twice while fewer than
//     256 versions are cached.
//   - A request never waits for a refresh once a value is loaded (GetFresh,
//     for a caller that must not use a value past TTL, is the exception). A
//     value near or past TTL is served as it is while one background read
//     replaces it (stale-while-revalidate); only a value older than MaxStale
//     — the reads kept failing — is not served: the request then waits for a
//     read, and fails closed with ErrUnavailable if it fails.
//   - One read per secret and stage is in flight at a time (single flight);
//     the callers of a cold or expired entry share it, each bounded by its
//     own context.
//   - Refresh(ctx, id) is for "the credential was just refused": it reads the
//     secret now, but at most once per MinRefreshInterval per secret and
//     stage, so a storm of refused logins makes a bounded number of Secrets
//     Manager calls (callers inside the interval get the cached value, or
//     join the read in flight).
//   - Invalidate(idOrARN) reads a secret again at once, for notifications of a
//     rotation: package sqsinvalidate polls an SQS queue subscribed to the
//     suite's SNS topic (rotation.succeeded) or targeted by an EventBridge rule
//     for Secrets Manager's RotationSucceeded events, and calls it.
//   - Subscribe tells a consumer (the database pool helper, a JWT signer) that
//     a stage moved to a new version, so it can act at once.
//
// A read is one secretsmanager:GetSecretValue through extcall.Do
// ("secretsmanager:GetSecretValue"), so tests can count and fault it. The
// application's role needs secretsmanager:GetSecretValue on the secret (and
// kms:Decrypt on its key when that is a customer managed key).
//
// # Why not aws-secretsmanager-caching-go
//
// AWS's caching client (secretcache.Cache, v1 on SDK v1 and its v2 port on
// SDK v2) was read before this package was written. It refreshes an item
// synchronously, under the item's mutex, on the request path: once the
// item's TTL (default one hour, jittered to between half and all of it) has
// passed, every caller of that secret waits behind one DescribeSecret plus
// GetSecretValue. It has no forced refresh, so an application refused with a
// cached password waits for the TTL; no rate limit on re-reads; no
// invalidation hook; no bound on staleness (a failing refresh keeps the last
// value for ever, with an error backoff); and a value read for one stage is
// keyed by version only after a DescribeSecret. Wrapping it would keep the
// blocking refresh, the thing a rotation-aware cache must not do, so this
// package is written on the SDK directly: one GetSecretValue per read (which
// returns the version id and stages itself), reads off the request path, and
// the rotation-specific entry points above.
package secretcache
