// Package envelope owns envelope encryption of secret payloads: a data key
// from a key provider (AWS KMS, or a local key-encryption key), keys derived
// from it with HKDF-SHA-512 (format 2: once per data key, with counter
// nonces; format 1: per message), AES-256-GCM with the header and the
// encryption context as authenticated data, a key commitment checked before
// decryption, and an optional bounded data-key cache. It also owns the blob
// formats (docs/envelope-format.md), their text forms, context handles
// (PrepareContext) and the Column handle for encrypted database columns,
// whose stable context (table, column) goes to KMS while the row id is
// authenticated with each value only. Package field has the column type for
// database/sql and pgx, package colmigrate the backfill and re-wrap of a
// column. It does not manage keys (creating, rotating or granting KMS keys
// is the operator's), store blobs, or import the rotation engine.
//
// Usage:
//
//	cfg, _ := config.LoadDefaultConfig(ctx)
//	kp, err := envelope.NewKMSProvider(ctx, envelope.KMSConfig{
//		Client: kms.NewFromConfig(cfg),
//		KeyID:  "alias/app-secrets", // resolved to its key ARN once, here
//	})
//	env, err := envelope.New(envelope.Config{
//		Provider: kp,
//		Cache:    &envelope.CacheConfig{MaxAge: 5 * time.Minute, MaxMessages: 1000},
//	})
//	ec := envelope.Context{"secret": "prod/jwt", "kid": kid}
//	blob, err := env.Encrypt(ctx, privateKeyPEM, ec)
//	pt, err := env.Decrypt(ctx, blob, ec) // exactly the same context
//
//	// hot loops: append into reused buffers (cipher.AEAD idiom)
//	buf, err = env.AppendEncrypt(ctx, buf[:0], payload, ec)
//	out, err = env.AppendDecrypt(ctx, out[:0], buf, ec)
//
//	// a column value bound to its cell: one data key serves the column
//	col, err := env.Column("payees", "bank_account", nil)
//	text, err := col.Encrypt(ctx, id, []byte(account))  // "env2:…"
//	acct, err := col.Decrypt(ctx, id, text)
//
// Errors are *Error values matching one of ErrAuthentication,
// ErrContextMismatch, ErrKeyNotAllowed, ErrUnsupportedVersion, ErrMalformed
// or ErrProvider with errors.Is; callers fail closed on any of them. KMS
// failures of kind ErrProvider carry an *extcall.Error with the class
// (throttling, permission, network, …). Every KMS call goes through extcall.Do ("kms:Decrypt",
// "kms:GenerateDataKey", "kms:ReEncrypt", "kms:DescribeKey"), so it runs
// under the caller's deadline as given (or a time budget the caller installed,
// as the rotation engine does for a Lambda step) and can be counted and
// fault-injected.
//
// Plaintext and key material never appear in errors or logs: Secret,
// DataKey, LocalKey and Envelope redact themselves in String, GoString,
// fmt verbs and slog. Clearing keys is best effort in Go: data keys are
// cleared once their keys are derived, and the derived keys (format 1's PRK,
// format 2's key-tag key) when a cache entry is evicted or an uncached
// operation ends, but the SDK's response buffers, the AES key schedule and
// pooled HMAC states keep copies until the garbage collector reclaims them.
package envelope
