package secretcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/pkg/extcall"

	"github.com/rotation-suite/rotation/pkg/redact"
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
	// Logger receives one warning per failed background read (never a
	// value); nil: no logs.
	Logger *slog.Logger
}

// ErrUnavailable matches (errors.Is) every error of a read the cache could
// not serve: no value younger than MaxStale and the read failed (or failed
// recently and is being retried later).
var ErrUnavailable = errors.New("secretcache: secret value unavailable")

// Error is the error Get, GetVersion and Refresh return when no value could
// be served. It never carries a secret value.
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

// Get returns the AWSCURRENT value of secretID (a name or an ARN).
func (c *Cache) Get(ctx context.Context, secretID string) (*Value, error) {
	return c.GetStage(ctx, secretID, StageCurrent)
}

// GetStage returns the value of secretID carrying stage (AWSCURRENT,
// AWSPENDING, AWSPREVIOUS or a custom label). A loaded value younger than
// MaxStale is returned at once; one older than TTL is re-read in the
// background meanwhile. Without such a value the call waits, within ctx, for
// the one read in flight.
func (c *Cache) GetStage(ctx context.Context, secretID, stage string) (*Value, error) {
	return c.get(ctx, c.entry(key{id: secretID, stage: stage}))
}

// GetVersion returns the value of one version of secretID. Versions never
// change, so each is read once (while fewer than a few hundred are cached).
func (c *Cache) GetVersion(ctx context.Context, secretID, versionID string) (*Value, error) {
	return c.get(ctx, c.entry(key{id: secretID, version: versionID}))
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

// GetFresh is Get for a caller that must not use a value past its TTL (a
// JWT signer whose retired keys are removed on that schedule): a value older
// than TTL waits, within ctx, for the read in flight; only if that read
// fails is the stale value (younger than MaxStale) returned.
func (c *Cache) GetFresh(ctx context.Context, secretID string) (*Value, error) {
	e := c.entry(key{id: secretID, stage: StageCurrent})
	s := e.cur.Load()
	now := c.cfg.Now()
	if s == nil || now.Sub(s.at) < c.cfg.TTL {
		return c.get(ctx, e)
	}
	e.mu.Lock()
	fl := e.fl
	if fl == nil && !now.Before(e.retryAt) {
		fl = c.startLocked(ctx, e)
	}
	e.mu.Unlock()
	if fl != nil {
		if v, err := c.await(ctx, e, fl); err == nil {
			return v, nil
		}
	}
	return c.get(ctx, e)
}

// refreshAt is the age from which a use starts a background read.
func (c *Cache) refreshAt() time.Duration { return c.cfg.TTL - c.cfg.TTL/5 }

func (c *Cache) get(ctx context.Context, e *entry) (*Value, error) {
	now := c.cfg.Now()
	if s := e.cur.Load(); s != nil {
		if e.k.version != "" {
			return s.v, nil
		}
		age := now.Sub(s.at)
		if age < c.refreshAt() {
			return s.v, nil
		}
		if age < c.cfg.MaxStale {
			c.readInBackground(ctx, e, now)
			return s.v, nil
		}
	}
	e.mu.Lock()
	fl := e.fl
	if fl == nil {
		if now.Before(e.retryAt) {
			err := e.lastErr
			e.mu.Unlock()
			return nil, &Error{SecretID: e.k.id, Stage: e.k.what(), Cause: fmt.Errorf("the last read failed; next try in %s: %w", e.retryAt.Sub(now).Round(time.Millisecond), err)}
		}
		fl = c.startLocked(ctx, e)
	}
	e.mu.Unlock()
	return c.await(ctx, e, fl)
}

// Refresh reads the AWSCURRENT value of secretID now — for "the credential
// was just refused" — and returns it. It is rate-limited per secret: within
// MinRefreshInterval of the start of the last read (whatever started it)
// Refresh joins the read in flight or returns the cached value without a
// read. Compare the
// result's VersionID with the one that was refused to know whether retrying
// can help.
func (c *Cache) Refresh(ctx context.Context, secretID string) (*Value, error) {
	return c.RefreshStage(ctx, secretID, StageCurrent)
}

// RefreshStage is Refresh for another stage (AWSPENDING while a single-user
// rotation is between setSecret and finishSecret).
func (c *Cache) RefreshStage(ctx context.Context, secretID, stage string) (*Value, error) {
	e := c.entry(key{id: secretID, stage: stage})
	now := c.cfg.Now()
	e.mu.Lock()
	if fl := e.fl; fl != nil {
		e.mu.Unlock()
		return c.await(ctx, e, fl)
	}
	if !e.lastRead.IsZero() && now.Sub(e.lastRead) < c.cfg.MinRefreshInterval {
		s, lastErr := e.cur.Load(), e.lastErr
		e.mu.Unlock()
		if s != nil && now.Sub(s.at) < c.cfg.MaxStale {
			return s.v, nil
		}
		if lastErr == nil {
			lastErr = errors.New("refresh rate limit reached")
		}
		return nil, &Error{SecretID: secretID, Stage: stage, Cause: lastErr}
	}
	fl := c.startLocked(ctx, e)
	e.mu.Unlock()
	return c.await(ctx, e, fl)
}

// RefreshStageSince returns the value of stage from a read that started at
// or after since — for "this credential was refused at since", where a value
// read earlier may predate the change that caused the refusal. It joins such
// a read in flight or returns its result; otherwise it starts one, keeping
// to one read per MinRefreshInterval per stage, so it may wait up to that
// long (within ctx) for its turn. A storm of refusals thus makes at most one
// read per interval, and every caller gets a value at least as new as its
// refusal.
func (c *Cache) RefreshStageSince(ctx context.Context, secretID, stage string, since time.Time) (*Value, error) {
	e := c.entry(key{id: secretID, stage: stage})
	for {
		now := c.cfg.Now()
		e.mu.Lock()
		fl := e.fl
		if fl != nil && !fl.started.Before(since) {
			e.mu.Unlock()
			return c.await(ctx, e, fl)
		}
		if s := e.cur.Load(); fl == nil && s != nil && !s.started.Before(since) {
			e.mu.Unlock()
			return s.v, nil
		}
		var wait <-chan time.Time
		if fl == nil {
			left := c.cfg.MinRefreshInterval - now.Sub(e.lastRead)
			if e.lastRead.IsZero() || left <= 0 {
				fl = c.startLocked(ctx, e)
				e.mu.Unlock()
				return c.await(ctx, e, fl)
			}
			wait = time.After(left)
		}
		e.mu.Unlock()
		var done <-chan struct{}
		if fl != nil {
			done = fl.done
		}
		select {
		case <-done:
		case <-wait:
		case <-ctx.Done():
			return nil, &Error{SecretID: secretID, Stage: stage, Cause: fmt.Errorf("gave up waiting for a read: %w", ctx.Err())}
		}
	}
}

// Invalidate re-reads at once every cached stage of the secret named
// secretIDOrARN (the name or ARN it was asked by, or the ARN or name
// Secrets Manager returned), keeping the values in use until the reads
// return. A read already in flight is followed by one more, so a
// notification is never lost to a read that began before the rotation ended.
// It does not wait.
func (c *Cache) Invalidate(secretIDOrARN string) {
	c.entries.Range(func(_, v any) bool {
		e := v.(*entry)
		if e.k.version != "" {
			return true
		}
		match := e.k.id == secretIDOrARN
		if s := e.cur.Load(); !match && s != nil {
			match = s.v.ARN == secretIDOrARN || s.v.Name == secretIDOrARN
		}
		if !match {
			return true
		}
		e.mu.Lock()
		if e.fl != nil {
			e.again = true
		} else {
			c.startLocked(context.Background(), e)
		}
		e.mu.Unlock()
		return true
	})
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

func (c *Cache) readInBackground(ctx context.Context, e *entry, now time.Time) {
	e.mu.Lock()
	if e.fl == nil && !now.Before(e.retryAt) {
		c.startLocked(ctx, e)
	}
	e.mu.Unlock()
}

// startLocked starts the entry's read; e.mu is held. The read keeps ctx's
// values (fault hooks, observers, tracing) but not its cancellation: a
// caller that gives up does not fail the read for the others.
func (c *Cache) startLocked(ctx context.Context, e *entry) *flight {
	now := c.cfg.Now()
	fl := &flight{started: now, done: make(chan struct{})}
	e.fl = fl
	e.lastRead = now
	go c.read(context.WithoutCancel(ctx), e, fl)
	return fl
}

func (c *Cache) await(ctx context.Context, e *entry, fl *flight) (*Value, error) {
	select {
	case <-fl.done:
		if fl.err != nil {
			return nil, &Error{SecretID: e.k.id, Stage: e.k.what(), Cause: fl.err}
		}
		return fl.v, nil
	case <-ctx.Done():
		return nil, &Error{SecretID: e.k.id, Stage: e.k.what(), Cause: fmt.Errorf("gave up waiting for the read: %w", ctx.Err())}
	}
}

func (c *Cache) read(base context.Context, e *entry, fl *flight) {
	ctx, cancel := context.WithTimeout(base, c.cfg.ReadTimeout)
	v, err := c.fetch(ctx, e.k)
	if err == nil && e.k.version == "" && e.k.stage == StageCurrent {
		// Values derived from AWSCURRENT are built before the value is
		// visible, so a request never finds a version not yet prepared.
		if ps, ok := c.preparers.Load(e.k.id); ok {
			for _, p := range *ps.(*[]preparer) {
				p.prepare(ctx, v)
			}
		}
	}
	cancel()
	now := c.cfg.Now()
	var change *Change
	e.mu.Lock()
	if err == nil {
		old := e.cur.Load()
		e.cur.Store(&state{v: v, at: now, started: fl.started})
		e.failures, e.retryAt, e.lastErr = 0, time.Time{}, nil
		if e.k.version == "" && (old == nil || old.v.VersionID != v.VersionID) {
			change = &Change{SecretID: e.k.id, ARN: v.ARN, Stage: e.k.stage, NewVersionID: v.VersionID}
			if old != nil {
				change.OldVersionID = old.v.VersionID
			}
		}
	} else {
		e.failures++
		e.lastErr = err
		wait := retryMin << min(e.failures-1, 20)
		e.retryAt = now.Add(min(wait, c.cfg.TTL))
	}
	fl.v, fl.err = v, err
	failures := e.failures
	e.fl = nil
	if e.again {
		e.again = false
		c.startLocked(base, e)
	}
	e.mu.Unlock()
	close(fl.done)
	if err != nil {
		c.log.Warn("secret read failed", "secretId", e.k.id, "stage", e.k.what(), "failures", failures, "error", err.Error())
		return
	}
	if change != nil {
		if e.k.version == "" {
			ve := c.entry(key{id: e.k.id, version: v.VersionID})
			ve.cur.CompareAndSwap(nil, &state{v: v, at: now, started: fl.started})
		}
		c.publish(*change)
	}
}

func (c *Cache) publish(ch Change) {
	c.subMu.Lock()
	fns := make([]func(Change), 0, len(c.subs))
	for _, fn := range c.subs {
		fns = append(fns, fn)
	}
	c.subMu.Unlock()
	for _, fn := range fns {
		fn(ch)
	}
}

func (c *Cache) fetch(ctx context.Context, k key) (*Value, error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(k.id)}
	if k.version != "" {
		in.VersionId = aws.String(k.version)
	} else {
		in.VersionStage = aws.String(k.stage)
	}
	var out *secretsmanager.GetSecretValueOutput
	err := extcall.Do(ctx, "secretsmanager:GetSecretValue", func(ctx context.Context) error {
		var err error
		out, err = c.cfg.Client.GetSecretValue(ctx, in)
		return err
	})
	if err != nil {
		return nil, err
	}
	v := &Value{
		ARN: aws.ToString(out.ARN), Name: aws.ToString(out.Name), VersionID: aws.ToString(out.VersionId),
		Stages: out.VersionStages, CreatedDate: aws.ToTime(out.CreatedDate), FetchedAt: c.cfg.Now(),
		text: redact.NewString(aws.ToString(out.SecretString)), binary: out.SecretBinary,
	}
	if out.SecretString != nil {
		v.binary = nil
	}
	if v.VersionID == "" { // a source without versions: name the value by its digest
		sum := sha256.Sum256(append([]byte(v.text.Reveal()), v.binary...))
		v.VersionID = "sha256:" + hex.EncodeToString(sum[:16])
	}
	if v.ARN == "" {
		v.ARN = k.id
	}
	return v, nil
}
