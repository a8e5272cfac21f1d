// Package driver plays Secrets Manager's part in a rotation on the local
// stack: it asks the service (moto, or the fake) for the empty AWSPENDING
// placeholder through RotateSecret, calls the four steps in order through an
// Invoker (the engine in-process, or a function under the runtime emulator),
// retries the whole rotation on failure as the service does, and removes
// AWSPENDING after success as the service does (a removal already applied
// counts as done). It owns no rotation logic.
package driver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Invoker runs one step event. *rotation.Engine and the runtime emulator
// client both satisfy it.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// InvokerFunc adapts a function to Invoker.
type InvokerFunc func(ctx context.Context, payload []byte) ([]byte, error)

// Invoke calls f.
func (f InvokerFunc) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	return f(ctx, payload)
}

// ServiceAPI is what the driver needs of Secrets Manager.
type ServiceAPI interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	RotateSecret(ctx context.Context, in *secretsmanager.RotateSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
}

// StepResult is reported for every step invocation.
type StepResult struct {
	Attempt  int
	Step     rotation.Step
	Duration time.Duration
	Err      error
}

// Driver drives rotations.
type Driver struct {
	SM     ServiceAPI
	Invoke Invoker
	// LambdaARN is the rotation function registered with the service (on
	// moto, a no-op function: see testenv.RegisterNoopLambda).
	LambdaARN string
	// Attempts is how often the whole rotation runs before giving up; 0: 5.
	Attempts int
	// StepTimeout bounds each step like the function's timeout; 0: 30 s.
	StepTimeout time.Duration
	// RotationToken, if set, is sent in every event as the newer service does.
	RotationToken string
	// OnStep, if set, sees every step invocation (progress displays, tests).
	OnStep func(StepResult)
	// Wrap, if set, wraps each step's context (fault hooks, call counters).
	Wrap func(ctx context.Context, attempt int, step rotation.Step) context.Context
}

// Result is the outcome of one rotation.
type Result struct {
	Token    string
	Attempts int
	Steps    []StepResult
	Duration time.Duration
}

// ErrFailed wraps the last step error after every attempt failed.
var ErrFailed = errors.New("rotation failed after all attempts")

// Rotate runs one rotation of secretID, with token as ClientRequestToken
// (empty: the service picks one). On failure AWSPENDING stays where the
// service would leave it, on the failed version.
func (d *Driver) Rotate(ctx context.Context, secretID, token string) (*Result, error) {
	start := time.Now()
	in := &secretsmanager.RotateSecretInput{
		SecretId:          aws.String(secretID),
		RotateImmediately: aws.Bool(true),
		RotationRules:     &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
	}
	if d.LambdaARN != "" {
		in.RotationLambdaARN = aws.String(d.LambdaARN)
	}
	if token != "" {
		in.ClientRequestToken = aws.String(token)
	}
	out, err := d.SM.RotateSecret(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("RotateSecret: %w", err)
	}
	res := &Result{Token: aws.ToString(out.VersionId)}
	err = d.run(ctx, aws.ToString(out.ARN), res)
	res.Duration = time.Since(start)
	return res, err
}

// Resume re-runs the steps of a rotation whose placeholder already exists
// (the service's retry of a failed rotation).
func (d *Driver) Resume(ctx context.Context, secretARN, token string) (*Result, error) {
	start := time.Now()
	res := &Result{Token: token}
	err := d.run(ctx, secretARN, res)
	res.Duration = time.Since(start)
	return res, err
}

func (d *Driver) run(ctx context.Context, arn string, res *Result) error {
	attempts := d.Attempts
	if attempts <= 0 {
		attempts = 5
	}
	var last error
	for a := 1; a <= attempts; a++ {
		res.Attempts = a
		last = d.attempt(ctx, arn, res, a)
		if last == nil {
			return d.removePending(ctx, arn, res.Token)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("%w: %w", ErrFailed, last)
}

func (d *Driver) attempt(ctx context.Context, arn string, res *Result, attempt int) error {
	timeout := d.StepTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	for _, step := range rotation.Steps {
		ev := rotation.Event{Step: step, SecretID: arn, ClientRequestToken: res.Token, RotationToken: d.RotationToken}
		payload := fmt.Appendf(nil, `{"Step":%q,"SecretId":%q,"ClientRequestToken":%q`, ev.Step, ev.SecretID, ev.ClientRequestToken)
		if ev.RotationToken != "" {
			payload = fmt.Appendf(payload, `,"RotationToken":%q`, ev.RotationToken)
		}
		payload = append(payload, '}')
		sctx, cancel := context.WithTimeout(ctx, timeout)
		if d.Wrap != nil {
			sctx = d.Wrap(sctx, attempt, step)
		}
		t0 := time.Now()
		_, err := d.Invoke.Invoke(sctx, payload)
		cancel()
		sr := StepResult{Attempt: attempt, Step: step, Duration: time.Since(t0), Err: err}
		res.Steps = append(res.Steps, sr)
		if d.OnStep != nil {
			d.OnStep(sr)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", step, err)
		}
	}
	return nil
}

// removePending does what the service does after a successful rotation: it
// takes AWSPENDING off the new version (now AWSCURRENT).
func (d *Driver) removePending(ctx context.Context, arn, token string) error {
	desc, err := d.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		return fmt.Errorf("DescribeSecret after rotation: %w", err)
	}
	stages := desc.VersionIdsToStages[token]
	if !slices.Contains(stages, rotation.StageCurrent) {
		return fmt.Errorf("rotation reported success but version %s is not AWSCURRENT (stages %v)", token, stages)
	}
	if !slices.Contains(stages, rotation.StagePending) {
		return nil
	}
	_, err = d.SM.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(arn), VersionStage: aws.String(rotation.StagePending), RemoveFromVersionId: aws.String(token),
	})
	if err != nil && !d.pendingGone(ctx, arn, token) {
		return fmt.Errorf("remove AWSPENDING after success: %w", err)
	}
	return nil
}

// pendingGone reports whether AWSPENDING is no longer on token: a removal
// that failed may have been applied already (the endpoint applied the
// request, the connection dropped, the SDK's retry found the label gone).
// Already done is done.
func (d *Driver) pendingGone(ctx context.Context, arn, token string) bool {
	desc, err := d.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	return err == nil && !slices.Contains(desc.VersionIdsToStages[token], rotation.StagePending)
}
