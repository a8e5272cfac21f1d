// Package pgstrategy is the PostgreSQL rotation strategy: it owns the
// function's configuration (ConfigFromEnv), the client-side SCRAM-SHA-256
// verifier (no plaintext password ever reaches the server), identifier and
// literal handling, the connection settings and trusted roots, the
// single-user and alternating-users (clone or pre-created pair) flows, the
// takeover, confused-deputy and master-host checks, the alternating-users
// preflight, the outgoing user's expiry, the recovery that finds which
// stored version's password the database still accepts, and the
// classification of database errors. Everything it does to the database goes
// through the narrow DB interface (db.go; pgx in production), so the rotation
// logic can also run against an in-memory target.
//
// It does not own the secret's JSON format and TLS settings (pkg/pgsecret,
// shared with pkg/pgpool), password generation (internal/password), nor
// labels, scheduling or storage of the rotated secret: those are the
// engine's (pkg/rotation).
package pgstrategy
