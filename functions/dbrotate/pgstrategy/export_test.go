package pgstrategy

import "io/fs"

// UsePackagedFS replaces where the packaged trust bundle is read from, for
// one test; the returned function restores the embedded copy.
func UsePackagedFS(fsys fs.FS) (restore func()) {
	old := packagedFS
	packagedFS = fsys
	return func() { packagedFS = old }
}

// RoleLockKey is roleLockKey, for tests that look for the lock in pg_locks.
func RoleLockKey(role string) int64 { return roleLockKey(role) }
