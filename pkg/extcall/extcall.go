// Package extcall runs one call to an external dependency (KMS, Secrets
// Manager, a database, an HTTP endpoint) and owns what every such call shares,
// whoever makes it — the rotation engine or a consumer library inside an
// application:
//
//   - an optional time budget a caller installs on the context (WithBudget):
//     the rotation engine installs its Lambda step budget so that a step keeps
//     time to report its failure; without one, a call runs under the caller's
//     deadline exactly as given;
//   - fault hooks and observers that tests and benchmarks install on the
//     context (WithFaultHook, WithObserver, Counter) to inject failures before
//     or after a named call and to count calls;
//   - the failure classes (Class, Error) the engine acts on, so a library can
//     classify a dependency's failure without importing the engine.
//
// It does not retry, log or choose what to do about a failure: the SDKs'
// retryers retry, and the caller acts on the class. The package is a leaf:
// it imports only the standard library.
package extcall

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// FaultHook is consulted around every call made through Do. A non-nil return
// fails the call as if the dependency had failed. Tests install one with
// WithFaultHook; production code never does.
type FaultHook func(op string, phase Phase) error

// Observer sees every call made through Do, for counting and timing, and a
// call a fault hook failed; a call Do refuses for want of budget is not
// made and not seen.
type Observer func(op string, d time.Duration, err error)

type ctxKey int

const (
	faultKey ctxKey = iota
	observerKey
	budgetKey
)

// WithFaultHook returns a context whose calls consult h.
func WithFaultHook(ctx context.Context, h FaultHook) context.Context {
	return context.WithValue(ctx, faultKey, h)
}

// WithObserver returns a context whose calls are reported to o.
func WithObserver(ctx context.Context, o Observer) context.Context {
	return context.WithValue(ctx, observerKey, o)
}

// Budget bounds each call made under a context that carries it: a call gets
// at most MaxCall, and never more than what is left of the context's deadline
// minus Reserve; when less than MinCall would be left, the call is not started.
// A zero field means no bound of that kind.
type Budget struct {
	MaxCall time.Duration
	Reserve time.Duration
	MinCall time.Duration
}

// WithBudget returns a context whose calls run under b.
func WithBudget(ctx context.Context, b Budget) context.Context {
	return context.WithValue(ctx, budgetKey, b)
}

// BudgetFrom returns the budget installed on ctx, if any.
func BudgetFrom(ctx context.Context) (Budget, bool) {
	b, ok := ctx.Value(budgetKey).(Budget)
	return b, ok
}

// ErrBudgetExhausted is the cause of a ClassTimeout error raised because too
// little of the budget was left to start a call.
var ErrBudgetExhausted = errors.New("time budget exhausted")

// Do runs fn, the call named op ("kms:Decrypt", "secretsmanager:GetSecretValue",
// "postgres:connect", …). With a Budget on ctx, fn's context has a deadline
// that fits it, and Do fails at once with a ClassTimeout *Error when less than
// Budget.MinCall is left. Without one, fn runs under ctx as given. Fault hooks
// and observers on ctx see the call.
func Do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	b, budgeted := BudgetFrom(ctx)
	var timeout time.Duration // 0: no call deadline of our own
	if budgeted {
		timeout = b.MaxCall
		if dl, ok := ctx.Deadline(); ok {
			left := time.Until(dl) - b.Reserve
			if left < b.MinCall || left <= 0 {
				return &Error{Class: ClassTimeout, Op: op, Retryable: true, Cause: ErrBudgetExhausted,
					Msg: fmt.Sprintf("only %s of the function's time was left, too little to start the call; raise the function timeout or look for a slow dependency", time.Until(dl).Round(time.Millisecond))}
			}
			if timeout <= 0 || left < timeout {
				timeout = left
			}
		}
	}
	hook, _ := ctx.Value(faultKey).(FaultHook)
	obs, _ := ctx.Value(observerKey).(Observer)
	start := time.Now()
	var err error
	if hook != nil {
		err = hook(op, Before)
	}
	if err == nil {
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			cctx, cancel = context.WithTimeout(ctx, timeout)
		}
		err = fn(cctx)
		if err != nil && timeout > 0 && errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			err = &Error{Class: ClassTimeout, Op: op, Retryable: true, Cause: err,
				Msg: fmt.Sprintf("the call did not finish within its %s share of the time budget", timeout.Round(time.Millisecond))}
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

// Counter counts calls by op; safe for concurrent use. Install it with
// WithObserver(ctx, c.Observe).
type Counter struct {
	mu     sync.Mutex
	counts map[string]int
}

// Observe records one call.
func (c *Counter) Observe(op string, _ time.Duration, _ error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[op]++
}

// Count returns how many calls had an op starting with prefix.
func (c *Counter) Count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for op, k := range c.counts {
		if strings.HasPrefix(op, prefix) {
			n += k
		}
	}
	return n
}

// Snapshot returns a copy of the counts.
func (c *Counter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		m[k] = v
	}
	return m
}

// Reset clears the counts.
func (c *Counter) Reset() {
	c.mu.Lock()
	c.counts = nil
	c.mu.Unlock()
}
