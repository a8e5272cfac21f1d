package jwtstrategy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotation-suite/rotation/functions/jwtrotate/jwtstrategy"
	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/envelope"
	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// clock is the controlled clock every engine and consumer in a test shares.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// stack is the local AWS stack of one test: moto's Secrets Manager and KMS,
// a KMS key made for the test, and the envelope over it.
type stack struct {
	moto   *testenv.Moto
	sm     *secretsmanager.Client
	kms    *kms.Client
	keyARN string
	env    *envelope.Envelope
	lambda string // ARN of a no-op function registered for RotateSecret
}

var (
	lambdaOnce sync.Once
	lambdaARN  string
	lambdaErr  error
	seq        atomic.Int64
)

func newStack(t testing.TB) *stack {
	t.Helper()
	m := testenv.SharedMoto(t)
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{moto: m, sm: secretsmanager.NewFromConfig(cfg), kms: kms.NewFromConfig(cfg)}
	key, err := s.kms.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("jwtrotate test " + t.Name())})
	if err != nil {
		t.Fatalf("create KMS key: %v", err)
	}
	s.keyARN = aws.ToString(key.KeyMetadata.Arn)
	s.env = newEnvelope(t, s.kms, s.keyARN)
	lambdaOnce.Do(func() { lambdaARN, lambdaErr = m.RegisterNoopLambda(ctx, "jwtrotate-test") })
	if lambdaErr != nil {
		t.Fatalf("register the no-op rotation function in moto: %v", lambdaErr)
	}
	s.lambda = lambdaARN
	return s
}

func newEnvelope(t testing.TB, c *kms.Client, keyARN string) *envelope.Envelope {
	t.Helper()
	kp, err := envelope.NewKMSProvider(context.Background(), envelope.KMSConfig{Client: c, KeyID: keyARN})
	if err != nil {
		t.Fatal(err)
	}
	env, err := envelope.New(envelope.Config{Provider: kp})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// testConfig is a valid configuration over the stack's KMS key.
func (s *stack) config() jwtstrategy.Config {
	return jwtstrategy.Config{
		Algorithm: jwks.ES256, RSABits: 2048,
		MaxTokenLifetime: time.Hour, ClockSkew: 2 * time.Minute, SignerCache: 15 * time.Minute,
		MinPublish: 24 * time.Hour, KMSKeyARN: s.keyARN,
	}
}

// newSecret creates a secret with value and tags and returns its ARN.
func (s *stack) newSecret(t testing.TB, value string, tags map[string]string) string {
	t.Helper()
	name := fmt.Sprintf("jwt/%s-%d", strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()), seq.Add(1))
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}
	for k, v := range tags {
		in.Tags = append(in.Tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	out, err := s.sm.CreateSecret(context.Background(), in)
	if err != nil {
		t.Fatalf("create secret: %v", err)
	}
	return aws.ToString(out.ARN)
}

// rig is an engine running the strategy in-process, and the driver playing
// Secrets Manager around it.
type rig struct {
	*stack
	cfg      jwtstrategy.Config
	clock    *clock
	engine   *rotation.Engine
	driver   *driver.Driver
	mu       sync.Mutex
	notified []rotation.Notification
	logs     testenv.Buffer
}

func (s *stack) rig(t testing.TB, cfg jwtstrategy.Config, c *clock) *rig {
	t.Helper()
	r := &rig{stack: s, cfg: cfg, clock: c}
	eng, err := rotation.New(rotation.Config{
		Secrets:  s.sm,
		Strategy: s.strategy(t, cfg),
		Notifier: rotation.NotifierFunc(func(_ context.Context, n rotation.Notification) error {
			r.mu.Lock()
			r.notified = append(r.notified, n)
			r.mu.Unlock()
			return nil
		}),
		Logger:  slog.New(slog.NewJSONHandler(&r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: io.Discard,
		Now:     c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.engine = eng
	r.driver = &driver.Driver{SM: s.sm, Invoke: eng, LambdaARN: s.lambda}
	return r
}

func (r *rig) rotate(t testing.TB, secret string) {
	t.Helper()
	if _, err := r.driver.Rotate(context.Background(), secret, ""); err != nil {
		t.Fatalf("rotation at %s: %v", r.clock.Now().Format(time.RFC3339), err)
	}
}

// notifications returns the notifications with event ev.
func (r *rig) notifications(ev string) []rotation.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []rotation.Notification
	for _, n := range r.notified {
		if n.Event == ev {
			out = append(out, n)
		}
	}
	return out
}

// current returns the AWSCURRENT version id and value.
func (s *stack) current(t testing.TB, secret string) (string, string) {
	t.Helper()
	out, err := s.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(secret), VersionStage: aws.String("AWSCURRENT")})
	if err != nil {
		t.Fatalf("read AWSCURRENT: %v", err)
	}
	return aws.ToString(out.VersionId), aws.ToString(out.SecretString)
}

func (s *stack) doc(t testing.TB, secret string) *jwks.Document {
	t.Helper()
	_, v := s.current(t, secret)
	d, err := jwks.ParseDocument([]byte(v))
	if err != nil {
		t.Fatalf("AWSCURRENT is not a valid document: %v", err)
	}
	return d
}

// putCurrent writes value as the new AWSCURRENT version (an operator's edit).
func (s *stack) putCurrent(t testing.TB, secret string, value []byte) {
	t.Helper()
	if _, err := s.sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(secret), SecretString: aws.String(string(value))}); err != nil {
		t.Fatal(err)
	}
}

// strategy is jwtstrategy.New over the stack's envelope; a refused
// configuration fails the test.
func (s *stack) strategy(t testing.TB, cfg jwtstrategy.Config) *jwtstrategy.Strategy {
	t.Helper()
	st, err := jwtstrategy.New(cfg, jwtstrategy.Deps{Envelope: s.env})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// setKIDs returns the set's kids, sorted.
func setKIDs(s *jwks.Set) []string {
	out := s.KIDs()
	slices.Sort(out)
	return out
}
