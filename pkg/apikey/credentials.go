package apikey

import (
	"context"
	"errors"
	"sync"
	"time"
)

// DefaultCallerCacheTTL is how long Credentials keeps the caller secret, the
// same as the AWS Secrets Manager caching client's default. The rotation's
// overlap must be longer (APIKEY_OVERLAP, default 24 h).
const DefaultCallerCacheTTL = time.Hour

// Credentials gives a caller its current key (or webhook signing key) from
// the rotated secret, re-reading it once the cached copy is older than TTL.
// If a re-read fails the cached key is kept (and the read retried a minute
// later): during the overlap it still verifies. Safe for concurrent use.
type Credentials struct {
	Source   SecretSource
	SecretID string
	TTL      time.Duration    // default DefaultCallerCacheTTL
	Now      func() time.Time // default time.Now

	mu  sync.Mutex
	c   *CallerSecret
	at  time.Time
	err error
}

// Current returns the caller secret, reading it if the cache is empty or stale.
func (c *Credentials) Current(ctx context.Context) (*CallerSecret, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	ttl := c.TTL
	if ttl <= 0 {
		ttl = DefaultCallerCacheTTL
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c != nil && now().Sub(c.at) < ttl {
		return c.c, nil
	}
	raw, err := ReadSecret(ctx, c.Source, c.SecretID)
	var cs *CallerSecret
	if err == nil {
		cs, err = ParseCaller(raw)
	}
	if err == nil && !cs.Issued() {
		err = errors.New("apikey: the caller secret holds no key yet; rotate it once")
	}
	if err != nil {
		c.err = err
		if c.c != nil {
			// Keep the cached key and try again in a minute, not on every call.
			c.at = now().Add(time.Minute - ttl)
			return c.c, nil
		}
		return nil, err
	}
	c.c, c.at, c.err = cs, now(), nil
	return cs, nil
}

// LastError returns the error of the last failed read, or nil.
func (c *Credentials) LastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
