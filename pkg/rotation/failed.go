package rotation

import (
	"context"
	"errors"

	"github.com/rotation-suite/rotation/pkg/extcall"
)

// FailedHandler is the Lambda handler of a function whose configuration
// failed at cold start: a bad environment, an AWS SDK configuration that does
// not load, a strategy that does not build. Every invocation fails with that
// error and is reported as any failed step is, through the same Reporter: the
// log line, the EMF metric line and the rotation.failed notification, naming
// the event's step, secret and version when the event parses. The event's
// RotationToken is redacted from every text and never reported.
type FailedHandler struct {
	rep Reporter
	err *Error
}

// NewFailedHandler returns the handler that reports err on every invocation
// through rep (unset fields defaulted as for an Engine; Kind is usually
// unset, there being no strategy). An err that is not classified becomes a
// ClassConfiguration error.
func NewFailedHandler(rep Reporter, err error) *FailedHandler {
	var re *Error
	var ee *extcall.Error
	switch {
	case errors.As(err, &re):
	case errors.As(err, &ee):
		re = fromExtcall(ee)
	default:
		re = newError(ClassConfiguration, "", "start", "the function could not start", err)
	}
	return &FailedHandler{rep: rep.withDefaults(), err: re}
}

// Err returns the configuration error every invocation fails with.
func (h *FailedHandler) Err() error { return h.err }

// Invoke implements the aws-lambda-go lambda.Handler interface: it reports
// the configuration error as a failure of the event's step and returns it.
// An event that does not parse is reported with no step or secret.
func (h *FailedHandler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	start := h.rep.Now()
	r := &run{red: NewRedactor()}
	if ev, err := ParseEvent(payload); err == nil {
		r.ev, r.arn = ev, ev.SecretID
		if ev.RotationToken != "" {
			r.red.Add(ev.RotationToken)
		}
	}
	r.ev.RotationToken = "" // never reported; dropped so that no later change can report it
	err := h.err.redacted(r.red, string(r.ev.Step))
	h.rep.report(ctx, r, h.rep.Now().Sub(start), err)
	return nil, err
}
