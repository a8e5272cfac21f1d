package rotation

import (
	"context"
	"encoding/json"
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
	// FunctionName names the function in notifications; default from
	// AWS_LAMBDA_FUNCTION_NAME.
	FunctionName string
}

// Engine runs the four rotation steps for one Strategy. It owns the event
// validation, the per-step checks of the rotation contract, every read and
// write of the rotated secret, label moves, notifications, logs and error
// redaction. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	log   *slog.Logger
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
	if cfg.FunctionName == "" {
		cfg.FunctionName = os.Getenv("AWS_LAMBDA_FUNCTION_NAME")
	}
	return &Engine{cfg: cfg, log: cfg.Logger, cache: newVersionCache(cfg.CacheEntries)}, nil
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
	e.report(ctx, r, dur, err)
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

func (r *run) currentVersion(ctx context.Context) (*Version, error) {
	v, err := r.e.readVersion(ctx, r.arn, r.current, StageCurrent)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, errorf(ClassState, r.ev.Step, "GetSecretValue", "the AWSCURRENT version %s of secret %s has no value", r.current, r.arn)
	}
	r.red.AddValue(v.Value)
	return v, nil
}

// pendingVersion returns the pending value, or nil if the placeholder is empty.
func (r *run) pendingVersion(ctx context.Context) (*Version, error) {
	v, err := r.e.readVersion(ctx, r.arn, r.ev.ClientRequestToken, StagePending)
	if v != nil {
		r.red.AddValue(v.Value)
	}
	return v, err
}

func (r *run) create(ctx context.Context) error {
	cur, pend, err := r.bothVersions(ctx)
	if err != nil {
		return err
	}
	if pend != nil {
		r.outcome = "pending-exists"
		return nil
	}
	resp, err := r.e.cfg.Strategy.Create(ctx, &CreateRequest{Secret: r.info, Token: r.ev.ClientRequestToken, Current: cur, Store: r.store(), Redact: r.red, Now: r.e.cfg.Now()})
	if err != nil {
		return err
	}
	if resp == nil || len(resp.Value) == 0 {
		return errorf(ClassDependency, r.ev.Step, r.e.cfg.Strategy.Kind()+":create", "the strategy returned no value")
	}
	r.red.AddValue(resp.Value)
	r.addReport(resp.Report)
	if len(resp.Value) > maxSecretValue {
		return errorf(ClassInput, r.ev.Step, "PutSecretValue", "the new value is %d bytes, more than Secrets Manager's 65536", len(resp.Value))
	}
	in := &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(r.arn),
		ClientRequestToken: aws.String(r.ev.ClientRequestToken),
		SecretString:       aws.String(string(resp.Value)),
		VersionStages:      []string{StagePending},
	}
	if r.ev.RotationToken != "" {
		in.RotationToken = aws.String(r.ev.RotationToken)
	}
	err = Call(ctx, "secretsmanager:PutSecretValue", func(ctx context.Context) error {
		_, err := r.e.cfg.Secrets.PutSecretValue(ctx, in)
		return err
	})
	if isAPIError(err, "ResourceExistsException") {
		// Another attempt stored a value under this token first: accept it
		// only if it is the same value.
		r.e.cache.forget(r.arn, r.ev.ClientRequestToken)
		stored, rerr := r.pendingVersion(ctx)
		if rerr != nil {
			return rerr
		}
		if stored != nil && string(stored.Value) == string(resp.Value) {
			r.outcome = "pending-exists"
			return nil
		}
		r.outcome = "pending-exists"
		return newError(ClassState, string(r.ev.Step), "PutSecretValue", "version "+r.ev.ClientRequestToken+" already holds a different value: the rotation token was reused with a different value; start a new rotation", nil)
	}
	if err != nil {
		return classifyExternal("PutSecretValue", err)
	}
	r.e.cache.put(r.arn, &Version{ID: r.ev.ClientRequestToken, Value: SecretValue(resp.Value)})
	r.started = true
	r.outcome = "done"
	return nil
}

// bothVersions reads the current version (which must have a value) and the
// pending one (nil while the placeholder is empty).
func (r *run) bothVersions(ctx context.Context) (cur, pend *Version, err error) {
	if cur, err = r.currentVersion(ctx); err != nil {
		return nil, nil, err
	}
	pend, err = r.pendingVersion(ctx)
	return cur, pend, err
}

