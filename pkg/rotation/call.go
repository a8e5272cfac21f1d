package rotation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Phase says whether a fault hook runs before or after the call it guards.
type Phase int

// Before runs before the call is made; After runs once it returned without
// error (a fault there models a crash after the call took effect).
const (
	Before Phase = iota
	After
)

// FaultHook is consulted around every external call made through Call. A
// non-nil return fails the call as if the dependency had failed. Tests install
// one with WithFaultHook; production code never does.
type FaultHook func(op string, phase Phase) error

// CallObserver sees every external call made through Call, for counting.
type CallObserver func(op string, d time.Duration, err error)

type ctxKey int

const (
	faultKey ctxKey = iota
	observerKey
)

// WithFaultHook returns a context whose external calls consult h.
func WithFaultHook(ctx context.Context, h FaultHook) context.Context {
	return context.WithValue(ctx, faultKey, h)
}

// WithCallObserver returns a context whose external calls are reported to o.
func WithCallObserver(ctx context.Context, o CallObserver) context.Context {
	return context.WithValue(ctx, observerKey, o)
}

// Budget settings: every call gets at most MaxCallTimeout, and never more than
// what is left of the context's deadline minus Reserve (kept so the step can
// still report its failure before the runtime kills it).
var (
	MaxCallTimeout = 10 * time.Second
	Reserve        = 500 * time.Millisecond
	MinCallTime    = 100 * time.Millisecond
)

// ErrBudgetExhausted is the cause of a timeout error raised because too little
// of the step's time was left to start a call.
var ErrBudgetExhausted = errors.New("time budget exhausted")

// Call runs one external call named op ("secretsmanager:PutSecretValue",
// "postgres:connect", "kms:Decrypt", …) under the step's time budget. The
// call's context has a deadline that fits what is left; when less than
// MinCallTime is left, Call fails at once with a ClassTimeout error naming op.
func Call(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	timeout := MaxCallTimeout
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl) - Reserve
		if left < MinCallTime {
			return &Error{Class: ClassTimeout, Op: op, Retryable: true, Cause: ErrBudgetExhausted,
				Msg: fmt.Sprintf("only %s of the function's time was left, too little to start the call; raise the function timeout or look for a slow dependency", time.Until(dl).Round(time.Millisecond))}
		}
		if left < timeout {
			timeout = left
		}
	}
	hook, _ := ctx.Value(faultKey).(FaultHook)
	obs, _ := ctx.Value(observerKey).(CallObserver)
	start := time.Now()
	var err error
	if hook != nil {
		err = hook(op, Before)
	}
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err = fn(cctx)
		if err != nil && errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			err = &Error{Class: ClassTimeout, Op: op, Retryable: true, Cause: err,
				Msg: fmt.Sprintf("the call did not finish within its %s share of the time budget", timeout.Round(time.Millisecond)), causeText: err.Error()}
		}
		cancel()
		if err == nil && hook != nil {
			err = hook(op, After)
		}
	}
	if obs != nil {
		obs(op, time.Since(start), err)
	}
	return err
}

// CallCounter counts calls by op; safe for concurrent use. Install it with
// WithCallObserver(ctx, c.Observe).
type CallCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

// Observe records one call.
func (c *CallCounter) Observe(op string, _ time.Duration, _ error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[op]++
}

// Count returns how many calls had an op starting with prefix.
func (c *CallCounter) Count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for op, k := range c.counts {
		if len(op) >= len(prefix) && op[:len(prefix)] == prefix {
			n += k
		}
	}
	return n
}

// Snapshot returns a copy of the counts.
func (c *CallCounter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		m[k] = v
	}
	return m
}

// Reset clears the counts.
func (c *CallCounter) Reset() {
	c.mu.Lock()
	c.counts = nil
	c.mu.Unlock()
}
