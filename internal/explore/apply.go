package explore

// Running actions: what each Action does to the world, kills and
// interleavings included.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/internal/inproc"
	"github.com/rotation-suite/rotation/internal/operator"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// errKilled is the cause of every call of a killed invocation.
var errKilled = errors.New("process killed")

// Apply runs one action and returns a one-line outcome for the trace.
func (w *World) Apply(ctx context.Context, a Action) string {
	w.Clock.Advance(w.ActionTime)
	if a.Secret < 0 || a.Secret >= len(w.secrets) {
		return "no such secret: skipped"
	}
	switch a.Kind {
	case Start:
		_, out := w.start(ctx, a.Secret)
		return out
	case Rotate:
		tok, out := w.start(ctx, a.Secret)
		if tok == "" {
			return out
		}
		return out + "; " + w.service(ctx, w.envs[0], a.Secret, tok)
	case Service:
		tok := w.Token(a.Secret, 0)
		if tok == "" {
			return "no rotation was ever started: nothing to retry"
		}
		return w.service(ctx, w.envs[0], a.Secret, tok)
	case Invoke:
		back := 0
		if a.Stale {
			back = 1
		}
		tok := w.Token(a.Secret, back)
		if tok == "" {
			return "no such token: skipped"
		}
		return w.step(ctx, w.envs[0], a.Secret, a.Step, tok)
	case Kill:
		return w.kill(ctx, a)
	case Concurrent:
		return w.concurrent(ctx, a)
	case Unstick:
		var out string
		var err error
		if w.LegacyUnstick {
			out, err = w.legacyUnstick(ctx, a.Secret, a.Mode)
		} else {
			out, err = w.unstick(ctx, a.Secret, a.Mode)
		}
		if err != nil {
			return "unstick: " + oneLine(err)
		}
		return "unstick: " + out
	case Put:
		return w.put(ctx, a.Secret, a.Mode == ModePending)
	case Probe:
		cur := w.holder(a.Secret, rotation.StageCurrent)
		return w.step(ctx, w.envs[0], a.Secret, rotation.StepProbe, cur)
	case Tick:
		w.Clock.Advance(w.TickTime)
		return "time passes"
	case Rogue:
		return w.rogue(ctx, a.Secret)
	}
	return "unknown action: skipped"
}

func oneLine(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.ReplaceAll(s, "\n", " ")
}

func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	return oneLine(err)
}

func (w *World) start(ctx context.Context, i int) (string, string) {
	tok := w.newToken(i)
	_, err := w.SM.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId: aws.String(w.secrets[i].arn), ClientRequestToken: aws.String(tok),
		RotationLambdaARN: aws.String(LambdaARN), RotateImmediately: aws.Bool(true),
	})
	if err != nil {
		return "", "RotateSecret: " + oneLine(err)
	}
	w.secrets[i].tokens = append(w.secrets[i].tokens, tok)
	return tok, "RotateSecret: ok"
}

// step runs one step event in e.
func (w *World) step(ctx context.Context, e *env, i int, step rotation.Step, token string) string {
	if token == "" {
		return string(step) + ": no token"
	}
	err := e.engine.Handle(ctx, rotation.Event{Step: step, SecretID: w.secrets[i].arn, ClientRequestToken: token})
	return string(step) + ": " + outcome(err)
}

// service runs the four steps in order, stopping at the first failure,
// and removes AWSPENDING after success, as Secrets Manager does.
func (w *World) service(ctx context.Context, e *env, i int, token string) string {
	var out []string
	for _, s := range rotation.Steps {
		err := e.engine.Handle(ctx, rotation.Event{Step: s, SecretID: w.secrets[i].arn, ClientRequestToken: token})
		if err != nil {
			out = append(out, string(s)+": "+oneLine(err))
			return strings.Join(out, "; ")
		}
		out = append(out, string(s)+": ok")
	}
	if err := w.removePending(ctx, i, token); err != nil {
		out = append(out, "service's AWSPENDING removal: "+oneLine(err))
	}
	return strings.Join(out, "; ")
}

// removePending is the service ending a successful rotation.
func (w *World) removePending(ctx context.Context, i int, token string) error {
	st, err := w.SM.Stages(w.secrets[i].arn)
	if err != nil {
		return err
	}
	if !slices.Contains(st[token], rotation.StagePending) {
		return nil
	}
	_, err = w.SM.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(w.secrets[i].arn), VersionStage: aws.String(rotation.StagePending), RemoveFromVersionId: aws.String(token),
	})
	return err
}

func (w *World) kill(ctx context.Context, a Action) string {
	n, fired, dead := 0, false, false
	var at string
	hook := rotation.FaultHook(func(op string, ph rotation.Phase) error {
		if dead {
			return errKilled
		}
		if ph == rotation.Before {
			n++
		}
		if !fired && n == a.N && ph == a.Phase {
			fired, dead, at = true, true, op
			return errKilled
		}
		return nil
	})
	kctx := rotation.WithFaultHook(ctx, hook)
	var out string
	if a.Fresh {
		tok, o := w.start(ctx, a.Secret)
		out = o
		if tok != "" {
			out += "; " + w.service(kctx, w.envs[0], a.Secret, tok)
		}
	} else {
		tok := w.Token(a.Secret, 0)
		if tok == "" {
			return "no rotation was ever started: nothing to retry"
		}
		out = w.service(kctx, w.envs[0], a.Secret, tok)
	}
	if !fired {
		return out + " (the run ended before call " + fmt.Sprint(a.N) + ")"
	}
	if err := w.resetEnv(0); err != nil {
		return out + "; new environment: " + oneLine(err)
	}
	return fmt.Sprintf("%s (killed in %s)", out, at)
}

