// Package pgpool keeps a pgx v5 connection pool (pgxpool) working across
// the rotations functions/dbrotate performs, single-user and alternating. It
// owns how an application's database connections get their credentials:
//
//   - every new connection takes host, port, database, user, password and
//     TLS settings from the secret's AWSCURRENT value, read through a
//     pkg/secretcache Cache (a memory hit; no Secrets Manager call on the
//     connection path once loaded). TLS follows the secret's sslmode,
//     sslservername and sslrootcertpem fields exactly as dbrotate does;
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

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotation-suite/rotation/pkg/secretcache"
)

// Config configures a Pool.
type Config struct {
	Cache    *secretcache.Cache // required
	SecretID string             // required: the application secret dbrotate rotates
	// Base is the pgxpool configuration to start from (sizes, lifetimes,
	// health checks, tracer); nil: pgxpool's defaults. Its connection target,
	// credentials and TLS settings are replaced by the secret's; its
	// BeforeConnect, AfterConnect, PrepareConn, AfterRelease and BeforeClose
	// hooks still run, after the pool's own.
	Base *pgxpool.Config
	// CABundlePEM is trusted in addition to the system roots and the
	// secret's sslrootcertpem.
	CABundlePEM []byte
	// AllowPlaintext accepts a secret with sslmode=disable.
	AllowPlaintext bool
	// RecycleCheck is how often idle connections are checked against the
	// cache's AWSCURRENT version (each check is a cache hit that also keeps
	// the cache's background refresh going); 0: one second.
	RecycleCheck time.Duration
}

// Stats are the pool's counters since New.
type Stats struct {
	AuthRetries int64 // connections refused with 28P01 and retried
	PendingUsed int64 // retries that used AWSPENDING (single-user window)
	Recycled    int64 // connections closed because a newer version is current
}

type parsed struct {
	cred *credentials
	tls  *tls.Config
}

// Pool is a pgxpool.Pool whose connections follow the secret's rotations.
type Pool struct {
	*pgxpool.Pool
	cfg   Config
	roots *x509.CertPool

	parsedMu sync.Mutex
	parsed   map[string]*parsed // version → credentials

	credVer sync.Map // credential digest → version id
	connVer sync.Map // *pgx.Conn → version id
	fresh   sync.Map // *pgx.Conn → struct{}: opened, not yet handed out

	overrideMu sync.Mutex
	overrides  map[string]*secretcache.Value // refused AWSCURRENT version → the AWSPENDING value used instead

	retries, pendingUsed, recycled atomic.Int64

	kick  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	unsub func()
}

