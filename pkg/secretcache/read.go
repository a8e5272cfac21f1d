package secretcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/pkg/extcall"
	"github.com/rotation-suite/rotation/pkg/redact"
)

// The one read of an entry in flight: started by a request, a refresh or an
// invalidation, run on its own goroutine, and published to every waiter, to
// the derived values and to the subscribers.

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
