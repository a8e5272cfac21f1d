package rotation_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// target is the system a test strategy rotates credentials in: it accepts
// the values that were set in it, like a database with alternating users.
type target struct {
	mu       sync.Mutex
	accepted map[string]bool
	sets     int
}

func newTarget() *target { return &target{accepted: map[string]bool{}} }

func (t *target) accept(v string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.accepted[v] = true
	t.sets++
}

func (t *target) ok(v string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.accepted[v]
}

// testStrategy makes a fresh random value, sets it in a target, tests that
// the target accepts it. Hooks let tests observe or break each verb.
type testStrategy struct {
	tgt      *target
	mu       sync.Mutex
	creates  int
	lastTest *rotation.TestRequest
	failTest error
	finished int
	failFin  error
	failFinN int // fail the hook this many times (0 with failFin set: always)
	createFn func(req *rotation.CreateRequest) ([]byte, error)
}

func (s *testStrategy) Kind() string { return "test" }

func (s *testStrategy) Create(ctx context.Context, req *rotation.CreateRequest) (*rotation.CreateResponse, error) {
	s.mu.Lock()
	s.creates++
	s.mu.Unlock()
	if s.createFn != nil {
		v, err := s.createFn(req)
		return &rotation.CreateResponse{Value: v}, err
	}
	var cur struct{ N int }
	_ = json.Unmarshal(req.Current.Value, &cur)
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	v := fmt.Sprintf(`{"n":%d,"password":"pw-%s"}`, cur.N+1, hex.EncodeToString(b))
	return &rotation.CreateResponse{Value: []byte(v)}, nil
}

func (s *testStrategy) Set(ctx context.Context, req *rotation.SetRequest) (*rotation.SetResponse, error) {
	err := rotation.Call(ctx, "target:set", func(context.Context) error {
		s.tgt.accept(string(req.Pending.Value))
		return nil
	})
	return nil, err
}

func (s *testStrategy) Test(ctx context.Context, req *rotation.TestRequest) (*rotation.TestResponse, error) {
	s.mu.Lock()
	s.lastTest = req
	fail := s.failTest
	s.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	return nil, rotation.Call(ctx, "target:login", func(context.Context) error {
		if !s.tgt.ok(string(req.Pending.Value)) {
			return rotation.NewError(rotation.ClassAuthentication, "target:login", "the target refused the pending value", nil)
		}
		return nil
	})
}

func (s *testStrategy) AfterFinish(ctx context.Context, req *rotation.FinishRequest) (*rotation.FinishResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished++
	if s.failFin != nil && s.failFinN > 0 {
		s.failFinN--
		if s.failFinN == 0 {
			err := s.failFin
			s.failFin = nil
			return nil, err
		}
	}
	return nil, s.failFin
}

// env is one test's moto-backed world.
type env struct {
	t        *testing.T
	moto     *testenv.Moto
	sm       *secretsmanager.Client
	strategy *testStrategy
	engine   *rotation.Engine
	logs     *testenv.Buffer
	metrics  *testenv.Buffer
	notes    *recorder
	lambda   string
	api      rotation.SecretsAPI
}

type recorder struct {
	mu    sync.Mutex
	notes []rotation.Notification
}

func (r *recorder) Notify(_ context.Context, n rotation.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, n)
	return nil
}

func (r *recorder) events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, n := range r.notes {
		out = append(out, n.Event)
	}
	return out
}

var lambdaOnce sync.Map // moto endpoint -> lambda ARN

type envOption func(*rotation.Config)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	m := testenv.SharedMoto(t)
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, moto: m, sm: secretsmanager.NewFromConfig(cfg), strategy: &testStrategy{tgt: newTarget()},
		logs: &testenv.Buffer{}, metrics: &testenv.Buffer{}, notes: &recorder{}}
	if arn, ok := lambdaOnce.Load(m.Endpoint); ok {
		e.lambda = arn.(string)
	} else {
		arn, err := m.RegisterNoopLambda(ctx, "engine-test-rotation")
		if err != nil {
			t.Fatal(err)
		}
		lambdaOnce.Store(m.Endpoint, arn)
		e.lambda = arn
	}
	e.api = e.sm
	rc := rotation.Config{Secrets: e.sm, Strategy: e.strategy, Notifier: e.notes,
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Metrics: e.metrics}
	for _, o := range opts {
		o(&rc)
	}
	e.api = rc.Secrets
	e.engine, err = rotation.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// newSecret creates a secret with an initial value accepted by the target.
func (e *env) newSecret(initial string) string {
	e.t.Helper()
	name := fmt.Sprintf("test/%s/%d", e.t.Name(), time.Now().UnixNano())
	out, err := e.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(initial)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.strategy.tgt.accept(initial)
	return aws.ToString(out.ARN)
}

// placeholder starts a rotation as the service does: an empty AWSPENDING
// version under a new token (moto's RotateSecret with a no-op function).
func (e *env) placeholder(arn string) string {
	e.t.Helper()
	out, err := e.sm.RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{
		SecretId: aws.String(arn), RotationLambdaARN: aws.String(e.lambda),
		RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}, RotateImmediately: aws.Bool(true),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.VersionId)
}

func (e *env) driver() *driver.Driver {
	return &driver.Driver{SM: e.sm, Invoke: e.engine, LambdaARN: e.lambda}
}

func (e *env) step(arn, token string, step rotation.Step) error {
	return e.engine.Handle(context.Background(), rotation.Event{Step: step, SecretID: arn, ClientRequestToken: token})
}

func (e *env) stages(arn string) map[string][]string {
	e.t.Helper()
	d, err := e.sm.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		e.t.Fatal(err)
	}
	return d.VersionIdsToStages
}

func (e *env) value(arn, stage string) string {
	e.t.Helper()
	out, err := e.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(stage)})
	if err != nil {
		e.t.Fatalf("read %s: %v", stage, err)
	}
	return aws.ToString(out.SecretString)
}

func (e *env) valueOf(arn, versionID string) (string, error) {
	out, err := e.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(versionID)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}
