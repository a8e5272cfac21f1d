// Package operator owns what an operator may do to a stuck rotation without
// losing a credential: `rotate unstick`. A rotation is stuck when AWSPENDING
// sits on a version other than AWSCURRENT; the next RotateSecret then fails.
// Simply removing AWSPENDING can strand the live credential (a single-user
// database whose setSecret already changed the password holds the pending
// value, not the current one), so this package never removes it on age
// alone:
//
//   - resume (the default) re-runs the stuck rotation as the service would:
//     the rotation function's four steps, invoked through the Lambda Invoke
//     API with the stuck version's id as ClientRequestToken, then AWSPENDING
//     removed as the service does after a successful finishSecret;
//   - discard removes AWSPENDING only after the function's read-only
//     probeSecret step has proven that the AWSCURRENT version still
//     authenticates in the target; without that proof it refuses.
//
// AWSPENDING left on the AWSCURRENT version (a promoted rotation whose
// after-finish action failed on every retry) is closed by resume: one more
// finishSecret, which re-runs the action and promotes nothing, then the
// label's removal.
//
// It reaches AWS only through the Secrets Manager and Lambda clients it is
// given; it never reads or prints a secret value (whether the pending
// version has a value is checked and the value dropped at once).
package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/internal/awscall"
)

// Step is a rotation step's name as it travels in the Lambda event. The
// operator keeps its own copy of the wire names (rather than linking the
// rotation engine) so that the operator tool stays small; a test holds them
// equal to the engine's.
type Step string

// The steps the operator sends.
const (
	StepCreate Step = "createSecret"
	StepSet    Step = "setSecret"
	StepTest   Step = "testSecret"
	StepFinish Step = "finishSecret"
	// StepProbe is the suite's read-only step: does AWSCURRENT still
	// authenticate in the target?
	StepProbe Step = "probeSecret"
)

// Steps lists the four steps in the order the service calls them.
var Steps = []Step{StepCreate, StepSet, StepTest, StepFinish}

// The staging labels Secrets Manager's rotation uses.
const (
	StageCurrent  = "AWSCURRENT"
	StagePending  = "AWSPENDING"
	StagePrevious = "AWSPREVIOUS"
)

// Event is the rotation event Secrets Manager sends a rotation function,
// with the field names Lambda delivers.
type Event struct {
	Step               Step   `json:"Step"`
	SecretID           string `json:"SecretId"`
	ClientRequestToken string `json:"ClientRequestToken"`
}

// SecretsAPI is what the operator uses of Secrets Manager.
type SecretsAPI interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	ListSecretVersionIds(ctx context.Context, in *secretsmanager.ListSecretVersionIdsInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
}

// LambdaAPI is what the operator uses of Lambda: one synchronous Invoke.
// *awscall.Lambda is one (with its endpoint set to the runtime emulator's
// URL and function name "function" it reaches a function under the
// emulator); inproc.Lambda answers with a handler in the same process.
type LambdaAPI interface {
	Invoke(ctx context.Context, function string, payload []byte) (*awscall.InvokeResult, error)
}

// Mode is how Unstick deals with a stuck rotation.
type Mode string

// The modes of Unstick.
const (
	ModeResume  Mode = "resume"  // finish the stuck rotation with its own token
	ModeDiscard Mode = "discard" // remove AWSPENDING, only after the probe proves AWSCURRENT
)

// ParseMode parses a mode name; "" is resume.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", ModeResume:
		return ModeResume, nil
	case ModeDiscard:
		return ModeDiscard, nil
	}
	return "", fmt.Errorf("unknown mode %q: want resume or discard", s)
}

// ErrRefused marks a refusal: Unstick changed nothing because acting could
// lose a credential or race a running rotation. The message says why and
// what to do.
var ErrRefused = errors.New("refused")

// StepError is a step the rotation function ran and failed.
type StepError struct {
	Step    Step
	Type    string // the function's errorType
	Message string // the function's errorMessage (redacted by the engine)
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s failed: %s", e.Step, e.Message)
}

