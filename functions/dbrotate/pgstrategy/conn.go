package pgstrategy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotation-suite/rotation/pkg/pgsecret"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// applicationName is what pg_stat_activity shows for the function's sessions.
const applicationName = "secrets-manager-rotation"

// Authentication methods a connection accepts. The admin login accepts only
// SCRAM-SHA-256: the admin password never leaves the function (not even as
// an MD5 hash), and SCRAM's server signature proves the server holds the
// admin's verifier. Application users may still have an MD5 password from
// before their first rotation; every password this function sets is SCRAM.
const (
	requireAuthAdmin = "scram-sha-256"
	requireAuthApp   = "scram-sha-256,md5"
)

// endpoint is where and how to connect.
type endpoint struct {
	host    string
	port    int
	db      string
	tls     *tls.Config // nil: plaintext (explicit opt-in only)
	mode    string
	warning string // non-empty for plaintext or unverified TLS
}

func (e endpoint) String() string {
	return net.JoinHostPort(e.host, strconv.Itoa(e.port)) + "/" + e.db
}

// endpointFor builds the connection target of an application secret,
// with its TLS settings (pkg/pgsecret's, trusting baseRoots).
func (s *Strategy) endpointFor(sec *Secret) (endpoint, error) {
	ep := endpoint{host: sec.Host, port: sec.PortOrDefault(), db: sec.DBNameOrDefault(), mode: sec.SSLMode}
	if sec.SSLMode == pgsecret.SSLDisable {
		if !s.cfg.AllowPlaintext {
			return ep, rotation.NewError(rotation.ClassConfiguration, "tls settings",
				fmt.Sprintf("the secret asks for sslmode=disable (no TLS) for %s, which this function refuses unless %s=true is set in its environment", ep, EnvAllowPlaintext), nil)
		}
		ep.warning = fmt.Sprintf("connections to %s are NOT encrypted (sslmode=disable, allowed by %s): the database session, including the admin login, can be read on the network", ep, EnvAllowPlaintext)
		return ep, nil
	}
	var base *x509.CertPool
	if !sec.SSLRootCertOnly {
		base = s.baseRoots()
	}
	cfg, err := sec.TLSConfig(base)
	if err != nil {
		return ep, rotation.NewError(rotation.ClassInput, "tls settings", err.Error(), nil)
	}
	if sec.SSLMode == pgsecret.SSLRequire {
		ep.warning = fmt.Sprintf("connections to %s are encrypted but the server certificate is not verified (sslmode=require); use verify-full", ep)
	}
	ep.tls = cfg
	return ep, nil
}

// baseRoots returns the roots every secret trusts unless it pins its own CA
// (sslrootcertonly): the system roots, the packaged RDS and Amazon Trust
// Services roots (rdsca.go) and DB_CA_BUNDLE_FILE, built once. The secret's
// sslrootcertpem is added per secret (pgsecret.Secret.Roots).
func (s *Strategy) baseRoots() *x509.CertPool {
	s.rootsOnce.Do(func() {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if err := addPackagedRoots(pool); err != nil {
			s.log.Error("packaged CA bundle not loaded: RDS servers may not be trusted", "error", err.Error())
		}
		if len(s.cfg.CABundlePEM) > 0 {
			pool.AppendCertsFromPEM(s.cfg.CABundlePEM)
		}
		s.roots = pool
	})
	return s.roots
}

// connConfig builds a pgx configuration programmatically: the password is
// set as a field, never written into a connection string, and Fallbacks is
// emptied so that pgx never retries without TLS.
func connConfig(ep endpoint, user, password, requireAuth string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	cfg.Host = ep.host
	cfg.Port = uint16(ep.port)
	cfg.Database = ep.db
	cfg.User = user
	cfg.Password = password
	cfg.TLSConfig = ep.tls
	cfg.Fallbacks = nil
	cfg.RequireAuth = requireAuth
	cfg.ConnectTimeout = 0 // the context (rotation.Call's budget) bounds it
	cfg.RuntimeParams = map[string]string{"application_name": applicationName}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.StatementCacheCapacity = 0
	cfg.DescriptionCacheCapacity = 0
	return cfg, nil
}

// target is where ep points, for the DB seam.
func (e endpoint) target() Target {
	return Target{Host: e.host, Port: e.port, Database: e.db, TLS: e.tls}
}

// connect opens one session through rotation.Call, so that it is timed,
// counted and fault-injectable. who names the credentials in errors.
func (s *Strategy) connect(ctx context.Context, ep endpoint, user, password string, admin bool, who string) (Session, error) {
	var conn Session
	err := rotation.Call(ctx, "postgres:connect", func(ctx context.Context) error {
		c, err := s.db.Connect(ctx, ep.target(), Login{User: user, Password: password, Admin: admin})
		conn = c
		return err
	})
	if err != nil {
		closeConn(conn)
		return nil, classifyConnect(err, who, ep.String())
	}
	return conn, nil
}

// closeConn ends a session, if there is one.
func closeConn(c Session) {
	if c != nil {
		c.Close()
	}
}

// dbCall runs one statement or query of a session through rotation.Call.
func dbCall(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	return rotation.Call(ctx, op, fn)
}

// adminCache keeps the admin session a rotation's setSecret opened, so that
// finishSecret in the same warm execution environment expires the outgoing
// role without a second login. Entries are per rotation (secret ARN and
// token), short-lived, and closed when the rotation finishes.
type adminCache struct {
	mu      sync.Mutex
	entries map[adminKey]*adminEntry
}

type adminKey struct{ arn, token string }

type adminEntry struct {
	conn    Session
	adm     *admin
	expires time.Time
}

const (
	adminCacheTTL = 2 * time.Minute
	adminCacheMax = 8
)

// take removes and returns a live cached session, or nil.
func (a *adminCache) take(k adminKey, now time.Time) (Session, *admin) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweepLocked(now)
	e, ok := a.entries[k]
	if !ok {
		return nil, nil
	}
	delete(a.entries, k)
	if !e.conn.Alive() {
		return nil, nil
	}
	return e.conn, e.adm
}

// put keeps a session for the rest of the rotation.
func (a *adminCache) put(k adminKey, c Session, adm *admin, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.entries == nil {
		a.entries = map[adminKey]*adminEntry{}
	}
	a.sweepLocked(now)
	if old, ok := a.entries[k]; ok {
		go closeConn(old.conn)
	}
	for len(a.entries) >= adminCacheMax {
		var oldest adminKey
		var t time.Time
		for key, e := range a.entries {
			if t.IsZero() || e.expires.Before(t) {
				oldest, t = key, e.expires
			}
		}
		go closeConn(a.entries[oldest].conn)
		delete(a.entries, oldest)
	}
	a.entries[k] = &adminEntry{conn: c, adm: adm, expires: now.Add(adminCacheTTL)}
}

func (a *adminCache) sweepLocked(now time.Time) {
	for k, e := range a.entries {
		if now.After(e.expires) {
			go closeConn(e.conn)
			delete(a.entries, k)
		}
	}
}

// Close ends every cached session.
func (a *adminCache) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, e := range a.entries {
		closeConn(e.conn)
		delete(a.entries, k)
	}
}

// isDeadConn reports an error that means the session is gone, so a reused
// session may be replaced by a new one.
func isDeadConn(c Session, err error) bool {
	var re *rotation.Error
	if errors.As(err, &re) {
		return false
	}
	return !c.Alive() || pgconn.SafeToRetry(err)
}
