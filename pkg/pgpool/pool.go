package pgpool

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
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
	// secret's sslrootcertpem (unless the secret pins its CA with
	// sslrootcertonly: then sslrootcertpem alone is trusted).
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
