package rotation

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"time"
)

// LocalFunctionName is the function name reported (the FunctionName metric
// dimension and the notification's function) when neither the configuration
// nor AWS_LAMBDA_FUNCTION_NAME names one: the engine is not running in
// Lambda (a test, the rotate tool, a local stack).
const LocalFunctionName = "local"

// KindUnknown is the kind reported when there is no strategy to name it: a
// function whose configuration failed at cold start (FailedHandler).
const KindUnknown = "unknown"

// Reporter is the one place that turns the result of a step into its log
// line, its CloudWatch Embedded Metric Format line (metrics.go) and its
// notification (notify.go). An Engine reports every step through its
// Reporter; a FailedHandler reports a configuration error found at cold
// start through one, before there is a strategy or an Engine. Every text it
// reports has been redacted with the secrets the step knows.
type Reporter struct {
	// Kind is the strategy's kind (the Kind metric dimension and the
	// notification's kind); "": KindUnknown.
	Kind string
	// FunctionName is the function's name (the FunctionName metric dimension
	// and the notification's function); "": AWS_LAMBDA_FUNCTION_NAME, and
	// LocalFunctionName when that is unset too.
	FunctionName string
	// Notifier publishes notifications; nil: none.
	Notifier Notifier
	// Metrics receives the EMF lines; nil: none.
	Metrics io.Writer
	// Logger receives the step's log line; nil: JSON on stdout.
	Logger *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// withDefaults returns rep with every unset field defaulted.
func (rep Reporter) withDefaults() Reporter {
	if rep.Kind == "" {
		rep.Kind = KindUnknown
	}
	if rep.FunctionName == "" {
		rep.FunctionName = os.Getenv("AWS_LAMBDA_FUNCTION_NAME")
	}
	if rep.FunctionName == "" {
		rep.FunctionName = LocalFunctionName
	}
	if rep.Logger == nil {
		rep.Logger = slog.New(slog.NewJSONHandler(os.Stdout, nil))
	}
	if rep.Now == nil {
		rep.Now = time.Now
	}
	return rep
}

// report writes the step's log line, metrics and notification. err is nil or
// a redacted *Error.
func (rep *Reporter) report(ctx context.Context, r *run, dur time.Duration, err error) {
	attrs := []any{
		"secretArn", r.arn, "step", string(r.ev.Step), "versionId", r.ev.ClientRequestToken,
		"kind", rep.Kind, "durationMs", dur.Milliseconds(),
	}
	if r.configTest {
		attrs = append(attrs, "configTest", true)
	}
	if len(r.report.Warnings) > 0 {
		ws := make([]string, len(r.report.Warnings))
		for i, w := range r.report.Warnings {
			ws[i] = r.red.Redact(w)
		}
		r.report.Warnings = ws
		attrs = append(attrs, "warnings", ws)
	}
	if len(r.report.Details) > 0 {
		for k, v := range r.report.Details {
			r.report.Details[k] = r.red.Redact(v)
		}
		attrs = append(attrs, "details", r.report.Details)
	}
	var re *Error
	if err != nil {
		errors.As(err, &re)
		attrs = append(attrs, "outcome", "failure", "errorClass", string(re.Class), "retryable", re.Retryable, "error", err.Error())
		rep.Logger.ErrorContext(ctx, "rotation step failed", attrs...)
	} else {
		attrs = append(attrs, "outcome", r.outcome)
		if len(r.report.Warnings) > 0 {
			rep.Logger.WarnContext(ctx, "rotation step completed with warnings", attrs...)
		} else {
			rep.Logger.InfoContext(ctx, "rotation step completed", attrs...)
		}
	}
	rep.emitMetrics(r, dur, re)
	rep.notify(ctx, r, dur, re)
}
