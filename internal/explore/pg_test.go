package explore_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotation-suite/rotation/functions/dbrotate/pgstrategy"
	"github.com/rotation-suite/rotation/internal/explore"
	"github.com/rotation-suite/rotation/internal/password"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// pgGrace is the exploration's OUTGOING_USER_GRACE: three actions long.
const pgGrace = 2 * time.Minute

// memRole is one role of the in-memory PostgreSQL.
type memRole struct {
	verifier   string
	validUntil time.Time // zero: infinity
	memberOf   []string
	createRole bool
}

// memDB is an in-memory PostgreSQL behind pgstrategy's DB seam: roles with
// SCRAM verifiers and VALID UNTIL, password authentication as the server
// does it (pgstrategy.VerifierMatches), the server's SQLSTATEs, and the
// role locks (LockRole) with their transactions: a locked session's changes
// are invisible to other sessions until Unlock commits them, and Close
// discards them and releases the lock. It counts as one server and one
// database; Target is ignored.
//
// A LockRole that finds the lock held by another open session fails at
// once with 55P03, as PostgreSQL's lock_timeout would: the explorer runs
// one invocation at a time, so the holder is the side a Concurrent action
// paused, which cannot go on before the running side ends. Waiting would
// deadlock the scheduler; the timeout is what PostgreSQL answers when the
// holder stalls for longer than the wait.
type memDB struct {
	mu    sync.Mutex
	now   func() time.Time
	roles map[string]*memRole
	locks map[string]*memSession // role → the session holding its lock
}

// matches memoizes VerifierMatches (PBKDF2 with 4096 rounds, the cost of
// nearly every login) per verifier and password, across worlds: both are
// immutable strings, and a verifier's random salt makes it unique.
var matches = struct {
	sync.Mutex
	m map[[2]string]bool
}{m: map[[2]string]bool{}}

func verifierMatches(verifier, password string) bool {
	k := [2]string{verifier, password}
	matches.Lock()
	ok, seen := matches.m[k]
	matches.Unlock()
	if seen {
		return ok
	}
	ok = pgstrategy.VerifierMatches(verifier, password)
	matches.Lock()
	if len(matches.m) > 1<<18 {
		clear(matches.m)
	}
	matches.m[k] = ok
	matches.Unlock()
	return ok
}

// initialVerifiers are the verifiers of the roles every world starts with,
// computed once.
var initialVerifiers = sync.OnceValues(func() (map[string]string, error) {
	out := map[string]string{}
	for role, pw := range map[string]string{"app": "initial-app-password-0", "admin": "initial-admin-password-0"} {
		v, err := pgstrategy.ScramVerifier(pw)
		if err != nil {
			return nil, err
		}
		out[role] = v
	}
	return out, nil
})

func pgErr(code, msg string) error {
	return &pgconn.PgError{Severity: "FATAL", Code: code, Message: msg}
}

// login reports whether password logs in as role now (the caller holds mu).
func (d *memDB) login(role, password string) error {
	r := d.roles[role]
	if r == nil {
		return pgErr("28000", "role does not exist")
	}
	if !verifierMatches(r.verifier, password) {
		return pgErr("28P01", "password authentication failed for user "+role)
	}
	if !r.validUntil.IsZero() && !d.now().Before(r.validUntil) {
		return pgErr("28P01", "password authentication failed for user "+role) // as the server says for an expired password
	}
	return nil
}

// Login is the check the subject's invariants use.
func (d *memDB) Login(user, password string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.login(user, password)
}

func (d *memDB) Connect(_ context.Context, _ pgstrategy.Target, l pgstrategy.Login) (pgstrategy.Session, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.login(l.User, l.Password); err != nil {
		return nil, err
	}
	return &memSession{db: d, user: l.User}, nil
}

type memSession struct {
	db     *memDB
	user   string
	closed bool
	locked string   // the role whose lock the open transaction holds, or ""
	tx     []func() // the open transaction's changes, applied by Unlock
}

// apply runs a change now, or at Unlock inside a transaction (the caller
// holds mu).
func (s *memSession) apply(f func()) {
	if s.locked != "" {
		s.tx = append(s.tx, f)
		return
	}
	f()
}

// endTx ends the open transaction, committing or discarding its changes,
// and releases its lock (the caller holds mu).
func (s *memSession) endTx(commit bool) {
	if commit {
		for _, f := range s.tx {
			f()
		}
	}
	s.tx = nil
	if s.locked != "" && s.db.locks[s.locked] == s {
		delete(s.db.locks, s.locked)
	}
	s.locked = ""
}

