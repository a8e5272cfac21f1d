package operator_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotation-suite/rotation/internal/operator"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// singleUser is a target like a single-user database: one password at a
// time, changed by logging in with the old one. down makes it unreachable.
type singleUser struct {
	mu       sync.Mutex
	password string
	down     bool
}

func (s *singleUser) login(pw string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return rotation.NewError(rotation.ClassNetwork, "target:connect", "the target is unreachable", nil)
	}
	if pw != s.password {
		return rotation.NewError(rotation.ClassAuthentication, "target:login", "password refused", nil)
	}
	return nil
}

func (s *singleUser) setDown(d bool) { s.mu.Lock(); s.down = d; s.mu.Unlock() }

type singleStrategy struct{ tgt *singleUser }

func (singleStrategy) Kind() string { return "single" }

func (singleStrategy) Create(_ context.Context, _ *rotation.CreateRequest) (*rotation.CreateResponse, error) {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return &rotation.CreateResponse{Value: []byte(hex.EncodeToString(b))}, nil
}

func (s singleStrategy) Set(_ context.Context, req *rotation.SetRequest) (*rotation.SetResponse, error) {
	if s.tgt.login(string(req.Pending.Value)) == nil {
		return nil, nil // already set
	}
	if err := s.tgt.login(string(req.Current.Value)); err != nil {
		return nil, err
	}
	s.tgt.mu.Lock()
	s.tgt.password = string(req.Pending.Value)
	s.tgt.mu.Unlock()
	return nil, nil
}

func (s singleStrategy) Test(_ context.Context, req *rotation.TestRequest) (*rotation.TestResponse, error) {
	return nil, s.tgt.login(string(req.Pending.Value))
}

type world struct {
	t      *testing.T
	sm     *secretsmanager.Client
	lambda string
	tgt    *singleUser
	eng    *rotation.Engine
	logs   *testenv.Buffer
}

var (
	noopOnce sync.Once
	noopARN  string
	noopErr  error
)

func newWorld(t *testing.T) *world {
	t.Helper()
	m := testenv.SharedMoto(t)
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	noopOnce.Do(func() { noopARN, noopErr = m.RegisterNoopLambda(ctx, "operator-test-rotation") })
	if noopErr != nil {
		t.Fatal(noopErr)
	}
	w := &world{t: t, sm: secretsmanager.NewFromConfig(cfg), lambda: noopARN, tgt: &singleUser{}, logs: &testenv.Buffer{}}
	w.eng, err = rotation.New(rotation.Config{Secrets: w.sm, Strategy: singleStrategy{w.tgt}, Logger: slog.New(slog.NewJSONHandler(w.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) secret() string {
	w.t.Helper()
	w.tgt.password = "initial-" + fmt.Sprint(time.Now().UnixNano())
	out, err := w.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(fmt.Sprintf("operator/%s/%d", w.t.Name(), time.Now().UnixNano())), SecretString: aws.String(w.tgt.password)})
	if err != nil {
		w.t.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

// stuck starts a rotation and runs the given steps, as a rotation the
// service gave up on leaves the secret.
func (w *world) stuck(arn string, steps ...rotation.Step) string {
	w.t.Helper()
	out, err := w.sm.RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String(w.lambda),
		RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}, RotateImmediately: aws.Bool(true)})
	if err != nil {
		w.t.Fatal(err)
	}
	token := aws.ToString(out.VersionId)
	for _, s := range steps {
		if err := w.eng.Handle(context.Background(), rotation.Event{Step: s, SecretID: arn, ClientRequestToken: token}); err != nil {
			w.t.Fatalf("%s: %v", s, err)
		}
	}
	return token
}

func (w *world) stages(arn string) map[string][]string {
	w.t.Helper()
	d, err := w.sm.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		w.t.Fatal(err)
	}
	return d.VersionIdsToStages
}

func (w *world) current(arn string) string {
	w.t.Helper()
	out, err := w.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(rotation.StageCurrent)})
	if err != nil {
		w.t.Fatal(err)
	}
	return aws.ToString(out.SecretString)
}

func (w *world) unsticker() *operator.Unsticker {
	return &operator.Unsticker{Secrets: w.sm, Lambda: operator.InProcess(w.eng), Function: "function"}
}

func sameStages(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		x, y := slices.Clone(v), slices.Clone(b[k])
		slices.Sort(x)
		slices.Sort(y)
		if !slices.Equal(x, y) {
			return false
		}
	}
	return true
}