// New builds the pool. It connects lazily (or as Base.MinConns asks); call
// Ping to check the database is reachable.
func New(ctx context.Context, cfg Config) (*Pool, error) {
	if cfg.Cache == nil || cfg.SecretID == "" {
		return nil, errors.New("pgpool: Config needs Cache and SecretID")
	}
	if cfg.RecycleCheck <= 0 {
		cfg.RecycleCheck = time.Second
	}
	base := cfg.Base
	if base == nil {
		var err error
		if base, err = pgxpool.ParseConfig(""); err != nil {
			return nil, err
		}
	} else {
		base = base.Copy()
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if len(cfg.CABundlePEM) > 0 && !roots.AppendCertsFromPEM(cfg.CABundlePEM) {
		return nil, errors.New("pgpool: Config.CABundlePEM holds no PEM certificate")
	}
	p := &Pool{cfg: cfg, roots: roots, parsed: map[string]*parsed{}, overrides: map[string]*secretcache.Value{}, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	userBefore, userAfter, userPrepare, userRelease, userClose := base.BeforeConnect, base.AfterConnect, base.PrepareConn, base.AfterRelease, base.BeforeClose
	base.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		if err := p.beforeConnect(ctx, cc); err != nil {
			return err
		}
		if userBefore != nil {
			return userBefore(ctx, cc)
		}
		return nil
	}
	base.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		cc := c.Config()
		if v, ok := p.credVer.Load(digest(cc.User, cc.Password)); ok {
			p.connVer.Store(c, v)
		}
		p.fresh.Store(c, struct{}{})
		if userAfter != nil {
			return userAfter(ctx, c)
		}
		return nil
	}
	base.PrepareConn = func(ctx context.Context, c *pgx.Conn) (bool, error) {
		// A connection just opened has logged in: hand it out even if the
		// cache moved on during the login (it is recycled when released).
		// Destroying it would make pgxpool give up after MaxConns+1 tries
		// while rotations follow each other faster than logins complete.
		if _, fresh := p.fresh.LoadAndDelete(c); !fresh && !p.upToDate(c) {
			p.recycled.Add(1)
			return false, nil // destroyed; pgxpool retries on another connection
		}
		if userPrepare != nil {
			return userPrepare(ctx, c)
		}
		return true, nil
	}
	base.AfterRelease = func(c *pgx.Conn) bool {
		if !p.upToDate(c) {
			p.recycled.Add(1)
			return false
		}
		if userRelease != nil {
			return userRelease(c)
		}
		return true
	}
	base.BeforeClose = func(c *pgx.Conn) {
		p.connVer.Delete(c)
		p.fresh.Delete(c)
		if userClose != nil {
			userClose(c)
		}
	}
	p.Pool, err = pgxpool.NewWithConfig(ctx, base)
	if err != nil {
		return nil, err
	}
	p.unsub = cfg.Cache.Subscribe(func(ch secretcache.Change) {
		if ch.SecretID == cfg.SecretID && ch.Stage == secretcache.StageCurrent {
			select {
			case p.kick <- struct{}{}:
			default:
			}
		}
	})
	go p.recycleLoop()
	return p, nil
}

// Close stops the recycler and closes the pool.
func (p *Pool) Close() {
	p.unsub()
	close(p.stop)
	<-p.done
	p.Pool.Close()
}

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	return Stats{AuthRetries: p.retries.Load(), PendingUsed: p.pendingUsed.Load(), Recycled: p.recycled.Load()}
}

// ConnVersions counts the pool's open connections (idle and in use) by the
// secret version whose credentials opened them.
func (p *Pool) ConnVersions() map[string]int {
	m := map[string]int{}
	p.connVer.Range(func(_, v any) bool { m[v.(string)]++; return true })
	return m
}

func digest(user, password string) string {
	sum := sha256.Sum256([]byte(user + "\x00" + password))
	return string(sum[:])
}

func (p *Pool) credentialsOf(v *secretcache.Value) (*parsed, error) {
	p.parsedMu.Lock()
	defer p.parsedMu.Unlock()
	if pc, ok := p.parsed[v.VersionID]; ok {
		return pc, nil
	}
	cred, err := parseSecret(v.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%w (version %s of %s)", err, v.VersionID, p.cfg.SecretID)
	}
	tc, err := cred.tlsConfig(p.roots, p.cfg.AllowPlaintext)
	if err != nil {
		return nil, err
	}
	if len(p.parsed) > 16 {
		clear(p.parsed)
	}
	pc := &parsed{cred: cred, tls: tc}
	p.parsed[v.VersionID] = pc
	return pc, nil
}

func (p *Pool) beforeConnect(ctx context.Context, cc *pgx.ConnConfig) error {
	v, forced := ctx.Value(forcedKey{}).(*secretcache.Value)
	if !forced {
		var err error
		if v, err = p.cfg.Cache.Get(ctx, p.cfg.SecretID); err != nil {
			return err
		}
		if o, ok := p.overrideFor(v.VersionID); ok {
			v = o
		}
	}
	pc, err := p.credentialsOf(v)
	if err != nil {
		return err
	}
	c := pc.cred
	cc.Host, cc.Port, cc.Database, cc.User, cc.Password = c.host, uint16(c.port), c.db, c.user, c.password
	cc.TLSConfig = pc.tls
	cc.Fallbacks = nil
	p.credVer.Store(digest(c.user, c.password), v.VersionID)
	return nil
}

