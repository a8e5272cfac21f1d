package apikey

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rotation-suite/rotation/pkg/secretcache"
)

// DefaultCallerCacheTTL is how long Credentials keeps the caller secret
// without a shared cache, the same as the AWS Secrets Manager caching
// client's default. The rotation's overlap must be longer (APIKEY_OVERLAP,
// default 24 h).
const DefaultCallerCacheTTL = time.Hour

// Credentials gives a caller its current key (or webhook signing key) from
// the rotated secret, read through Cache (the service's one
// secretcache.Cache) or, without it, through a cache of its own over Source
// with TTL and Now. The secret is re-read in the background before the TTL
// ends; a use past the TTL waits for that read, and if it fails the cached
// key is kept (during the overlap it still verifies) until the cache's
// MaxStale. After the server refused the key, call Refresh and retry once
// with what it returns. Safe for concurrent use; set the fields before the
// first call.
type Credentials struct {
	Cache    *secretcache.Cache
	Source   SecretSource // instead of Cache
	SecretID string
	TTL      time.Duration    // without Cache; default DefaultCallerCacheTTL
	Now      func() time.Time // without Cache; default time.Now

	once  sync.Once
	err   error
	cache *secretcache.Cache
	cur   *secretcache.Derived[*CallerSecret]
}

func (c *Credentials) init() error {
	c.once.Do(func() {
		c.cache = c.Cache
		if c.cache == nil {
			if c.Source == nil {
				c.err = errors.New("apikey: Credentials needs Cache or Source")
				return
			}
			ttl := c.TTL
			if ttl <= 0 {
				ttl = DefaultCallerCacheTTL
			}
			c.cache, c.err = secretcache.New(secretcache.Config{Client: c.Source, TTL: ttl, Now: c.Now})
			if c.err != nil {
				return
			}
		}
		if c.SecretID == "" {
			c.err = errors.New("apikey: Credentials needs SecretID")
			return
		}
		c.cur = secretcache.NewDerived(c.cache, c.SecretID, parseIssued, secretcache.Fresh())
	})
	return c.err
}

func parseIssued(_ context.Context, v *secretcache.Value) (*CallerSecret, error) {
	cs, err := ParseCaller(v.Bytes())
	if err != nil {
		return nil, err
	}
	if !cs.Issued() {
		return nil, errors.New("apikey: the caller secret holds no key yet; rotate it once")
	}
	return cs, nil
}

// Current returns the caller secret.
func (c *Credentials) Current(ctx context.Context) (*CallerSecret, error) {
	if err := c.init(); err != nil {
		return nil, err
	}
	return c.cur.Get(ctx)
}

// Refresh re-reads the caller secret now — call it when the server refused
// the key — and returns it, with changed reporting whether it is another
// version than before (if not, retrying with it will not help). Reads are
// rate-limited by the cache's MinRefreshInterval, so a burst of refusals
// makes one read.
func (c *Credentials) Refresh(ctx context.Context) (cs *CallerSecret, changed bool, err error) {
	if err := c.init(); err != nil {
		return nil, false, err
	}
	return c.cur.Refresh(ctx)
}

// LastError returns the error of the last failed read or parse, or nil.
func (c *Credentials) LastError() error {
	if c.init() != nil {
		return c.err
	}
	if err := c.cache.LastError(c.SecretID); err != nil {
		return err
	}
	return c.cur.LastError()
}