// The defect: single user, setSecret changed the password, testSecret failed
// (target down), and unstick removed AWSPENDING: the live password belonged
// to no label. Resume finishes the rotation instead.
func TestUnstickResumeFinishesAStuckSingleUserRotationSoAWSCURRENTAuthenticates(t *testing.T) {
	w := newWorld(t)
	arn := w.secret()
	token := w.stuck(arn, rotation.StepCreate, rotation.StepSet)
	if err := w.tgt.login(w.current(arn)); err == nil {
		t.Fatal("setup: AWSCURRENT should be refused once setSecret changed the password")
	}
	var out bytes.Buffer
	if err := w.unsticker().Unstick(context.Background(), arn, operator.ModeResume, false, &out); err != nil {
		t.Fatalf("resume: %v\n%s", err, out.String())
	}
	st := w.stages(arn)
	if !slices.Equal(st[token], []string{rotation.StageCurrent, rotation.StageTested}) && !slices.Equal(st[token], []string{rotation.StageTested, rotation.StageCurrent}) {
		t.Fatalf("want the stuck version AWSCURRENT without AWSPENDING: %v", st)
	}
	if err := w.tgt.login(w.current(arn)); err != nil {
		t.Fatalf("AWSCURRENT does not authenticate after resume: %v", err)
	}
	if !strings.Contains(out.String(), "done:") {
		t.Fatalf("output:\n%s", out.String())
	}
}

// Discard in the same state must refuse: AWSCURRENT no longer authenticates,
// the pending version holds the live password.
func TestUnstickDiscardRefusesWithoutProofThatAWSCURRENTAuthenticatesAndChangesNothing(t *testing.T) {
	w := newWorld(t)
	arn := w.secret()
	w.stuck(arn, rotation.StepCreate, rotation.StepSet)
	before := w.stages(arn)
	for _, dry := range []bool{true, false} {
		var out bytes.Buffer
		err := w.unsticker().Unstick(context.Background(), arn, operator.ModeDiscard, dry, &out)
		if !errors.Is(err, operator.ErrRefused) {
			t.Fatalf("dry=%v: want a refusal, got %v\n%s", dry, err, out.String())
		}
		if !strings.Contains(out.String(), "proof: FAILED") || !strings.Contains(err.Error(), "resume mode") {
			t.Fatalf("dry=%v: the refusal does not show the failed proof and what to do: %v\n%s", dry, err, out.String())
		}
		if !sameStages(before, w.stages(arn)) {
			t.Fatalf("dry=%v: a refused discard changed labels", dry)
		}
	}
}

func TestUnstickDiscardDryRunShowsTheProofThenDiscardKeepsAWSCURRENT(t *testing.T) {
	w := newWorld(t)
	arn := w.secret()
	token := w.stuck(arn, rotation.StepCreate) // nothing made real yet
	before := w.stages(arn)
	var out bytes.Buffer
	if err := w.unsticker().Unstick(context.Background(), arn, operator.ModeDiscard, true, &out); err != nil {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "proof: probeSecret on AWSCURRENT") || !strings.Contains(out.String(), "dry run: would remove AWSPENDING from version "+token) {
		t.Fatalf("dry-run output:\n%s", out.String())
	}
	if !sameStages(before, w.stages(arn)) {
		t.Fatal("--dry-run changed labels")
	}
	out.Reset()
	if err := w.unsticker().Unstick(context.Background(), arn, operator.ModeDiscard, false, &out); err != nil {
		t.Fatalf("discard: %v\n%s", err, out.String())
	}
	if slices.Contains(w.stages(arn)[token], rotation.StagePending) {
		t.Fatal("AWSPENDING still on the discarded version")
	}
	if err := w.tgt.login(w.current(arn)); err != nil {
		t.Fatalf("AWSCURRENT does not authenticate after discard: %v", err)
	}
}

