// Package layering holds the tests that enforce the repository's import
// rules: cmd → functions → internal → pkg, never upwards, and the consumer
// libraries an application links (pkg/envelope, pkg/jwks, pkg/apikey,
// pkg/secretcache and its poller, pkg/pgpool and its secret parser
// pkg/pgsecret, and their leaf pkg/extcall) free of the Lambda rotation
// engine and of everything else the suite's functions need.
package layering