func (s *memSession) LockRole(_ context.Context, role string) error {
	s.db.mu.Lock()
	defer s.db.mu.Unlock()
	if s.closed {
		return pgErr("08006", "the connection is closed")
	}
	if s.locked != "" {
		return pgErr("25001", "there is already a transaction in progress") // the strategy never nests
	}
	if h := s.db.locks[role]; h != nil && h != s && !h.closed {
		return pgErr("55P03", "canceling statement due to lock timeout")
	}
	if s.db.locks == nil {
		s.db.locks = map[string]*memSession{}
	}
	s.db.locks[role] = s
	s.locked = role
	return nil
}

func (s *memSession) Unlock(context.Context) error {
	s.db.mu.Lock()
	defer s.db.mu.Unlock()
	if s.closed {
		return pgErr("08006", "the connection is closed")
	}
	s.endTx(true)
	return nil
}

func (s *memSession) mayAlter(role string) error {
	if role != s.user && !s.db.roles[s.user].createRole {
		return pgErr("42501", "permission denied to alter role")
	}
	return nil
}

func (s *memSession) SetPassword(_ context.Context, role, verifier string, validInfinity bool) error {
	s.db.mu.Lock()
	defer s.db.mu.Unlock()
	r := s.db.roles[role]
	if r == nil {
		return pgErr("42704", "role does not exist")
	}
	if err := s.mayAlter(role); err != nil {
		return err
	}
	s.apply(func() {
		r.verifier = verifier
		if validInfinity {
			r.validUntil = time.Time{}
		}
	})
	return nil
}

func (s *memSession) CreateClone(_ context.Context, clone, original, verifier string) error {
	s.db.mu.Lock()
	defer s.db.mu.Unlock()
	if !s.db.roles[s.user].createRole {
		return pgErr("42501", "permission denied to create role")
	}
	if s.db.roles[clone] != nil {
		return pgErr("42710", "role already exists")
	}
	s.apply(func() { s.db.roles[clone] = &memRole{verifier: verifier, memberOf: []string{original}} })
	return nil
}

func (s *memSession) SetValidUntil(_ context.Context, role string, until time.Time) error {
	s.db.mu.Lock()
	defer s.db.mu.Unlock()
	r := s.db.roles[role]
	if r == nil {
		return pgErr("42704", "role does not exist")
	}
	if err := s.mayAlter(role); err != nil {
		return err
	}
	s.apply(func() { r.validUntil = until.Truncate(time.Second) })
	return nil
}

func (s *memSession) Takeover(_ context.Context, pending, current string) (pgstrategy.TakeoverFacts, error) {
	s.db.mu.Lock()
	defer s.db.mu.Unlock()
	p, c := s.db.roles[pending], s.db.roles[current]
	if p == nil || c == nil {
		return pgstrategy.TakeoverFacts{}, nil
	}
	return pgstrategy.TakeoverFacts{Found: true, Related: slices.Contains(p.memberOf, current) || slices.Contains(c.memberOf, pending)}, nil
}

func (s *memSession) Roles(_ context.Context, names []string) (map[string]pgstrategy.RoleFacts, error) {
	s.db.mu.Lock()
	defer s.db.mu.Unlock()
	out := map[string]pgstrategy.RoleFacts{}
	for _, n := range names {
		if r := s.db.roles[n]; r != nil {
			out[n] = pgstrategy.RoleFacts{MemberOf: slices.Clone(r.memberOf), Attrs: "INHERIT,CONNECTION LIMIT -1"}
		}
	}
	return out, nil
}

func (s *memSession) Alive() bool { return !s.closed }

// Close ends the session as a dead connection does: an open transaction
// is rolled back and its lock released.
func (s *memSession) Close() {
	s.db.mu.Lock()
	defer s.db.mu.Unlock()
	s.endTx(false)
	s.closed = true
}

// pgCred is a login the subject has seen in the secret.
type pgCred struct {
	user, password string
	seq            int       // order of first sight: a role's newer password supersedes older ones
	promised       bool      // it was AWSCURRENT (a pending login that never was promises nothing)
	retired        time.Time // when it stopped being AWSCURRENT; zero while it is
}

// pgSubject explores the PostgreSQL strategy, single-user or with
// alternating users (clone mode, an admin secret). Its invariants: the
// database accepts AWSCURRENT's login (or, while a rotation is open, the
// pending one's — single-user rotation changes the one password in
// setSecret); with alternating users the login that stopped being
// AWSCURRENT keeps working for OUTGOING_USER_GRACE after the promotion
// unless a later rotation set a new password on its role.
type pgSubject struct {
	alternating bool
	db          *memDB
	creds       map[string]*pgCred // user + "\x00" + password
	seq         int
}

