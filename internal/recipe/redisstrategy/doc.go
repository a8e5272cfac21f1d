// Package redisstrategy is the worked example of docs/adding-a-function.md:
// a rotation strategy for a Redis ACL user's password, written by following
// the recipe and nothing else, over an in-memory ACL (MemACL) so that it runs
// in tests. It passes the shared rotation contract (internal/contracttest),
// the crash-point sweep (internal/crashtest) and the model-based exploration
// (internal/explore) unchanged, like the three shipped strategies.
//
// Redis lets a user hold several passwords (ACL SETUSER user >password), so
// the rotation needs no second user: setSecret adds the pending password,
// testSecret authenticates with it, and after the promotion the hook removes
// the passwords of stored versions that no staging label points at any more.
// The previous password therefore keeps working until the next rotation.
//
// It owns the secret's shape ({"username","password",…}), the calls to the
// ACL and their idempotency; labels, events and storage of the rotated secret
// are the engine's. It is not deployed: a real function would add
// functions/redisrotate/main.go (the same few lines as every main), an ACL
// over a Redis client, a stack and sample events.
package redisstrategy
