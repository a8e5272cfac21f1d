package rotation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// maxSecretValue is Secrets Manager's limit on a secret value (64 KiB).
const maxSecretValue = 65536

// Config wires an Engine.
type Config struct {
	Secrets  SecretsAPI // required
	Strategy Strategy   // required
	Notifier Notifier   // nil: no notifications
	Logger   *slog.Logger
	// Metrics receives CloudWatch Embedded Metric Format lines; nil: none.
	Metrics io.Writer
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// CacheEntries bounds the per-environment cache of secret versions
	// (values never change once written); 0: 64.
	CacheEntries int
	// FunctionName names the function in metrics (the FunctionName
	// dimension) and notifications; "": AWS_LAMBDA_FUNCTION_NAME, and
	// LocalFunctionName outside Lambda.
	FunctionName string
}

// Engine runs the four rotation steps for one Strategy. It owns the event
// validation, the per-step checks of the rotation contract (this file and
// steps.go, finish.go), every read and write of the rotated secret, label
// moves, and error redaction; its Reporter (report.go) writes the logs,
// metrics and notifications. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	rep   Reporter
	cache *versionCache
}

// New checks cfg and returns an Engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Secrets == nil {
		return nil, errors.New("rotation: Config.Secrets is required")
	}
	if cfg.Strategy == nil {
		return nil, errors.New("rotation: Config.Strategy is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stdout, nil))
	}
	if cfg.CacheEntries <= 0 {
		cfg.CacheEntries = 64
	}
	rep := Reporter{Kind: cfg.Strategy.Kind(), FunctionName: cfg.FunctionName, Notifier: cfg.Notifier,
		Metrics: cfg.Metrics, Logger: cfg.Logger, Now: cfg.Now}.withDefaults()
	cfg.FunctionName = rep.FunctionName
	return &Engine{cfg: cfg, log: cfg.Logger, rep: rep, cache: newVersionCache(cfg.CacheEntries)}, nil
}

// Invoke implements the aws-lambda-go lambda.Handler interface: it parses the
// raw event strictly and runs the step. Pass the Engine to lambda.Start.
func (e *Engine) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	ev, err := ParseEvent(payload)
	if err != nil {
		e.log.ErrorContext(ctx, "rejected event", "error", err.Error(), "errorClass", string(ClassOf(err)))
		return nil, err
	}
	return nil, e.Handle(ctx, ev)
}

// run is the state of one step invocation.
type run struct {
	e        *Engine
	ev       Event
	red      *Redactor
	arn      string
	info     SecretInfo
	current  string // version id carrying AWSCURRENT
	previous string // version id carrying AWSPREVIOUS, if any
	// outcome facts for logs and notifications
	outcome    string // "done", "noop", "pending-exists", "config-test", "finish-retried", "probe-passed"
	configTest bool
	started    bool // createSecret stored a new value
	promoted   bool // finishSecret moved AWSCURRENT (in this invocation)
	report     Report
	// stages is VersionIdsToStages from this step's DescribeSecret.
	stages map[string][]string
}

// Handle runs one step of a rotation. It returns nil when the step is done
// (or had nothing to do) and a redacted *Error otherwise.
func (e *Engine) Handle(ctx context.Context, ev Event) error {
	ctx = withStepBudget(ctx)
	start := e.cfg.Now()
	r := &run{e: e, ev: ev, red: NewRedactor(), arn: ev.SecretID}
	if ev.RotationToken != "" {
		r.red.Add(ev.RotationToken)
	}
	err := ev.Validate()
	if err == nil {
		err = r.safeStep(ctx)
	}
	dur := e.cfg.Now().Sub(start)
	if err != nil {
		err = r.classify(err)
	}
	e.rep.report(ctx, r, dur, err)
	return err
}

// safeStep runs the step and turns a panic into a classified error whose
// message is redacted like any other: a panic value built from a secret
// never reaches the runtime's panic report.
func (r *run) safeStep(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &Error{Class: ClassDependency, Step: string(r.ev.Step), Op: "panic", Retryable: false,
				Msg: "internal error: the step panicked: " + r.red.Redact(fmt.Sprint(p)) + "; this is a bug, please report it"}
		}
	}()
	return r.step(ctx)
}

// classify turns any error into a redacted *Error naming the step.
func (r *run) classify(err error) error {
	var re *Error
	if !errors.As(err, &re) {
		re = classifyExternal("", err)
	}
	return re.redacted(r.red, string(r.ev.Step))
}

