package pgstrategy

import (
	"context"
	"crypto/tls"
	"time"
)

// Target is where a connection goes: the server, the database and the TLS
// settings (TLS nil: plaintext, which only an explicit opt-in allows).
type Target struct {
	Host     string
	Port     int
	Database string
	TLS      *tls.Config
}

// Login is who a connection logs in as. Admin logins accept only
// SCRAM-SHA-256; application logins also accept md5 (a password set before
// the role's first rotation).
type Login struct {
	User     string
	Password string
	Admin    bool
}

// String keeps the password out of every log line.
func (l Login) String() string { return "pgstrategy.Login{user=" + l.User + " password=[REDACTED]}" }

// GoString is String, for %#v.
func (l Login) GoString() string { return l.String() }

// DB is everything the strategy does to the database: the seam between the
// rotation logic (which login to try, which role gets which password, the
// takeover and preflight rules) and PostgreSQL. Production uses the pgx
// implementation (NewPGX); a test of the rotation state machine may plug in
// an in-memory target as Deps.DB.
//
// The strategy wraps every method call in rotation.Call (so each is timed
// against the step's budget, counted and fault-injectable as
// "postgres:connect", "postgres:exec" or "postgres:query") and classifies the
// errors itself, so an implementation returns the server's errors as
// *pgconn.PgError carrying PostgreSQL's SQLSTATE: 28P01 refused password
// (wrong, or the role's VALID UNTIL has passed), 28000 no such login role or
// no LOGIN, 42501 permission denied, 42704 role does not exist, 42710 role
// already exists, 57P03/53300 not accepting connections; and an unreachable
// server as a net.Error. Arguments are validated by the strategy before a
// method is called (role names by ValidateRoleName, verifiers of the shape
// ScramVerifier produces).
type DB interface {
	// Connect opens one session. PostgreSQL lets any role change its own
	// password; changing another role's needs CREATEROLE (an admin login).
	Connect(ctx context.Context, t Target, l Login) (Session, error)
}

// Session is one logged-in connection. It is used by one goroutine at a time.
type Session interface {
	// SetPassword runs ALTER ROLE role WITH PASSWORD verifier, with
	// VALID UNTIL 'infinity' when validInfinity is set (an admin bringing
	// back a role whose previous term was expired).
	SetPassword(ctx context.Context, role, verifier string, validInfinity bool) error
	// CreateClone runs CREATE ROLE clone WITH LOGIN PASSWORD verifier
	// VALID UNTIL 'infinity' IN ROLE original.
	CreateClone(ctx context.Context, clone, original, verifier string) error
	// SetValidUntil runs ALTER ROLE role VALID UNTIL until: new logins with
	// the role's password are refused after until.
	SetValidUntil(ctx context.Context, role string, until time.Time) error
	// Takeover reads what the takeover check compares between the role
	// about to get a password (pending) and the current one.
	Takeover(ctx context.Context, pending, current string) (TakeoverFacts, error)
	// Roles reads the preflight facts of those of names that exist.
	Roles(ctx context.Context, names []string) (map[string]RoleFacts, error)
	// LockRole serialises every change this function makes to role's
	// password or validity. It opens a transaction on the session and takes
	// PostgreSQL's transaction-level advisory lock keyed on the role's name
	// (pg_advisory_xact_lock with roleLockKey: a fixed 64-bit key computed
	// from the name, the same in every process and version). It waits for a
	// session holding the same lock for at most the time ctx leaves (then
	// SQLSTATE 55P03, lock_not_available); on an error no transaction stays
	// open and no lock is held. Statements run on the session until Unlock
	// belong to that transaction: other sessions see none of them before
	// Unlock. A session that ends first (Close, a crash of the process, a
	// broken connection) rolls them back and releases the lock, so a cached
	// session never keeps one. Advisory locks are per database: only sessions
	// connected to the same database exclude one another.
	LockRole(ctx context.Context, role string) error
	// Unlock commits the transaction LockRole opened: its statements take
	// effect and the lock is released in one step. After a failed statement
	// in the transaction the caller closes the session instead.
	Unlock(ctx context.Context) error
	// Alive reports whether the session can still be used.
	Alive() bool
	// Close ends the session without waiting long.
	Close()
}

// TakeoverFacts is what the takeover check reads about two roles.
type TakeoverFacts struct {
	// Found is false when either role does not exist.
	Found bool
	// ExtraAttrs lists, comma-separated, the attributes among SUPERUSER,
	// CREATEROLE, CREATEDB, REPLICATION, BYPASSRLS (in that order) that
	// pending has and current lacks.
	ExtraAttrs string
	// ExtraRoles lists, comma-separated and sorted, the roles other than the
	// two that pending is a member of (directly or not) and current is not.
	ExtraRoles string
	// Related is true when either role is a member of the other.
	Related bool
}

// RoleFacts is what the alternating-users preflight compares between the
// two login roles of a pair.
type RoleFacts struct {
	// Owned counts the tables, sequences, views, functions and schemas the
	// role owns in the database.
	Owned int64
	// MemberOf lists, sorted, the roles it is a direct member of.
	MemberOf []string
	// Config is its ALTER ROLE … SET settings.
	Config []string
	// Attrs lists SUPERUSER, INHERIT, CREATEROLE, CREATEDB, BYPASSRLS,
	// REPLICATION (those it has, in that order) and "CONNECTION LIMIT n",
	// comma-separated.
	Attrs string
}
