package explore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/internal/inproc"
	"github.com/rotation-suite/rotation/internal/operator"
	"github.com/rotation-suite/rotation/internal/smfake"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Subject is one strategy under exploration with its in-memory target. A
// Subject is used for one sequence only (the explorer asks its factory for a
// fresh one per sequence), so it may keep the state its invariants need.
type Subject interface {
	// Setup creates the rotated secrets (with a working AWSCURRENT each),
	// the other secrets the strategy reads, and the target's state, and
	// returns the rotated secrets' ARNs.
	Setup(ctx context.Context, w *World) ([]string, error)
	// Strategy returns the strategy of a fresh execution environment (a
	// cold start: nothing cached).
	Strategy(w *World) (rotation.Strategy, error)
	// Accepts returns nil if the target accepts value as the credential of
	// rotated secret i now.
	Accepts(ctx context.Context, w *World, i int, value []byte) error
	// Check proves the subject's own invariants (tokens, keys) after every
	// action; Observe-style state it needs lives in the Subject.
	Check(ctx context.Context, w *World) error
}

// Clock is the explorer's clock: it moves only when told.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Epoch is where every sequence's clock starts.
var Epoch = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// LambdaARN is the rotation function the fake records for every secret.
const LambdaARN = "arn:aws:lambda:us-east-1:123456789012:function:explore"

// env is one execution environment: an engine with its caches and a
// strategy instance.
type env struct {
	engine   *rotation.Engine
	strategy rotation.Strategy
}

// rotated is one rotated secret.
type rotated struct {
	arn    string
	tokens []string // every token RotateSecret accepted, oldest first
}

// World is the state of one sequence: the fake service, the clock, the
// execution environments and what the invariants remember.
type World struct {
	SM    *smfake.Fake
	Clock *Clock
	// ActionTime is how far the clock moves before each action (the time
	// between two events); TickTime is what a Tick adds on top.
	ActionTime, TickTime time.Duration
	// UnstickAge is the --older-than of `rotate unstick`.
	UnstickAge time.Duration
	// LegacyUnstick replaces the operator tool (internal/operator) with a
	// model of its first version, which removed a stuck AWSPENDING on age
	// alone (see legacyUnstick): the harness's proof that it catches the
	// stranding that caused.
	LegacyUnstick bool

	subject Subject
	secrets []*rotated
	envs    [2]*env
	seq     int

	mu        sync.Mutex
	tested    map[string]bool // version ids whose strategy Test passed (not a config test)
	succeeded map[string]int  // version id → rotation.succeeded notifications
	promoted  map[string]int  // version id → label moves of AWSCURRENT onto it the engines made
	exempt    map[string]bool // versions not made by a rotation (initial, operator)
	values    map[string]string
}

// NewWorld sets up a world for subject.
func NewWorld(ctx context.Context, subject Subject) (*World, error) {
	w := &World{
		SM:         nil,
		Clock:      &Clock{t: Epoch},
		ActionTime: 40 * time.Second,
		TickTime:   10 * time.Minute,
		UnstickAge: time.Minute,
		subject:    subject,
		tested:     map[string]bool{},
		succeeded:  map[string]int{},
		promoted:   map[string]int{},
		exempt:     map[string]bool{},
		values:     map[string]string{},
	}
	w.SM = smfake.New(smfake.WithClock(w.Clock.Now))
	arns, err := subject.Setup(ctx, w)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	for _, arn := range arns {
		w.secrets = append(w.secrets, &rotated{arn: arn})
		vs, err := w.SM.Versions(arn)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			w.exempt[v.ID] = true
		}
	}
	for i := range w.envs {
		if err := w.resetEnv(i); err != nil {
			return nil, err
		}
	}
	if err := w.Check(ctx); err != nil {
		return nil, fmt.Errorf("the initial state breaks an invariant: %w", err)
	}
	return w, nil
}

// CreateSecret creates a secret with value as its AWSCURRENT version under a
// deterministic version id, and returns its ARN (for Subject.Setup).
func (w *World) CreateSecret(ctx context.Context, name string, value []byte) (string, error) {
	w.seq++
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name), ClientRequestToken: aws.String(fmt.Sprintf("ffffffff-0000-4000-8000-%012d", w.seq))}
	if value != nil {
		in.SecretString = aws.String(string(value))
	}
	out, err := w.SM.CreateSecret(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ARN), nil
}

