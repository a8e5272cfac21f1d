package secretcache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// StageCurrent is the stage Get and Refresh read.
const StageCurrent = "AWSCURRENT"

// Defaults of Config.
const (
	DefaultTTL                = 5 * time.Minute
	DefaultMinRefreshInterval = time.Second
	DefaultReadTimeout        = 5 * time.Second
	// maxVersions bounds the values cached by version id.
	maxVersions = 256
	// retryMin is the first wait after a failed read; it doubles up to TTL.
	retryMin = time.Second
)

// Client is the one Secrets Manager call the cache makes;
// *secretsmanager.Client satisfies it.
type Client interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Config configures a Cache. Only Client is required.
type Config struct {
	Client Client
	// TTL is how long a value is fresh. From four fifths of it on, its next
	// use starts a background read that replaces it before it expires; past
	// TTL (the reads were slow or failed) it is still served, stale, while
	// reads go on; 0: DefaultTTL.
	TTL time.Duration
	// MaxStale is the age after which a value is no longer served: the
	// caller waits for a read and gets ErrUnavailable if it fails; 0: three
	// times TTL. It is at least TTL.
	MaxStale time.Duration
	// MinRefreshInterval is the least time between two reads forced by
	// Refresh for one secret; 0: DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration
	// ReadTimeout bounds one read, whoever waits for it; 0: DefaultReadTimeout.
	ReadTimeout time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Logger receives one warning per failed read (never a value); nil: no
	// logs.
	Logger *slog.Logger
}

// ErrUnavailable matches (errors.Is) every error of a read the cache could
// not serve: no value younger than MaxStale and the read failed (or failed
// recently and is being retried later).
var ErrUnavailable = errors.New("secretcache: secret value unavailable")

// Error is the error the Get… and Refresh… methods return when no value
// could be served. It never carries a secret value.
type Error struct {
	SecretID string
	Stage    string // or VersionID
	Cause    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("secretcache: no usable value of %s (%s): %v", e.SecretID, e.Stage, e.Cause)
}

// Unwrap returns the cause; Is matches ErrUnavailable.
func (e *Error) Unwrap() error { return e.Cause }

// Is reports whether target is ErrUnavailable.
func (e *Error) Is(target error) bool { return target == ErrUnavailable }

// Change is what Subscribe reports: a stage of a secret moved to another
// version (the first read of a secret is a change from "").
type Change struct {
	SecretID     string // as the caller named it
	ARN          string
	Stage        string
	OldVersionID string
	NewVersionID string
}

type key struct{ id, stage, version string }

func (k key) what() string {
	if k.version != "" {
		return "version " + k.version
	}
	return k.stage
}

type state struct {
	v       *Value
	at      time.Time // when the read completed
	started time.Time // when the read started
}

type flight struct {
	started time.Time
	done    chan struct{}
	v       *Value
	err     error
}

type entry struct {
	k   key
	cur atomic.Pointer[state]

	mu       sync.Mutex // never held across a read
	fl       *flight
	again    bool      // invalidated while a read was in flight: read once more
	lastRead time.Time // when the last read started, whatever started it
	failures int
	retryAt  time.Time
	lastErr  error
}

// Cache caches secret values; safe for concurrent use. Its reads run in
// goroutines of their own; a Cache needs no Close.
type Cache struct {
	cfg       Config
	log       *slog.Logger
	entries   sync.Map // key → *entry
	nVersions atomic.Int64
	preparers sync.Map // secret id → *[]preparer (copy on write under subMu)

	subMu  sync.Mutex
	subs   map[int]func(Change)
	nextID int
}

// New returns a Cache; it reads nothing yet.
func New(cfg Config) (*Cache, error) {
	if cfg.Client == nil {
		return nil, errors.New("secretcache: Config.Client is required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxStale <= 0 {
		cfg.MaxStale = 3 * cfg.TTL
	}
	cfg.MaxStale = max(cfg.MaxStale, cfg.TTL)
	if cfg.MinRefreshInterval <= 0 {
		cfg.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Cache{cfg: cfg, log: log, subs: map[int]func(Change){}}, nil
}

// Config returns the configuration in effect, defaults filled in.
func (c *Cache) Config() Config { return c.cfg }

func (c *Cache) entry(k key) *entry {
	if e, ok := c.entries.Load(k); ok {
		return e.(*entry)
	}
	if k.version != "" && c.nVersions.Load() >= maxVersions {
		c.dropVersions()
	}
	e, loaded := c.entries.LoadOrStore(k, &entry{k: k})
	if !loaded && k.version != "" {
		c.nVersions.Add(1)
	}
	return e.(*entry)
}

// dropVersions forgets every value cached by version id (they are re-read on
// demand); it bounds the memory of callers that name many versions.
func (c *Cache) dropVersions() {
	c.entries.Range(func(k, _ any) bool {
		if k.(key).version != "" {
			c.entries.Delete(k)
			c.nVersions.Add(-1)
		}
		return true
	})
}

// Peek returns the cached AWSCURRENT value of secretID without reading or
// checking its age.
func (c *Cache) Peek(secretID string) (*Value, bool) {
	if e, ok := c.entries.Load(key{id: secretID, stage: StageCurrent}); ok {
		if s := e.(*entry).cur.Load(); s != nil {
			return s.v, true
		}
	}
	return nil, false
}

// LastError returns the error of the last read of secretID's AWSCURRENT
// value, or nil if it succeeded (or none was made).
func (c *Cache) LastError(secretID string) error {
	if e, ok := c.entries.Load(key{id: secretID, stage: StageCurrent}); ok {
		en := e.(*entry)
		en.mu.Lock()
		defer en.mu.Unlock()
		return en.lastErr
	}
	return nil
}

// Subscribe calls fn after every read that found a stage on a new version.
// fn runs on the reading goroutine: it must not block for long. The returned
// function unsubscribes.
func (c *Cache) Subscribe(fn func(Change)) (unsubscribe func()) {
	c.subMu.Lock()
	id := c.nextID
	c.nextID++
	c.subs[id] = fn
	c.subMu.Unlock()
	return func() {
		c.subMu.Lock()
		delete(c.subs, id)
		c.subMu.Unlock()
	}
}

// preparer builds a value derived from a new AWSCURRENT version.
type preparer interface {
	prepare(ctx context.Context, v *Value)
}

func (c *Cache) addPreparer(secretID string, p preparer) {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	var list []preparer
	if old, ok := c.preparers.Load(secretID); ok {
		list = append(list, *old.(*[]preparer)...)
	}
	list = append(list, p)
	c.preparers.Store(secretID, &list)
}