func (w *World) runSide(ctx context.Context, e *env, s Side) string {
	if s.Secret < 0 || s.Secret >= len(w.secrets) {
		return "no such secret"
	}
	switch {
	case s.Step != "":
		return w.step(ctx, e, s.Secret, s.Step, w.Token(s.Secret, 0))
	case s.Fresh:
		tok, out := w.start(ctx, s.Secret)
		if tok == "" {
			return out
		}
		return out + "; " + w.service(ctx, e, s.Secret, tok)
	default:
		tok := w.Token(s.Secret, 0)
		if tok == "" {
			return "nothing to retry"
		}
		return w.service(ctx, e, s.Secret, tok)
	}
}

// concurrent interleaves two invocations exactly: A (second environment)
// runs until call N, B (first environment) runs to its end, then A goes on.
// One goroutine runs at a time, handing over through channels.
func (w *World) concurrent(ctx context.Context, a Action) string {
	paused := make(chan struct{})
	resume := make(chan struct{})
	done := make(chan string, 1)
	n, fired := 0, false
	hook := rotation.FaultHook(func(op string, ph rotation.Phase) error {
		if ph == rotation.Before {
			n++
		}
		if !fired && n == a.N && ph == a.Phase {
			fired = true
			paused <- struct{}{}
			<-resume
		}
		return nil
	})
	go func() { done <- w.runSide(rotation.WithFaultHook(ctx, hook), w.envs[1], a.A) }()
	select {
	case <-paused:
		outB := w.runSide(ctx, w.envs[0], a.B)
		close(resume)
		outA := <-done
		return "B: " + outB + " | A: " + outA
	case outA := <-done:
		outB := w.runSide(ctx, w.envs[0], a.B)
		return "A (ended before call " + fmt.Sprint(a.N) + "): " + outA + " | B: " + outB
	}
}

func (w *World) put(ctx context.Context, i int, pending bool) string {
	_, cur := w.Current(ctx, i)
	if cur == "" {
		return "operator PutSecretValue: AWSCURRENT has no value to copy"
	}
	if pid, _ := w.Pending(ctx, i); pending && pid != "" {
		// Staging a value by hand moves AWSPENDING off the open rotation's
		// version, which may hold the live credential (single user, after
		// setSecret): nothing the product does can prevent that, and
		// `rotate unstick` (resume) heals it. The operator stages only when
		// no rotation is open.
		return "operator PutSecretValue (AWSPENDING): not while a rotation is open"
	}
	tok := w.newToken(i)
	stage := rotation.StageCurrent
	if pending {
		// Staged by hand: no rotation tested it, so it is not exempt.
		stage = rotation.StagePending
	} else {
		w.exempt[tok] = true
	}
	_, err := w.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(w.secrets[i].arn), ClientRequestToken: aws.String(tok),
		SecretString: aws.String(cur), VersionStages: []string{stage},
	})
	return "operator PutSecretValue (" + stage + "): " + outcome(err)
}

// unstick runs the operator tool's Unstick, invoking the function in the
// first execution environment as Lambda would.
func (w *World) unstick(ctx context.Context, i int, mode string) (string, error) {
	// The rotation function behind the Lambda Invoke API is the first
	// execution environment's engine, answering errors as the runtime does.
	lam := inproc.Lambda(w.envs[0].engine)
	u := &operator.Unsticker{Secrets: w.SM, Lambda: lam, OlderThan: w.UnstickAge, Now: w.Clock.Now}
	var out strings.Builder
	err := u.Unstick(ctx, w.secrets[i].arn, operator.Mode(mode), false, &out)
	return strings.TrimSpace(strings.ReplaceAll(out.String(), "\n", "; ")), err
}

// legacyUnstick models `rotate unstick` before it had modes: it removes a
// stuck AWSPENDING that is empty or older than UnstickAge, whatever the
// target holds. Resume is the service's retry with the stuck token.
func (w *World) legacyUnstick(ctx context.Context, i int, mode string) (string, error) {
	arn := w.secrets[i].arn
	pend := w.holder(i, rotation.StagePending)
	if pend == "" || pend == w.holder(i, rotation.StageCurrent) {
		return "no stuck AWSPENDING: nothing to do", nil
	}
	if mode == ModeResume {
		return w.service(ctx, w.envs[0], i, pend), nil
	}
	var created time.Time
	vs, _ := w.SM.Versions(arn)
	empty := false
	for _, v := range vs {
		if v.ID == pend {
			created, empty = v.Created, !v.HasValue
		}
	}
	if !empty && w.Clock.Now().Sub(created) <= w.UnstickAge {
		return "", fmt.Errorf("refused: the pending version is only %s old", w.Clock.Now().Sub(created))
	}
	_, err := w.SM.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(arn), VersionStage: aws.String(rotation.StagePending), RemoveFromVersionId: aws.String(pend),
	})
	if err != nil {
		return "", err
	}
	return "removed AWSPENDING from " + pend, nil
}

// rogue is the old finishSecret: AWSCURRENT moves to the newest token.
func (w *World) rogue(ctx context.Context, i int) string {
	tok := w.Token(i, 0)
	cur := w.holder(i, rotation.StageCurrent)
	if tok == "" || tok == cur {
		return "rogue finish: nothing to promote"
	}
	_, err := w.SM.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(w.secrets[i].arn), VersionStage: aws.String(rotation.StageCurrent),
		MoveToVersionId: aws.String(tok), RemoveFromVersionId: aws.String(cur),
	})
	return "rogue finish: " + outcome(err)
}