// upToDate reports whether c was opened with the credentials in use now.
func (p *Pool) upToDate(c *pgx.Conn) bool {
	cur, ok := p.cfg.Cache.Peek(p.cfg.SecretID)
	if !ok {
		return true
	}
	ver, ok := p.connVer.Load(c)
	if !ok {
		return true
	}
	if ver == cur.VersionID {
		return true
	}
	o, ok := p.overrideFor(cur.VersionID)
	return ok && ver == o.VersionID
}

func (p *Pool) recycleLoop() {
	defer close(p.done)
	t := time.NewTicker(p.cfg.RecycleCheck)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		case <-p.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.RecycleCheck)
		_, _ = p.cfg.Cache.Get(ctx, p.cfg.SecretID) // a hit; starts the background refresh when due
		for _, c := range p.Pool.AcquireAllIdle(ctx) {
			if !p.upToDate(c.Conn()) {
				_ = c.Conn().Close(ctx) // Release then destroys it
			}
			c.Release()
		}
		cancel()
	}
}

// IsAuthFailure reports whether err is PostgreSQL refusing the password
// (SQLSTATE 28P01).
func IsAuthFailure(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "28P01"
}

// versionOf names the secret version whose credentials a failed connection
// attempt used (pgconn reports the attempt's configuration).
func (p *Pool) versionOf(connErr error) (string, bool) {
	var ce *pgconn.ConnectError
	if !errors.As(connErr, &ce) || ce.Config == nil {
		return "", false
	}
	v, ok := p.credVer.Load(digest(ce.Config.User, ce.Config.Password))
	if !ok {
		return "", false
	}
	return v.(string), true
}

// maxRetries bounds the retries of one call: each uses credentials no
// earlier attempt of the call was refused with, read after the last refusal.
const maxRetries = 4

// forcedKey carries, on a retry's context, the secret value its connection
// attempt must use (pgxpool hands the Acquire context's values to the
// connection it opens).
type forcedKey struct{}

// refusedBy adds to refused the version a refused attempt used.
func (p *Pool) refusedBy(refused map[string]bool, connErr error) {
	if u, ok := p.versionOf(connErr); ok {
		refused[u] = true
	}
}

// Acquire is pgxpool's Acquire, healing a 28P01 refusal. After each refusal
// it re-reads the secret with reads that started after that refusal (forced,
// joined by every concurrent caller and rate-limited per stage) and retries
// with exactly the credentials it chose: AWSCURRENT if the call has not been
// refused with that version yet, else AWSPENDING (a single-user rotation
// between setSecret and finishSecret) if that is new. It stops when neither
// stage offers a version the call has not been refused with (a wrong
// password everywhere costs two reads of AWSCURRENT, one of AWSPENDING and
// no retry; the rate limit may make the second wait), or after
// maxRetries retries — the database's password would have to change during
// each of them, more often than any rotation changes it.
func (p *Pool) Acquire(ctx context.Context) (*pgxpool.Conn, error) {
	c, err := p.Pool.Acquire(ctx)
	if err == nil || !IsAuthFailure(err) {
		return c, err
	}
	refused := map[string]bool{}
	for range maxRetries {
		since := time.Now() // only a read that started after the refusal can show what changed
		p.refusedBy(refused, err)
		use, pending, ok := p.choose(ctx, refused, since)
		if !ok {
			return nil, err
		}
		p.retries.Add(1)
		if pending {
			p.pendingUsed.Add(1)
		}
		c, err = p.Pool.Acquire(context.WithValue(ctx, forcedKey{}, use))
		if err == nil || !IsAuthFailure(err) {
			return c, err
		}
	}
	return nil, err
}