func TestUnstickResumeStopsAtAFailingStepAndSaysWhatToDo(t *testing.T) {
	w := newWorld(t)
	arn := w.secret()
	w.stuck(arn, rotation.StepCreate, rotation.StepSet)
	w.tgt.setDown(true)
	before := w.stages(arn)
	var out bytes.Buffer
	err := w.unsticker().Unstick(context.Background(), arn, operator.ModeResume, false, &out)
	var se *operator.StepError
	if !errors.As(err, &se) || se.Step != rotation.StepSet || errors.Is(err, operator.ErrRefused) {
		t.Fatalf("want the failed step, got %v\n%s", err, out.String())
	}
	if !strings.Contains(err.Error(), "run unstick again") || !sameStages(before, w.stages(arn)) {
		t.Fatalf("a failed resume must leave the labels and say what to do: %v", err)
	}
	w.tgt.setDown(false)
	if err := w.unsticker().Unstick(context.Background(), arn, operator.ModeResume, false, &out); err != nil {
		t.Fatalf("resume once the target is back: %v", err)
	}
	if err := w.tgt.login(w.current(arn)); err != nil {
		t.Fatal(err)
	}
}

func TestUnstickRefusesAPendingVersionYoungerThanTheThresholdAndIgnoresASecretThatIsNotStuck(t *testing.T) {
	w := newWorld(t)
	arn := w.secret()
	var out bytes.Buffer
	u := w.unsticker()
	u.OlderThan = time.Hour
	if err := u.Unstick(context.Background(), arn, operator.ModeResume, false, &out); err != nil || !strings.Contains(out.String(), "nothing to do") {
		t.Fatalf("not stuck: %v %s", err, out.String())
	}
	w.stuck(arn, rotation.StepCreate)
	before := w.stages(arn)
	for _, m := range []operator.Mode{operator.ModeResume, operator.ModeDiscard} {
		err := u.Unstick(context.Background(), arn, m, false, &out)
		if !errors.Is(err, operator.ErrRefused) || !strings.Contains(err.Error(), "may still be retrying") {
			t.Fatalf("%s: want a refusal for a young pending version: %v", m, err)
		}
	}
	if !sameStages(before, w.stages(arn)) {
		t.Fatal("a refusal changed labels")
	}
	u.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := u.Unstick(context.Background(), arn, operator.ModeResume, false, &out); err != nil {
		t.Fatalf("past the threshold: %v", err)
	}
}

// hookStrategy is singleStrategy with an after-finish action that fails
// while broken is set.
type hookStrategy struct {
	singleStrategy
	broken atomic.Bool
	runs   atomic.Int32
}

func (h *hookStrategy) AfterFinish(context.Context, *rotation.FinishRequest) (*rotation.FinishResponse, error) {
	h.runs.Add(1)
	if h.broken.Load() {
		return nil, rotation.NewError(rotation.ClassDependency, "hook", "the after-finish action is down", nil)
	}
	return nil, nil
}

// A promoted rotation whose after-finish action failed on every retry keeps
// AWSPENDING on AWSCURRENT: resume re-runs finishSecret (the action, no
// second promotion) and closes it; discard has nothing to discard.
func TestUnstickResumeClosesAPromotedRotationWhoseAfterFinishActionFailed(t *testing.T) {
	w := newWorld(t)
	hs := &hookStrategy{singleStrategy: singleStrategy{w.tgt}}
	eng, err := rotation.New(rotation.Config{Secrets: w.sm, Strategy: hs, Logger: slog.New(slog.NewJSONHandler(w.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w.eng = eng
	arn := w.secret()
	hs.broken.Store(true)
	token := w.stuck(arn, rotation.StepCreate, rotation.StepSet, rotation.StepTest)
	if err := w.eng.Handle(context.Background(), rotation.Event{Step: rotation.StepFinish, SecretID: arn, ClientRequestToken: token}); err == nil {
		t.Fatal("setup: want the after-finish action to fail")
	}
	before := w.stages(arn)
	var out bytes.Buffer
	if err := w.unsticker().Unstick(context.Background(), arn, operator.ModeDiscard, false, &out); err != nil || !strings.Contains(out.String(), "nothing to discard") || !sameStages(before, w.stages(arn)) {
		t.Fatalf("discard: %v\n%s", err, out.String())
	}
	hs.broken.Store(false)
	runs := hs.runs.Load()
	if err := w.unsticker().Unstick(context.Background(), arn, operator.ModeResume, false, &out); err != nil {
		t.Fatalf("resume: %v\n%s", err, out.String())
	}
	if hs.runs.Load() != runs+1 {
		t.Fatal("resume did not re-run the after-finish action")
	}
	if st := w.stages(arn)[token]; slices.Contains(st, rotation.StagePending) || !slices.Contains(st, rotation.StageCurrent) {
		t.Fatalf("want the promoted version closed: %v", st)
	}
	if err := w.tgt.login(w.current(arn)); err != nil {
		t.Fatal(err)
	}
}
