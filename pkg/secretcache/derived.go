package secretcache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Derived keeps one value built from a secret's AWSCURRENT version — a
// parsed JWK Set, an opened signing key, a keyring — and rebuilds it when the
// secret moves to a new version. The cache's read of a new version starts
// the build and waits for it (within its ReadTimeout) before the version
// becomes visible, so requests do not build and do not wait for a build
// once a value exists — except when a build outlasts that wait, or after a
// failed build: then the next Get (at most one per MinRefreshInterval, for a
// version that failed) tries the build again and waits for it within its
// context. A failed build keeps the last good value in use until it is
// MaxStale old (counted from the last time its version was seen current),
// then Get fails closed. A Derived lives as long as its cache (the cache
// keeps it to call on each read): make one per consumer at start-up, not per
// request. Safe for concurrent use.
type Derived[T any] struct {
	c     *Cache
	id    string
	build func(ctx context.Context, v *Value) (T, error)
	fresh bool

	cur atomic.Pointer[derivedState[T]]

	mu       sync.Mutex // guards the fields below; never held across a build
	fl       *derivedFlight[T]
	failedV  string
	failedAt time.Time
	lastErr  error
}

type derivedState[T any] struct {
	version   string
	val       T
	confirmed atomic.Int64 // unix ns: last time version was seen current
}

type derivedFlight[T any] struct {
	version string
	done    chan struct{}
	val     T
	err     error
}

// DerivedOption configures NewDerived.
type DerivedOption func(*derivedOptions)

type derivedOptions struct{ fresh bool }

// Fresh makes Get use GetFresh: never a value built from a version read more
// than TTL ago while a read can replace it.
func Fresh() DerivedOption { return func(o *derivedOptions) { o.fresh = true } }

// NewDerived returns a Derived for secretID's AWSCURRENT version. build must
// be safe to call from any goroutine and honour ctx.
func NewDerived[T any](c *Cache, secretID string, build func(ctx context.Context, v *Value) (T, error), opts ...DerivedOption) *Derived[T] {
	var o derivedOptions
	for _, f := range opts {
		f(&o)
	}
	d := &Derived[T]{c: c, id: secretID, build: build, fresh: o.fresh}
	c.addPreparer(secretID, d)
	return d
}

func (d *Derived[T]) prepare(ctx context.Context, v *Value) {
	if s := d.cur.Load(); s != nil && s.version == v.VersionID {
		return
	}
	_, _ = d.buildWait(ctx, v)
}

// Get returns the value built from the current version (see Cache.Get for
// when the version is read).
func (d *Derived[T]) Get(ctx context.Context) (T, error) {
	var v *Value
	var err error
	if d.fresh {
		v, err = d.c.GetFresh(ctx, d.id)
	} else {
		v, err = d.c.Get(ctx, d.id)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return d.forVersion(ctx, v)
}

// Refresh forces a read of the secret (Cache.Refresh: rate-limited) and
// returns the value built from what it found, and whether that is another
// version than the one in use before. When the version found does not build,
// the error says why and the value returned is the last good one (zero if
// none), which Get keeps serving within MaxStale.
func (d *Derived[T]) Refresh(ctx context.Context) (T, bool, error) {
	s := d.cur.Load()
	v, err := d.c.Refresh(ctx, d.id)
	if err != nil {
		var zero T
		if s != nil {
			return s.val, false, err
		}
		return zero, false, err
	}
	if s != nil && s.version == v.VersionID {
		s.confirmed.Store(d.c.cfg.Now().UnixNano())
		return s.val, false, nil
	}
	val, err := d.buildWait(ctx, v)
	if err != nil {
		var zero T
		if s != nil {
			return s.val, false, err
		}
		return zero, false, err
	}
	return val, true, nil
}

// Version returns the version the value in use was built from.
func (d *Derived[T]) Version() string {
	if s := d.cur.Load(); s != nil {
		return s.version
	}
	return ""
}

// LastError returns the error of the last build, or nil if it succeeded (or
// none was made).
func (d *Derived[T]) LastError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastErr
}

func (d *Derived[T]) forVersion(ctx context.Context, v *Value) (T, error) {
	now := d.c.cfg.Now()
	s := d.cur.Load()
	if s != nil && s.version == v.VersionID {
		s.confirmed.Store(now.UnixNano())
		return s.val, nil
	}
	d.mu.Lock()
	recent := d.failedV == v.VersionID && now.Sub(d.failedAt) < d.c.cfg.MinRefreshInterval
	lastErr := d.lastErr
	d.mu.Unlock()
	var err error
	if !recent {
		var val T
		if val, err = d.buildWait(ctx, v); err == nil {
			return val, nil
		}
	} else {
		err = lastErr
	}
	// The new version does not build: keep the last good value, within MaxStale.
	if s != nil && now.Sub(time.Unix(0, s.confirmed.Load())) < d.c.cfg.MaxStale {
		return s.val, nil
	}
	var zero T
	return zero, fmt.Errorf("secretcache: version %s of %s could not be used, and the value in use is too old or absent: %w", v.VersionID, d.id, err)
}

// buildWait builds v (one build per version at a time) and installs it.
func (d *Derived[T]) buildWait(ctx context.Context, v *Value) (T, error) {
	d.mu.Lock()
	fl := d.fl
	if fl == nil || fl.version != v.VersionID {
		fl = &derivedFlight[T]{version: v.VersionID, done: make(chan struct{})}
		d.fl = fl
		go d.run(context.WithoutCancel(ctx), v, fl)
	}
	d.mu.Unlock()
	select {
	case <-fl.done:
		return fl.val, fl.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func (d *Derived[T]) run(base context.Context, v *Value, fl *derivedFlight[T]) {
	ctx, cancel := context.WithTimeout(base, d.c.cfg.ReadTimeout)
	val, err := d.build(ctx, v)
	cancel()
	now := d.c.cfg.Now()
	if err == nil {
		st := &derivedState[T]{version: v.VersionID, val: val}
		st.confirmed.Store(now.UnixNano())
		d.cur.Store(st)
	}
	d.mu.Lock()
	if err != nil {
		d.failedV, d.failedAt, d.lastErr = v.VersionID, now, err
	} else {
		d.lastErr = nil
	}
	fl.val, fl.err = val, err
	if d.fl == fl {
		d.fl = nil
	}
	d.mu.Unlock()
	close(fl.done)
}

// SourceFunc adapts a function returning a secret's current value (a file,
// a test fixture, a static set) to Client, so that it is cached and refreshed
// like a secret: the version id is a digest of the value, so an unchanged
// value is not rebuilt.
type SourceFunc func(ctx context.Context) ([]byte, error)

// GetSecretValue calls f; only SecretId is used (VersionStage is ignored:
// f has one value; a VersionId is refused).
func (f SourceFunc) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if in.VersionId != nil {
		return nil, errors.New("secretcache: a SourceFunc has no versions to read by id")
	}
	b, err := f(ctx)
	if err != nil {
		return nil, err
	}
	// No VersionId: the cache names the value by its digest.
	return &secretsmanager.GetSecretValueOutput{
		ARN: in.SecretId, Name: in.SecretId, SecretString: aws.String(string(b)), VersionStages: []string{StageCurrent},
	}, nil
}
