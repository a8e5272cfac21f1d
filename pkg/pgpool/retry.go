package pgpool

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotation-suite/rotation/pkg/secretcache"
)

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
