package secretcache

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The request paths: what a caller gets, and when it waits for a read.

// Get returns the AWSCURRENT value of secretID (a name or an ARN).
func (c *Cache) Get(ctx context.Context, secretID string) (*Value, error) {
	return c.GetStage(ctx, secretID, StageCurrent)
}

// GetStage returns the value of secretID carrying stage (AWSCURRENT,
// AWSPENDING, AWSPREVIOUS or a custom label). A loaded value younger than
// MaxStale is returned at once; from four fifths of TTL on it is re-read in
// the background meanwhile. Without such a value the call waits, within
// ctx, for the one read in flight — or fails at once with ErrUnavailable
// while the last read's failure holds off the next try.
func (c *Cache) GetStage(ctx context.Context, secretID, stage string) (*Value, error) {
	return c.get(ctx, c.entry(key{id: secretID, stage: stage}))
}

// GetVersion returns the value of one version of secretID. Versions never
// change, so each is read once while fewer than 256 versions are cached
// (past that, every cached version is forgotten and read again on demand).
func (c *Cache) GetVersion(ctx context.Context, secretID, versionID string) (*Value, error) {
	return c.get(ctx, c.entry(key{id: secretID, version: versionID}))
}

// GetFresh is Get for a caller that must not use a value past its TTL (a
// JWT signer whose retired keys are removed on that schedule): a value older
// than TTL waits, within ctx, for the read in flight (starting one if none
// is); only if that read fails, ctx ends first, or the last read's failure
// holds off the next try is the stale value (younger than MaxStale)
// returned.
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
// was just refused" — and returns it. A read in flight is joined. Otherwise
// it is rate-limited per secret and stage: within MinRefreshInterval of the
// start of the last read (whatever started it) Refresh returns the cached
// value without a read (ErrUnavailable if there is none younger than
// MaxStale). Compare the result's VersionID with the one that was refused to
// know whether retrying can help.
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