// choose picks the credentials of the next retry from reads that started at
// or after since: AWSCURRENT unless refused, else AWSPENDING, which then
// stands in for that AWSCURRENT for every new connection until AWSCURRENT
// moves, else AWSCURRENT once more if it moved meanwhile. ok is false when
// none offers anything new.
func (p *Pool) choose(ctx context.Context, refused map[string]bool, since time.Time) (use *secretcache.Value, pending, ok bool) {
	v, err := p.cfg.Cache.RefreshStageSince(ctx, p.cfg.SecretID, secretcache.StageCurrent, since)
	if err != nil {
		return nil, false, false
	}
	if !refused[v.VersionID] {
		return v, false, true
	}
	pendingSince := time.Now()
	pv, err := p.cfg.Cache.RefreshStageSince(ctx, p.cfg.SecretID, "AWSPENDING", since)
	if err == nil && pv.VersionID != v.VersionID && !refused[pv.VersionID] {
		p.setOverride(v.VersionID, pv)
		return pv, true, true
	}
	// No new AWSPENDING: a wrong password everywhere, or finishSecret ran
	// (and AWSPENDING went) between the two reads — then AWSCURRENT is new.
	if v, err = p.cfg.Cache.RefreshStageSince(ctx, p.cfg.SecretID, secretcache.StageCurrent, pendingSince); err != nil || refused[v.VersionID] {
		return nil, false, false
	}
	return v, false, true
}

// setOverride makes pending stand in for the AWSCURRENT version current,
// unless a value read later already does (concurrent heals finish in any
// order). An override only ever applies while the cache still names current.
func (p *Pool) setOverride(current string, pending *secretcache.Value) {
	p.overrideMu.Lock()
	defer p.overrideMu.Unlock()
	if old, ok := p.overrides[current]; ok && old.FetchedAt.After(pending.FetchedAt) {
		return
	}
	if len(p.overrides) >= 8 {
		clear(p.overrides)
	}
	p.overrides[current] = pending
}

// overrideFor returns the AWSPENDING value standing in for the AWSCURRENT
// version current, if any.
func (p *Pool) overrideFor(current string) (*secretcache.Value, bool) {
	p.overrideMu.Lock()
	defer p.overrideMu.Unlock()
	v, ok := p.overrides[current]
	return v, ok
}

// Exec runs sql on a pooled connection (see Acquire).
func (p *Pool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c, err := p.Acquire(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer c.Release()
	return c.Exec(ctx, sql, args...)
}

// Query runs sql on a pooled connection (see Acquire), released when the
// rows are closed or read to the end.
func (p *Pool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c, err := p.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		c.Release()
		return nil, err
	}
	return &releasingRows{Rows: rows, c: c}, nil
}

// QueryRow runs sql on a pooled connection (see Acquire), released by Scan.
func (p *Pool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c, err := p.Acquire(ctx)
	if err != nil {
		return errRow{err}
	}
	return &releasingRow{row: c.QueryRow(ctx, sql, args...), c: c}
}

// Begin starts a transaction on a pooled connection (see Acquire), released
// by Commit or Rollback.
func (p *Pool) Begin(ctx context.Context) (pgx.Tx, error) {
	c, err := p.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		c.Release()
		return nil, err
	}
	return &releasingTx{Tx: tx, c: c}, nil
}

// Ping checks a pooled connection (see Acquire).
func (p *Pool) Ping(ctx context.Context) error {
	c, err := p.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return c.Ping(ctx)
}

type releasingRows struct {
	pgx.Rows
	c    *pgxpool.Conn
	once sync.Once
}

func (r *releasingRows) release() { r.once.Do(r.c.Release) }

func (r *releasingRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.release()
	return false
}

func (r *releasingRows) Close() {
	r.Rows.Close()
	r.release()
}

type releasingRow struct {
	row pgx.Row
	c   *pgxpool.Conn
}

func (r *releasingRow) Scan(dest ...any) error {
	defer r.c.Release()
	return r.row.Scan(dest...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type releasingTx struct {
	pgx.Tx
	c    *pgxpool.Conn
	once sync.Once
}

func (t *releasingTx) Commit(ctx context.Context) error {
	err := t.Tx.Commit(ctx)
	t.once.Do(t.c.Release)
	return err
}

func (t *releasingTx) Rollback(ctx context.Context) error {
	err := t.Tx.Rollback(ctx)
	t.once.Do(t.c.Release)
	return err
}