func (r *run) step(ctx context.Context) error {
	d, err := r.describe(ctx)
	if err != nil {
		return err
	}
	r.stages = d.VersionIdsToStages
	if r.ev.Step == StepProbe {
		return r.probe(ctx, d)
	}
	if !aws.ToBool(d.RotationEnabled) {
		return errorf(ClassState, r.ev.Step, "DescribeSecret", "rotation is not enabled for secret %s; enable rotation (RotateSecret with a rotation function) before invoking the function", r.arn)
	}
	stages, ok := d.VersionIdsToStages[r.ev.ClientRequestToken]
	if !ok {
		return errorf(ClassState, r.ev.Step, "DescribeSecret", "version %s is not a version of secret %s; the event does not belong to this secret's rotation", r.ev.ClientRequestToken, r.arn)
	}
	if slices.Contains(stages, StageCurrent) {
		// A retried finishSecret whose promotion already happened. While
		// AWSPENDING is still on the version the service has not recorded
		// the rotation as done (it removes AWSPENDING after a successful
		// finishSecret), so the strategy's idempotent after-finish hook may
		// not have completed: run it again. Otherwise there is nothing to do.
		if r.ev.Step == StepFinish && slices.Contains(stages, StagePending) {
			if fin, ok := r.e.cfg.Strategy.(Finisher); ok {
				r.locate(d)
				for id, st := range d.VersionIdsToStages {
					if slices.Contains(st, StagePrevious) {
						r.current = id // the version that was current before the promotion
					}
				}
				if r.current == "" || r.current == r.ev.ClientRequestToken {
					r.outcome = "noop"
					return nil
				}
				// Not a second promotion: this invocation moved no label,
				// so it reports "finish-retried", never rotation.succeeded.
				r.outcome = "finish-retried"
				r.e.log.InfoContext(ctx, "finishSecret retried after the promotion: re-running the after-finish action", "secretArn", r.arn, "versionId", r.ev.ClientRequestToken)
				return r.afterFinish(ctx, fin)
			}
		}
		r.outcome = "noop"
		r.e.log.InfoContext(ctx, "version is already AWSCURRENT; nothing to do", "secretArn", r.arn, "step", string(r.ev.Step), "versionId", r.ev.ClientRequestToken)
		return nil
	}
	if !slices.Contains(stages, StagePending) {
		return errorf(ClassState, r.ev.Step, "DescribeSecret", "version %s of secret %s is not AWSPENDING; a newer rotation or a manual change replaced it", r.ev.ClientRequestToken, r.arn)
	}
	for id, st := range d.VersionIdsToStages {
		if slices.Contains(st, StageCurrent) {
			r.current = id
		}
		if slices.Contains(st, StagePrevious) {
			r.previous = id
		}
	}
	if r.current == "" {
		return errorf(ClassState, r.ev.Step, "DescribeSecret", "secret %s has no AWSCURRENT version", r.arn)
	}
	r.locate(d)
	switch r.ev.Step {
	case StepCreate:
		return r.create(ctx)
	case StepSet:
		return r.set(ctx)
	case StepTest:
		return r.test(ctx)
	default:
		return r.finish(ctx)
	}
}

// locate takes the secret's identity, tags and schedule from DescribeSecret.
func (r *run) locate(d *secretsmanager.DescribeSecretOutput) {
	r.arn = aws.ToString(d.ARN)
	r.info = SecretInfo{ARN: r.arn, Name: aws.ToString(d.Name), Tags: map[string]string{}}
	for _, t := range d.Tags {
		r.info.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	if rr := d.RotationRules; rr != nil {
		switch {
		case rr.AutomaticallyAfterDays != nil:
			r.info.RotationInterval = time.Duration(*rr.AutomaticallyAfterDays) * 24 * time.Hour
		case rr.ScheduleExpression != nil:
			r.info.RotationInterval = RateInterval(*rr.ScheduleExpression)
		}
	}
}

// RateInterval returns the interval of a rate(N days|hours) schedule
// expression, and 0 for anything else (cron expressions are not interpreted).
func RateInterval(expr string) time.Duration {
	var n int
	var unit string
	if _, err := fmt.Sscanf(strings.TrimSpace(expr), "rate(%d %s", &n, &unit); err != nil || n <= 0 {
		return 0
	}
	switch strings.TrimSuffix(unit, ")") {
	case "day", "days":
		return time.Duration(n) * 24 * time.Hour
	case "hour", "hours":
		return time.Duration(n) * time.Hour
	}
	return 0
}

func (r *run) describe(ctx context.Context) (*secretsmanager.DescribeSecretOutput, error) {
	var out *secretsmanager.DescribeSecretOutput
	err := Call(ctx, "secretsmanager:DescribeSecret", func(ctx context.Context) error {
		var err error
		out, err = r.e.cfg.Secrets.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(r.arn)})
		return err
	})
	if err != nil {
		if isAPIError(err, "ResourceNotFoundException") {
			return nil, newError(ClassConfiguration, string(r.ev.Step), "DescribeSecret", "secret "+r.arn+" does not exist or is not visible to the function's role", err)
		}
		return nil, classifyExternal("DescribeSecret", err)
	}
	return out, nil
}
