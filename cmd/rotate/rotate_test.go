package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotation-suite/rotation/internal/awscall"
	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/smfake"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type world struct {
	sm     *secretsmanager.Client
	moto   *testenv.Moto
	lambda string
}

func newWorld(t *testing.T) *world {
	m := testenv.SharedMoto(t)
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	arn, err := m.RegisterNoopLambda(ctx, "rotate-cmd-test")
	if err != nil {
		t.Fatal(err)
	}
	return &world{sm: secretsmanager.NewFromConfig(cfg), moto: m, lambda: arn}
}

func (w *world) secret(t *testing.T) string {
	out, err := w.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(fmt.Sprintf("cmd/%s/%d", t.Name(), time.Now().UnixNano())), SecretString: aws.String(`{"password":"top-secret-value-1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

// stick leaves a rotation as a failed one leaves it: AWSPENDING on a new
// version, empty or with a value.
func (w *world) stick(t *testing.T, arn string, withValue bool) string {
	out, err := w.sm.RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String(w.lambda),
		RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}, RotateImmediately: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	token := aws.ToString(out.VersionId)
	if withValue {
		if _, err := w.sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(token),
			SecretString: aws.String(`{"password":"pending-secret-value-2"}`), VersionStages: []string{rotation.StagePending}}); err != nil {
			t.Fatal(err)
		}
	}
	return token
}

func TestStatusReportsAStuckRotationAndWhyWithoutPrintingValues(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		name      string
		withValue bool
		want      string
	}{{"empty pending", false, "createSecret never completed"}, {"pending with a value", true, "setSecret, testSecret or finishSecret failed"}} {
		t.Run(tc.name, func(t *testing.T) {
			arn := w.secret(t)
			token := w.stick(t, arn, tc.withValue)
			var out bytes.Buffer
			code := run(context.Background(), []string{"status", arn, "--endpoint-url", w.moto.Endpoint, "--region", testenv.Region}, &out, &out)
			if code != 3 {
				t.Fatalf("exit %d: %s", code, out.String())
			}
			s := out.String()
			if !strings.Contains(s, "STUCK") || !strings.Contains(s, token) || !strings.Contains(s, tc.want) {
				t.Fatalf("status output:\n%s", s)
			}
			if strings.Contains(s, "secret-value") {
				t.Fatal("status printed a secret value")
			}
		})
	}
}

// The command's wiring and exit codes; what unstick does in each mode is
// proven in internal/operator (against an engine in-process) and in
// functions/dbrotate (against the function under the runtime emulator,
// through internal/awscall's Lambda Invoke).
func TestUnstickExitCodesNothingToDoRefusedAndUsage(t *testing.T) {
	w := newWorld(t)
	arn := w.secret(t)
	flags := []string{"--endpoint-url", w.moto.Endpoint, "--region", testenv.Region}
	var out bytes.Buffer
	if code := run(context.Background(), append([]string{"unstick", arn}, flags...), &out, &out); code != 0 || !strings.Contains(out.String(), "nothing to do") {
		t.Fatalf("a secret that is not stuck: exit %d: %s", code, out.String())
	}
	token := w.stick(t, arn, true)
	for _, mode := range []string{"resume", "discard"} {
		out.Reset()
		code := run(context.Background(), append([]string{"unstick", arn, "--mode", mode}, flags...), &out, &out)
		if code != exitRefused || !strings.Contains(out.String(), "service may still be retrying") {
			t.Fatalf("%s on a fresh pending version: want exit %d with the reason, got %d: %s", mode, exitRefused, code, out.String())
		}
		if strings.Contains(out.String(), "pending-secret-value-2") {
			t.Fatal("unstick printed a secret value")
		}
		if s, _ := loadState(context.Background(), w.sm, arn); !s.Stuck() || s.Pending.ID != token {
			t.Fatal("a refusal changed the labels")
		}
	}
	out.Reset()
	if code := run(context.Background(), append([]string{"unstick", arn, "--mode", "remove"}, flags...), &out, &out); code != 2 {
		t.Fatalf("an unknown mode: want exit 2, got %d: %s", code, out.String())
	}
}

// On moto, RotateSecret without a function ARN promotes at once (it forgets
// the configured function); the real service keeps it. These tests use the
// fake that follows the real service.
func fakeWithSecret(t *testing.T) (*smfake.Fake, string) {
	f := smfake.New()
	ctx := context.Background()
	out, err := f.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("now/test"), SecretString: aws.String(`{"v":"old-secret-value"}`)})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.ARN)
	// Configure rotation as the console does: a test-only rotation, then clean up.
	r, err := f.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String("arn:aws:lambda:us-east-1:123456789012:function:rot"),
		RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}, RotateImmediately: aws.Bool(false)})
	if err != nil {
		t.Fatal(err)
	}
	f.RemovePending(arn)
	_ = r
	return f, arn
}

// versioned adds ListSecretVersionIds (creation dates) to the fake.
type versioned struct{ *smfake.Fake }

func (v versioned) ListSecretVersionIds(_ context.Context, in *secretsmanager.ListSecretVersionIdsInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error) {
	vs, err := v.Versions(aws.ToString(in.SecretId))
	if err != nil {
		return nil, err
	}
	out := &secretsmanager.ListSecretVersionIdsOutput{}
	for _, x := range vs {
		if len(x.Stages) > 0 {
			out.Versions = append(out.Versions, smtypes.SecretVersionsListEntry{VersionId: aws.String(x.ID), VersionStages: x.Stages, CreatedDate: aws.Time(x.Created)})
		}
	}
	return out, nil
}

func TestRotateNowWaitTimesOutNamingTheLastPhaseWhenTheFunctionNeverRuns(t *testing.T) {
	f, arn := fakeWithSecret(t)
	var out bytes.Buffer
	_, err := rotateNow(context.Background(), versioned{f}, nil, "", arn, true, 1200*time.Millisecond, &out)
	if err == nil || !strings.Contains(err.Error(), "did not finish within the timeout") || !strings.Contains(err.Error(), "createSecret") {
		t.Fatalf("want a timeout naming the phase, got %v\n%s", err, out.String())
	}
}

type okStrategy struct{}

func (okStrategy) Kind() string { return "ok" }
func (okStrategy) Create(context.Context, *rotation.CreateRequest) (*rotation.CreateResponse, error) {
	return &rotation.CreateResponse{Value: []byte(`{"v":"new-secret-value"}`)}, nil
}
func (okStrategy) Set(context.Context, *rotation.SetRequest) (*rotation.SetResponse, error) {
	return nil, nil
}
func (okStrategy) Test(context.Context, *rotation.TestRequest) (*rotation.TestResponse, error) {
	return nil, nil
}

func TestRotateNowWaitFollowsTheStepsUntilTheNewVersionIsCurrent(t *testing.T) {
	f, arn := fakeWithSecret(t)
	eng, err := rotation.New(rotation.Config{Secrets: f, Strategy: okStrategy{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// Play the service: once the placeholder exists, run the four steps.
	go func() {
		for i := 0; i < 100; i++ {
			d, _ := f.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
			for id, st := range d.VersionIdsToStages {
				if slices.Contains(st, rotation.StagePending) && !slices.Contains(st, rotation.StageCurrent) {
					time.Sleep(700 * time.Millisecond)
					_, _ = (&driver.Driver{SM: f, Invoke: eng}).Resume(context.Background(), arn, id)
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var out bytes.Buffer
	if _, err := rotateNow(context.Background(), versioned{f}, nil, "", arn, true, 10*time.Second, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"rotation started", "createSecret: waiting", "the new version is AWSCURRENT", "rotation succeeded"} {
		if !strings.Contains(s, want) {
			t.Fatalf("progress lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "secret-value") {
		t.Fatal("progress printed a secret value")
	}
}

type queueFunc func() []awscall.Message

func (q queueFunc) Receive(context.Context, string) ([]awscall.Message, error) { return q(), nil }
func (q queueFunc) Delete(context.Context, string, string) error               { return nil }

func TestRotateNowWaitExitsWithTheErrorClassOfATerminalFailure(t *testing.T) {
	f, arn := fakeWithSecret(t)
	var tokenV atomic.Value
	tokenV.Store("")
	q := queueFunc(func() []awscall.Message {
		token := tokenV.Load().(string)
		if token == "" {
			return nil
		}
		body := fmt.Sprintf(`{"schemaVersion":1,"event":"rotation.failed","versionId":%q,"step":"setSecret","errorClass":"permission","message":"role may not ALTER ROLE","retryable":false}`, token)
		return []awscall.Message{{Body: body}}
	})
	go func() {
		for tokenV.Load().(string) == "" {
			d, _ := f.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
			for id, st := range d.VersionIdsToStages {
				if slices.Contains(st, rotation.StagePending) {
					tokenV.Store(id)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var out bytes.Buffer
	_, err := rotateNow(context.Background(), versioned{f}, q, "q", arn, true, 10*time.Second, &out)
	if err == nil || !strings.Contains(err.Error(), "permission") || !strings.Contains(err.Error(), "setSecret") {
		t.Fatalf("want the failure's class and step, got %v", err)
	}
}

func TestUsageErrorsExitWithCode2(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{{}, {"bogus"}, {"status"}, {"status", "a", "b"}, {"status", "s", "--output", "xml"}, {"audit", "--page-size", "0"}, {"local", "s"}, {"demo"}} {
		if code := run(context.Background(), args, &out, &out); code != 2 {
			t.Fatalf("%v: exit %d, want 2", args, code)
		}
	}
}

// A rotation whose new version became AWSCURRENT without a value is a
// failure, not a success: applications reading the secret would break.
func TestRotateNowWaitFailsWhenTheNewAWSCURRENTHasNoValue(t *testing.T) {
	f, arn := fakeWithSecret(t)
	go func() {
		for i := 0; i < 200; i++ {
			st, _ := f.Stages(arn)
			var cur, pending string
			for id, labels := range st {
				if slices.Contains(labels, rotation.StageCurrent) {
					cur = id
				}
				if slices.Contains(labels, rotation.StagePending) && !slices.Contains(labels, rotation.StageCurrent) {
					pending = id
				}
			}
			if pending != "" {
				// A broken function: promotes the empty placeholder.
				_, _ = f.UpdateSecretVersionStage(context.Background(), &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(arn),
					VersionStage: aws.String(rotation.StageCurrent), MoveToVersionId: aws.String(pending), RemoveFromVersionId: aws.String(cur)})
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var out bytes.Buffer
	res, err := rotateNow(context.Background(), versioned{f}, nil, "", arn, true, 10*time.Second, &out)
	if err == nil || !strings.Contains(err.Error(), "has no value") || res == nil || res.Result != "failed" {
		t.Fatalf("want a failure naming the empty AWSCURRENT, got %v %+v\n%s", err, res, out.String())
	}
	if strings.Contains(out.String(), "rotation succeeded") {
		t.Fatalf("reported success:\n%s", out.String())
	}
}
