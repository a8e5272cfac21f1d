// Package pgpool keeps a pgx v5 connection pool (pgxpool) working across
// the rotations functions/dbrotate performs, single-user and alternating. It
// owns how an application's database connections get their credentials:
//
//   - every new connection takes host, port, database, user, password and
//     TLS settings from the secret's AWSCURRENT value, read through a
//     pkg/secretcache Cache (a memory hit; no Secrets Manager call on the
//     connection path once loaded). The secret is read by pkg/pgsecret, the
//     parser dbrotate uses, so TLS follows its sslmode, sslservername,
//     sslrootcertpem and sslrootcertonly fields exactly as dbrotate does;
//   - a connection refused with SQLSTATE 28P01 (invalid password) triggers
//     a forced, rate-limited re-read of the secret (reads that started after
//     the refusal) and a retry with the new AWSCURRENT. If AWSCURRENT did not
//     change, the refusal is the window of a single-user rotation between
//     setSecret and finishSecret, in which only the pending password works:
//     the retry then uses AWSPENDING, as do the connections opened until
//     AWSCURRENT moves (and if AWSPENDING is gone, finishSecret ran meanwhile
//     and AWSCURRENT is read once more). Each retry connects with exactly the
//     credentials so chosen; a refused retry starts the next round of reads,
//     up to four retries per call, and the call gives up as soon as no stage
//     names a version it was not yet refused with. The reads are joined by
//     every concurrent caller and rate-limited per stage (a read may wait
//     its turn, up to the cache's MinRefreshInterval, within the call's
//     context), so a storm of refusals costs a handful of reads. The
//     guarantee: a call that overlaps at most one rotation never fails for a
//     refused password; a call fails only if the database's password changes
//     during every one of its retries. Rotations cannot overlap and each is four Lambda invocations,
//     so even "rotate now" run twice back to back leaves far more time
//     between two password changes than one login takes. A failure to
//     connect happens before any statement is sent, so the retry is safe for
//     every statement;
//   - connections opened with credentials of an older version are closed
//     within a bound once the cache has the new version: idle ones at the next
//     check (every RecycleCheck, and at once when the cache reports the new
//     version — immediately after a notification with
//     pkg/secretcache/sqsinvalidate), busy ones when released.
//
// The retrying entry points are Pool's Acquire, Exec, Query, QueryRow, Begin
// and Ping; the other methods of the embedded *pgxpool.Pool work as they do
// in pgxpool, without the retry.
//
// IAM: secretsmanager:GetSecretValue on the secret (AWSCURRENT, and
// AWSPENDING for the single-user window), kms:Decrypt on its key if it is a
// customer managed key. The package imports nothing from the rotation side.
package pgpool