func (r *run) set(ctx context.Context) error {
	cur, pend, err := r.bothVersions(ctx)
	if err != nil {
		return err
	}
	if pend == nil {
		return &Error{Class: ClassState, Step: string(r.ev.Step), Op: "GetSecretValue", Retryable: true,
			Msg: "the AWSPENDING version " + r.ev.ClientRequestToken + " has no value: createSecret has not completed"}
	}
	resp, err := r.e.cfg.Strategy.Set(ctx, &SetRequest{Secret: r.info, Token: r.ev.ClientRequestToken, Current: cur, Pending: pend, Store: r.store(), Redact: r.red, Now: r.e.cfg.Now()})
	if resp != nil {
		r.addReport(resp.Report)
	}
	if err == nil {
		r.outcome = "done"
	}
	return err
}

func (r *run) test(ctx context.Context) error {
	cur, pend, err := r.bothVersions(ctx)
	if err != nil {
		return err
	}
	if pend == nil {
		// RotateImmediately=false: the service tests the configuration
		// against an empty pending version. Test the current value instead.
		r.configTest = true
		pend = cur
	}
	resp, err := r.e.cfg.Strategy.Test(ctx, &TestRequest{Secret: r.info, Token: r.ev.ClientRequestToken, Current: cur, Pending: pend, ConfigTest: r.configTest, Store: r.store(), Redact: r.red, Now: r.e.cfg.Now()})
	if resp != nil {
		r.addReport(resp.Report)
	}
	if err != nil {
		return err
	}
	if r.configTest {
		r.outcome = "config-test"
		return nil
	}
	// The proof finishSecret requires: the tested version carries the
	// private label StageTested.
	if err := r.markTested(ctx); err != nil {
		return err
	}
	r.outcome = "done"
	return nil
}

func (r *run) finish(ctx context.Context) error {
	// The token is AWSPENDING and not AWSCURRENT (checked in step). Promote
	// it only with the proof that it passed testSecret (and so has a value).
	if err := r.requireTested(ctx); err != nil {
		return err
	}
	var attempts attemptCounter
	err := Call(ctx, "secretsmanager:UpdateSecretVersionStage", func(ctx context.Context) error {
		_, err := r.e.cfg.Secrets.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
			SecretId:            aws.String(r.arn),
			VersionStage:        aws.String(StageCurrent),
			MoveToVersionId:     aws.String(r.ev.ClientRequestToken),
			RemoveFromVersionId: aws.String(r.current),
		}, attempts.option)
		return err
	})
	if err != nil {
		d, derr := r.describe(ctx)
		if derr != nil || !slices.Contains(d.VersionIdsToStages[r.ev.ClientRequestToken], StageCurrent) {
			return classifyExternal("UpdateSecretVersionStage", err)
		}
		if attempts.n() <= 1 {
			// The first and only request was refused because another
			// execution environment promoted the token meanwhile: that
			// promotion is its, and so are its notification and hook.
			r.outcome = "noop"
			r.e.log.InfoContext(ctx, "version became AWSCURRENT in another execution environment; nothing to do", "secretArn", r.arn, "versionId", r.ev.ClientRequestToken)
			return nil
		}
		// The service applied an earlier attempt of this very call and the
		// answer was lost (the SDK's retry then found AWSCURRENT moved):
		// this invocation's promotion.
	}
	r.promoted = true
	r.outcome = "done"
	fin, ok := r.e.cfg.Strategy.(Finisher)
	if !ok {
		return nil
	}
	// The hook runs after the promotion, which stands whatever it does. A
	// failure fails the step as retryable: the service retries the rotation,
	// and the retried finishSecret (token current, AWSPENDING still on it)
	// runs the hook again.
	return r.afterFinish(ctx, fin)
}

func (r *run) afterFinish(ctx context.Context, fin Finisher) error {
	cur, err := r.e.readVersion(ctx, r.arn, r.ev.ClientRequestToken, "")
	if err != nil {
		return err
	}
	prev, err := r.e.readVersion(ctx, r.arn, r.current, "")
	if err != nil {
		return err
	}
	if cur == nil || prev == nil {
		return errors.New("a promoted version has no value")
	}
	r.red.AddValue(cur.Value)
	r.red.AddValue(prev.Value)
	resp, err := fin.AfterFinish(ctx, &FinishRequest{Secret: r.info, Token: r.ev.ClientRequestToken, Current: cur, Previous: prev, Store: r.store(), Redact: r.red, Now: r.e.cfg.Now()})
	if resp != nil {
		r.addReport(resp.Report)
	}
	if err != nil {
		re := r.classify(err).(*Error)
		re.Retryable = true
		re.Msg = "AWSCURRENT was moved to the new version, but the after-finish action failed and will be retried: " + re.Msg
		return re
	}
	return nil
}