// Secrets returns the rotated secrets' ARNs.
func (w *World) Secrets() []string {
	out := make([]string, len(w.secrets))
	for i, s := range w.secrets {
		out[i] = s.arn
	}
	return out
}

// ARN returns rotated secret i's ARN.
func (w *World) ARN(i int) string { return w.secrets[i].arn }

// Engine returns the engine of the first execution environment (the one the
// service's runs use), for operator tools that invoke the function.
func (w *World) Engine() *rotation.Engine { return w.envs[0].engine }

func (w *World) resetEnv(i int) error {
	st, err := w.subject.Strategy(w)
	if err != nil {
		return err
	}
	rec := &recorder{Strategy: st, w: w}
	var wrapped rotation.Strategy = rec
	if fin, ok := st.(rotation.Finisher); ok {
		wrapped = &finishRecorder{recorder: rec, fin: fin}
	}
	eng, err := rotation.New(rotation.Config{
		Secrets:      promotions{w.SM, w},
		Strategy:     wrapped,
		Notifier:     rotation.NotifierFunc(w.notify),
		Logger:       slog.New(slog.DiscardHandler),
		Now:          w.Clock.Now,
		FunctionName: "explore",
	})
	if err != nil {
		return err
	}
	w.envs[i] = &env{engine: eng, strategy: st}
	return nil
}

func (w *World) notify(_ context.Context, n rotation.Notification) error {
	if n.Event == rotation.EventSucceeded {
		w.mu.Lock()
		w.succeeded[n.VersionID]++
		w.mu.Unlock()
	}
	return nil
}

// promotions is the engines' Secrets Manager: it counts the AWSCURRENT
// moves they make, per version.
type promotions struct {
	*smfake.Fake
	w *World
}

func (p promotions) UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	out, err := p.Fake.UpdateSecretVersionStage(ctx, in, opts...)
	if err == nil && aws.ToString(in.VersionStage) == rotation.StageCurrent && in.MoveToVersionId != nil {
		p.w.mu.Lock()
		p.w.promoted[*in.MoveToVersionId]++
		p.w.mu.Unlock()
	}
	return out, err
}

// recorder remembers which pending versions passed the strategy's test.
type recorder struct {
	rotation.Strategy
	w *World
}

func (r *recorder) Test(ctx context.Context, req *rotation.TestRequest) (*rotation.TestResponse, error) {
	resp, err := r.Strategy.Test(ctx, req)
	if err == nil && !req.ConfigTest && req.Pending != nil {
		r.w.mu.Lock()
		r.w.tested[req.Pending.ID] = true
		r.w.mu.Unlock()
	}
	return resp, err
}

type finishRecorder struct {
	*recorder
	fin rotation.Finisher
}

func (f *finishRecorder) AfterFinish(ctx context.Context, req *rotation.FinishRequest) (*rotation.FinishResponse, error) {
	return f.fin.AfterFinish(ctx, req)
}

// newToken returns the next ClientRequestToken (deterministic, UUID-shaped).
func (w *World) newToken(i int) string {
	w.seq++
	return fmt.Sprintf("%08d-0000-4000-8000-%012d", i, w.seq)
}

// Token returns rotated secret i's newest token (back = 0) or an older one.
func (w *World) Token(i, back int) string {
	ts := w.secrets[i].tokens
	if len(ts) <= back {
		return ""
	}
	return ts[len(ts)-1-back]
}

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

// holder returns the version id carrying label on secret i, or "".
func (w *World) holder(i int, label string) string {
	st, err := w.SM.Stages(w.secrets[i].arn)
	if err != nil {
		return ""
	}
	for id, labels := range st {
		if slices.Contains(labels, label) {
			return id
		}
	}
	return ""
}

// Value reads version id of secret arn ("" with no value).
func (w *World) Value(ctx context.Context, arn, id string) string {
	out, err := w.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(id)})
	if err != nil {
		return ""
	}
	return aws.ToString(out.SecretString)
}

// Current returns the AWSCURRENT version id and value of rotated secret i.
func (w *World) Current(ctx context.Context, i int) (string, string) {
	id := w.holder(i, rotation.StageCurrent)
	if id == "" {
		return "", ""
	}
	return id, w.Value(ctx, w.secrets[i].arn, id)
}

