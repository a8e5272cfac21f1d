package rotation

import (
	"context"
	"time"

	"github.com/rotation-suite/rotation/pkg/extcall"
)

// Phase says whether a fault hook runs before or after the call it guards.
type Phase = extcall.Phase

// Before runs before the call is made; After runs once it returned without
// error (a fault there models a crash after the call took effect).
const (
	Before = extcall.Before
	After  = extcall.After
)

// FaultHook is consulted around every external call made through Call — and
// every call a consumer library (pkg/envelope's KMS calls) makes through
// extcall.Do under the same context. A non-nil return fails the call as if the
// dependency had failed. Tests install one with WithFaultHook; production code
// never does.
type FaultHook = extcall.FaultHook

// CallObserver sees every external call made through Call or extcall.Do, for
// counting.
type CallObserver = extcall.Observer

// WithFaultHook returns a context whose external calls consult h.
func WithFaultHook(ctx context.Context, h FaultHook) context.Context {
	return extcall.WithFaultHook(ctx, h)
}

// WithCallObserver returns a context whose external calls are reported to o.
func WithCallObserver(ctx context.Context, o CallObserver) context.Context {
	return extcall.WithObserver(ctx, o)
}

// The step time budget: every call of a step gets at most MaxCallTimeout, and
// never more than what is left of the invocation's deadline minus Reserve
// (kept so the step can still report its failure before the runtime kills
// it); with less than MinCallTime left, a call is not started. The engine
// installs it on each step's context (extcall.WithBudget), so the KMS calls a
// library makes inside a step obey it too; an application's own calls to
// those libraries run under their caller's deadline as given.
const (
	MaxCallTimeout = 10 * time.Second
	Reserve        = 500 * time.Millisecond
	MinCallTime    = 100 * time.Millisecond
)

// stepBudget is the budget Handle installs on a step's context.
func stepBudget() extcall.Budget {
	return extcall.Budget{MaxCall: MaxCallTimeout, Reserve: Reserve, MinCall: MinCallTime}
}

// withStepBudget installs the step budget unless ctx already carries one.
func withStepBudget(ctx context.Context) context.Context {
	if _, ok := extcall.BudgetFrom(ctx); ok {
		return ctx
	}
	return extcall.WithBudget(ctx, stepBudget())
}

// ErrBudgetExhausted is the cause of a timeout error raised because too little
// of the step's time was left to start a call.
var ErrBudgetExhausted = extcall.ErrBudgetExhausted

// Call runs one external call named op ("secretsmanager:PutSecretValue",
// "postgres:connect", "kms:Decrypt", …) under the step's time budget (the
// engine's, installed by Handle; the same default when Call runs outside a
// step, as in a strategy's own tests). The call's context has a deadline that
// fits what is left; when less than MinCallTime is left, Call fails at once
// with a ClassTimeout *Error naming op.
func Call(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	err := extcall.Do(withStepBudget(ctx), op, fn)
	if ee, ok := err.(*extcall.Error); ok {
		return fromExtcall(ee)
	}
	return err
}

// CallCounter counts calls by op; safe for concurrent use. Install it with
// WithCallObserver(ctx, c.Observe).
type CallCounter = extcall.Counter