// Unsticker unsticks rotations.
type Unsticker struct {
	Secrets SecretsAPI
	Lambda  LambdaAPI
	// Function is the rotation function's name or ARN; "": the secret's
	// RotationLambdaARN.
	Function string
	// OlderThan is how old the pending version must be before Unstick acts:
	// a younger one may belong to a rotation the service is still retrying.
	OlderThan time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// state is the operator's view of a secret's labels. No value is kept.
type state struct {
	arn, name, function string
	current, pending    string
	pendingCreated      time.Time
	pendingEmpty        bool
}

func (s *state) stuck() bool { return s.pending != "" && s.pending != s.current }

// Unstick deals with the stuck rotation of secretID in mode, writing what it
// proves and does to out. dryRun changes nothing: resume says what it would
// invoke, discard runs the read-only probe and shows its result. A refusal
// wraps ErrRefused; a failed step is a *StepError; nothing to do is nil.
func (u *Unsticker) Unstick(ctx context.Context, secretID string, mode Mode, dryRun bool, out io.Writer) error {
	now := time.Now
	if u.Now != nil {
		now = u.Now
	}
	s, err := u.load(ctx, secretID)
	if err != nil {
		return err
	}
	if s.pending != "" && s.pending == s.current {
		return u.close(ctx, s, mode, dryRun, out)
	}
	if !s.stuck() {
		fmt.Fprintf(out, "no stuck rotation: AWSPENDING is on no version other than AWSCURRENT (%s); nothing to do\n", s.current)
		return nil
	}
	what := "has a value"
	if s.pendingEmpty {
		what = "has no value"
	}
	fmt.Fprintf(out, "stuck: AWSPENDING is on version %s (%s, created %s ago); AWSCURRENT is on %s\n", s.pending, what, now().Sub(s.pendingCreated).Round(time.Second), s.current)
	if age := now().Sub(s.pendingCreated); !s.pendingCreated.IsZero() && age < u.OlderThan {
		return fmt.Errorf("%w: the pending version is only %s old (threshold %s): the service may still be retrying this rotation. Wait, or pass --older-than with a smaller value", ErrRefused, age.Round(time.Second), u.OlderThan)
	}
	if s.function == "" {
		return fmt.Errorf("%w: the secret has no rotation function configured and none was given: pass --function", ErrRefused)
	}
	switch mode {
	case ModeDiscard:
		return u.discard(ctx, s, dryRun, out)
	default:
		return u.resume(ctx, s, dryRun, out)
	}
}

// close deals with AWSPENDING left on the AWSCURRENT version: the rotation
// was promoted but never closed (its after-finish action failed on every
// retry, or the service's clean-up never came). Nothing blocks the next
// rotation; resume re-runs finishSecret (which re-runs the idempotent
// after-finish action and promotes nothing) and then removes AWSPENDING as
// the service would. Discard has nothing to discard.
func (u *Unsticker) close(ctx context.Context, s *state, mode Mode, dryRun bool, out io.Writer) error {
	fmt.Fprintf(out, "not stuck, but not closed: AWSPENDING is on the AWSCURRENT version %s (the rotation was promoted; its after-finish action may not have completed)\n", s.current)
	if mode == ModeDiscard {
		fmt.Fprintln(out, "nothing to discard; run unstick in resume mode to re-run the after-finish action and close the rotation")
		return nil
	}
	if s.function == "" {
		return fmt.Errorf("%w: the secret has no rotation function configured and none was given: pass --function", ErrRefused)
	}
	if dryRun {
		fmt.Fprintf(out, "dry run: would invoke %s with finishSecret for version %s (re-runs the after-finish action, promotes nothing), then remove AWSPENDING from it\n", s.function, s.current)
		return nil
	}
	if err := Invoke(ctx, u.Lambda, s.function, Event{Step: StepFinish, SecretID: s.arn, ClientRequestToken: s.current}); err != nil {
		return fmt.Errorf("%w\nnothing else was changed: AWSCURRENT and AWSPENDING stay on %s; fix the cause and run unstick again", err, s.current)
	}
	fmt.Fprintf(out, "  %-13s ok (after-finish action re-run)\n", StepFinish)
	s.pending = s.current
	if err := u.removePending(ctx, s); err != nil {
		return err
	}
	fmt.Fprintf(out, "done: AWSPENDING removed from %s; the rotation is closed\n", s.current)
	return nil
}

func (u *Unsticker) resume(ctx context.Context, s *state, dryRun bool, out io.Writer) error {
	if dryRun {
		fmt.Fprintf(out, "dry run: would invoke %s with createSecret, setSecret, testSecret, finishSecret for version %s, then remove AWSPENDING from it as the service does\n", s.function, s.pending)
		return nil
	}
	fmt.Fprintf(out, "resuming the rotation of version %s through %s\n", s.pending, s.function)
	for _, step := range Steps {
		t0 := time.Now()
		err := Invoke(ctx, u.Lambda, s.function, Event{Step: step, SecretID: s.arn, ClientRequestToken: s.pending})
		if err != nil {
			fmt.Fprintf(out, "  %-13s failed\n", step)
			return fmt.Errorf("%w\nnothing else was changed: AWSPENDING stays on %s and AWSCURRENT on %s; every step is idempotent, so fix the cause and run unstick again (the function's log has the details)", err, s.pending, s.current)
		}
		fmt.Fprintf(out, "  %-13s ok (%s)\n", step, time.Since(t0).Round(time.Millisecond))
	}
	if err := u.removePending(ctx, s); err != nil {
		return err
	}
	fmt.Fprintf(out, "done: version %s is AWSCURRENT and AWSPENDING is removed; the next rotation can start\n", s.pending)
	return nil
}

func (u *Unsticker) discard(ctx context.Context, s *state, dryRun bool, out io.Writer) error {
	err := Invoke(ctx, u.Lambda, s.function, Event{Step: StepProbe, SecretID: s.arn, ClientRequestToken: s.current})
	if err != nil {
		fmt.Fprintf(out, "proof: FAILED — probeSecret on AWSCURRENT version %s through %s: %v\n", s.current, s.function, err)
		return fmt.Errorf("%w: not discarding AWSPENDING on %s: the function could not prove that AWSCURRENT (version %s) still authenticates, so the pending version may hold the live credential (a single-user database's setSecret may already have changed the password). Run unstick in resume mode to finish the rotation instead, or fix what the probe reports and try again", ErrRefused, s.pending, s.current)
	}
	fmt.Fprintf(out, "proof: probeSecret on AWSCURRENT version %s through %s passed: the current credential still authenticates\n", s.current, s.function)
	if dryRun {
		fmt.Fprintf(out, "dry run: would remove AWSPENDING from version %s\n", s.pending)
		return nil
	}
	// The labels must be those the proof was about.
	again, err := u.load(ctx, s.arn)
	if err != nil {
		return err
	}
	if again.current != s.current || again.pending != s.pending {
		return fmt.Errorf("%w: the labels changed while proving (AWSCURRENT %s, AWSPENDING %s now): run unstick again", ErrRefused, again.current, again.pending)
	}
	if err := u.removePending(ctx, s); err != nil {
		return err
	}
	fmt.Fprintf(out, "discarded: removed AWSPENDING from version %s; AWSCURRENT stays on %s; the next rotation can start\n", s.pending, s.current)
	return nil
}

// removePending takes AWSPENDING off the stuck version. Already gone is done
// (a request applied whose answer was lost; the service's own clean-up).
func (u *Unsticker) removePending(ctx context.Context, s *state) error {
	_, err := u.Secrets.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(s.arn), VersionStage: aws.String(StagePending), RemoveFromVersionId: aws.String(s.pending),
	})
	if err == nil {
		return nil
	}
	d, derr := u.Secrets.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.arn)})
	if derr == nil && !slices.Contains(d.VersionIdsToStages[s.pending], StagePending) {
		return nil
	}
	return Explain("UpdateSecretVersionStage (remove AWSPENDING)", err)
}

func (u *Unsticker) load(ctx context.Context, secretID string) (*state, error) {
	d, err := u.Secrets.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretID)})
	if err != nil {
		return nil, Explain("DescribeSecret", err)
	}
	s := &state{arn: aws.ToString(d.ARN), name: aws.ToString(d.Name), function: u.Function}
	if s.function == "" {
		s.function = aws.ToString(d.RotationLambdaARN)
	}
	for id, st := range d.VersionIdsToStages {
		if slices.Contains(st, StageCurrent) {
			s.current = id
		}
		if slices.Contains(st, StagePending) {
			s.pending = id
		}
	}
	if !s.stuck() {
		return s, nil
	}
	created, err := VersionsCreated(ctx, u.Secrets, s.arn)
	if err != nil {
		return nil, err
	}
	s.pendingCreated = created[s.pending]
	ok, err := HasValue(ctx, u.Secrets, s.arn, s.pending, StagePending)
	if err != nil {
		return nil, err
	}
	s.pendingEmpty = !ok
	return s, nil
}