func newPGSingle() explore.Subject { return &pgSubject{} }
func newPGAlternating() explore.Subject {
	return &pgSubject{alternating: true}
}

func (s *pgSubject) Setup(ctx context.Context, w *explore.World) ([]string, error) {
	s.creds = map[string]*pgCred{}
	s.db = &memDB{now: w.Clock.Now, roles: map[string]*memRole{}}
	vs, err := initialVerifiers()
	if err != nil {
		return nil, err
	}
	s.db.roles["app"] = &memRole{verifier: vs["app"]}
	s.db.roles["admin"] = &memRole{verifier: vs["admin"], createRole: true}
	secret := map[string]any{"engine": "postgres", "host": "db.explore.internal", "port": 5432, "username": "app", "password": "initial-app-password-0", "dbname": "app"}
	if s.alternating {
		adm, _ := json.Marshal(map[string]any{"engine": "postgres", "host": "db.explore.internal", "username": "admin", "password": "initial-admin-password-0"})
		arn, err := w.CreateSecret(ctx, "explore/pg-admin", adm)
		if err != nil {
			return nil, err
		}
		secret["masterarn"] = arn
	}
	b, _ := json.Marshal(secret)
	arn, err := w.CreateSecret(ctx, "explore/pg-app", b)
	return []string{arn}, err
}

func (s *pgSubject) Strategy(*explore.World) (rotation.Strategy, error) {
	return pgstrategy.New(pgstrategy.Config{Password: password.Policy{Length: 24}, OutgoingGrace: pgGrace}, pgstrategy.Deps{DB: s.db})
}

func parseLogin(v []byte) (user, password string, err error) {
	var m struct{ Username, Password string }
	if err := json.Unmarshal(v, &m); err != nil {
		return "", "", err
	}
	return m.Username, m.Password, nil
}

func (s *pgSubject) Accepts(_ context.Context, _ *explore.World, _ int, value []byte) error {
	u, p, err := parseLogin(value)
	if err != nil {
		return err
	}
	return s.db.Login(u, p)
}

func (s *pgSubject) see(user, password string, promised bool) *pgCred {
	k := user + "\x00" + password
	c := s.creds[k]
	if c == nil {
		s.seq++
		c = &pgCred{user: user, password: password, seq: s.seq}
		s.creds[k] = c
	}
	c.promised = c.promised || promised
	return c
}

func (s *pgSubject) Check(ctx context.Context, w *explore.World) error {
	if !s.alternating {
		return nil // single user: the generic invariant (current, or pending while open) is the whole promise
	}
	now := w.Clock.Now()
	_, cur := w.Current(ctx, 0)
	u, p, err := parseLogin([]byte(cur))
	if err != nil {
		return explore.Violationf("pg-secret", "AWSCURRENT is not a database secret: %v", err)
	}
	// AWSPREVIOUS first: it may have been AWSCURRENT only inside the last
	// action, and it is older than AWSCURRENT.
	if pv := w.Previous(ctx, 0); pv != "" {
		if pu, pp, err := parseLogin([]byte(pv)); err == nil {
			s.see(pu, pp, true)
		}
	}
	curCred := s.see(u, p, true)
	curCred.retired = time.Time{}
	// A pending login that works: its setSecret gave the role a new password.
	if _, pv := w.Pending(ctx, 0); pv != "" {
		if pu, pp, err := parseLogin([]byte(pv)); err == nil && s.db.Login(pu, pp) == nil {
			s.see(pu, pp, false)
		}
	}
	newest := map[string]int{}
	for _, c := range s.creds {
		newest[c.user] = max(newest[c.user], c.seq)
	}
	for _, c := range s.creds {
		if c != curCred && c.promised && c.retired.IsZero() {
			c.retired = now
		}
		if c == curCred || !c.promised || c.seq < newest[c.user] || !now.Before(c.retired.Add(pgGrace)) {
			continue // current, never promised, superseded by its role's newer password, or past its grace
		}
		if err := s.db.Login(c.user, c.password); err != nil {
			return explore.Violationf("pg-outgoing-grace", "the login of %s that stopped being AWSCURRENT at %s is refused at %s, within its grace until %s: %v",
				c.user, c.retired.Format(time.TimeOnly), now.Format(time.TimeOnly), c.retired.Add(pgGrace).Format(time.TimeOnly), err)
		}
	}
	return nil
}