// Previous returns the value of rotated secret i's AWSPREVIOUS version, or "".
func (w *World) Previous(ctx context.Context, i int) string {
	id := w.holder(i, rotation.StagePrevious)
	if id == "" {
		return ""
	}
	return w.Value(ctx, w.secrets[i].arn, id)
}

// CurrentOf returns the AWSCURRENT version id and value of any secret.
func (w *World) CurrentOf(ctx context.Context, arn string) (string, string) {
	out, err := w.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(rotation.StageCurrent)})
	if err != nil {
		return "", ""
	}
	return aws.ToString(out.VersionId), aws.ToString(out.SecretString)
}

// Pending returns the id and value of rotated secret i's AWSPENDING version
// when a rotation is open (AWSPENDING on a version that is not AWSCURRENT).
func (w *World) Pending(ctx context.Context, i int) (string, string) {
	id := w.holder(i, rotation.StagePending)
	if id == "" || id == w.holder(i, rotation.StageCurrent) {
		return "", ""
	}
	return id, w.Value(ctx, w.secrets[i].arn, id)
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

// Violation is a broken invariant.
type Violation struct {
	Invariant string // short name: "current-works", "immutable", …
	Detail    string
}

func (v *Violation) Error() string { return v.Invariant + ": " + v.Detail }

// InvariantOf returns the name of the invariant err breaks, or "".
func InvariantOf(err error) string {
	var v *Violation
	if errors.As(err, &v) {
		return v.Invariant
	}
	return ""
}

// Violationf builds a *Violation.
func Violationf(invariant, format string, args ...any) error {
	return &Violation{Invariant: invariant, Detail: fmt.Sprintf(format, args...)}
}

// Check proves every invariant.
func (w *World) Check(ctx context.Context) error {
	for i, s := range w.secrets {
		if err := w.checkSecret(ctx, i, s); err != nil {
			return err
		}
	}
	w.mu.Lock()
	for id, n := range w.succeeded {
		if n > w.promoted[id] {
			w.mu.Unlock()
			return Violationf("one-success-per-promotion", "version %s: %d rotation.succeeded notifications for %d promotions", id, n, w.promoted[id])
		}
	}
	w.mu.Unlock()
	return w.subject.Check(ctx, w)
}

func (w *World) checkSecret(ctx context.Context, i int, s *rotated) error {
	st, err := w.SM.Stages(s.arn)
	if err != nil {
		return err
	}
	var currents, pendings []string
	for id, labels := range st {
		if slices.Contains(labels, rotation.StageCurrent) {
			currents = append(currents, id)
		}
		if slices.Contains(labels, rotation.StagePending) {
			pendings = append(pendings, id)
		}
	}
	sort.Strings(currents)
	if len(currents) != 1 {
		return Violationf("one-current", "secret #%d: AWSCURRENT on %v", i, currents)
	}
	if len(pendings) > 1 {
		return Violationf("one-pending", "secret #%d: AWSPENDING on %v", i, pendings)
	}
	vs, err := w.SM.Versions(s.arn)
	if err != nil {
		return err
	}
	for _, v := range vs {
		if !v.HasValue {
			continue
		}
		val := w.Value(ctx, s.arn, v.ID)
		if old, ok := w.values[v.ID]; ok && old != val {
			return Violationf("immutable", "secret #%d: version %s had a value and it changed", i, v.ID)
		}
		w.values[v.ID] = val
	}
	cur := currents[0]
	curVal := w.values[cur]
	if curVal == "" {
		return Violationf("current-has-value", "secret #%d: AWSCURRENT is on version %s, which has no value", i, cur)
	}
	w.mu.Lock()
	tested := w.tested[cur] || w.exempt[cur]
	w.mu.Unlock()
	if !tested {
		return Violationf("promoted-tested", "secret #%d: AWSCURRENT is on version %s, which never passed testSecret", i, cur)
	}
	cerr := w.subject.Accepts(ctx, w, i, []byte(curVal))
	if cerr == nil {
		return nil
	}
	if pid, pval := w.Pending(ctx, i); pid != "" && pval != "" {
		perr := w.subject.Accepts(ctx, w, i, []byte(pval))
		if perr == nil {
			return nil
		}
		return Violationf("current-works", "secret #%d: the target accepts neither AWSCURRENT %s (%v) nor the open AWSPENDING %s (%v)", i, cur, cerr, pid, perr)
	}
	return Violationf("current-works", "secret #%d: the target refuses AWSCURRENT %s: %v", i, cur, cerr)
}
