package explore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

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