func (r *run) addReport(rep Report) {
	r.report.Warnings = append(r.report.Warnings, rep.Warnings...)
	for k, v := range rep.Details {
		if r.report.Details == nil {
			r.report.Details = map[string]string{}
		}
		r.report.Details[k] = v
	}
}

// readVersion reads one version of a secret, from the cache when its id is
// known. It returns nil, nil when the version has no value (the empty
// placeholder) or does not exist. stage, when set, must be on the version.
func (e *Engine) readVersion(ctx context.Context, arn, versionID, stage string) (*Version, error) {
	if versionID != "" {
		if v := e.cache.get(arn, versionID); v != nil {
			return v, nil
		}
	}
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	if stage != "" {
		in.VersionStage = aws.String(stage)
	}
	var out *secretsmanager.GetSecretValueOutput
	err := Call(ctx, "secretsmanager:GetSecretValue", func(ctx context.Context) error {
		var err error
		out, err = e.cfg.Secrets.GetSecretValue(ctx, in)
		return err
	})
	if isAPIError(err, "ResourceNotFoundException") {
		return nil, nil
	}
	if err != nil {
		return nil, classifyExternal("GetSecretValue", err)
	}
	v := &Version{ID: aws.ToString(out.VersionId), Stages: out.VersionStages, Created: aws.ToTime(out.CreatedDate)}
	switch {
	case out.SecretString != nil:
		v.Value = SecretValue(*out.SecretString)
	default:
		v.Value = SecretValue(slices.Clone(out.SecretBinary))
	}
	if len(v.Value) == 0 {
		return nil, nil
	}
	if v.ID != "" {
		e.cache.put(aws.ToString(out.ARN), v)
		if arn != aws.ToString(out.ARN) {
			e.cache.put(arn, v)
		}
	}
	return v, nil
}

// report writes the step's log line, metrics and notification.
func (e *Engine) report(ctx context.Context, r *run, dur time.Duration, err error) {
	attrs := []any{
		"secretArn", r.arn, "step", string(r.ev.Step), "versionId", r.ev.ClientRequestToken,
		"kind", e.cfg.Strategy.Kind(), "durationMs", dur.Milliseconds(),
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
		e.log.ErrorContext(ctx, "rotation step failed", attrs...)
	} else {
		attrs = append(attrs, "outcome", r.outcome)
		if len(r.report.Warnings) > 0 {
			e.log.WarnContext(ctx, "rotation step completed with warnings", attrs...)
		} else {
			e.log.InfoContext(ctx, "rotation step completed", attrs...)
		}
	}
	e.emitMetrics(r, dur, re)
	e.notify(ctx, r, dur, re)
}

// emitMetrics writes one CloudWatch Embedded Metric Format line.
func (e *Engine) emitMetrics(r *run, dur time.Duration, re *Error) {
	if e.cfg.Metrics == nil {
		return
	}
	failures := 0
	class := "none"
	if re != nil {
		failures = 1
		class = string(re.Class)
	}
	doc := map[string]any{
		"_aws": map[string]any{
			"Timestamp": e.cfg.Now().UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  "SecretRotation",
				"Dimensions": [][]string{{"Function", "Step"}, {"Function", "ErrorClass"}},
				"Metrics": []any{
					map[string]string{"Name": "StepDuration", "Unit": "Milliseconds"},
					map[string]string{"Name": "StepFailures", "Unit": "Count"},
				},
			}},
		},
		"Function":     e.cfg.Strategy.Kind(),
		"Step":         string(r.ev.Step),
		"ErrorClass":   class,
		"StepDuration": float64(dur.Microseconds()) / 1000,
		"StepFailures": failures,
		"secretArn":    r.arn,
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return
	}
	_, _ = fmt.Fprintf(e.cfg.Metrics, "%s\n", b)
}
