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
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

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
			if code != 0 {
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
// proven in internal/operator, against functions under the runtime emulator.
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

func TestRotateNowWaitTimesOutNamingTheLastPhaseWhenTheFunctionNeverRuns(t *testing.T) {
	f, arn := fakeWithSecret(t)
	var out bytes.Buffer
	err := rotateNow(context.Background(), f, nil, "", arn, true, 1200*time.Millisecond, &out)
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
	if err := rotateNow(context.Background(), f, nil, "", arn, true, 10*time.Second, &out); err != nil {
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

type queueFunc func() []sqstypes.Message

func (q queueFunc) ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	return &sqs.ReceiveMessageOutput{Messages: q()}, nil
}
func (q queueFunc) DeleteMessage(context.Context, *sqs.DeleteMessageInput, ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	return &sqs.DeleteMessageOutput{}, nil
}

func TestRotateNowWaitExitsWithTheErrorClassOfATerminalFailure(t *testing.T) {
	f, arn := fakeWithSecret(t)
	var tokenV atomic.Value
	tokenV.Store("")
	q := queueFunc(func() []sqstypes.Message {
		token := tokenV.Load().(string)
		if token == "" {
			return nil
		}
		body := fmt.Sprintf(`{"schemaVersion":1,"event":"rotation.failed","versionId":%q,"step":"setSecret","errorClass":"permission","message":"role may not ALTER ROLE","retryable":false}`, token)
		return []sqstypes.Message{{Body: aws.String(body)}}
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
	err := rotateNow(context.Background(), f, q, "q", arn, true, 10*time.Second, &out)
	if err == nil || !strings.Contains(err.Error(), "permission") || !strings.Contains(err.Error(), "setSecret") {
		t.Fatalf("want the failure's class and step, got %v", err)
	}
}

func TestUsageErrorsExitWithCode2(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{{}, {"bogus"}, {"status"}, {"status", "a", "b"}, {"local", "s", "--function", "nope", "--endpoint-url", "http://x"}} {
		if code := run(context.Background(), args, &out, &out); code != 2 {
			t.Fatalf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestParseNotificationReadsRawAndSNSEnvelopedMessages(t *testing.T) {
	raw := `{"schemaVersion":1,"event":"rotation.failed","versionId":"v1","step":"testSecret","errorClass":"authentication","message":"refused"}`
	for _, body := range []string{raw, fmt.Sprintf(`{"Type":"Notification","Message":%q}`, raw)} {
		n, ok := parseNotification(body)
		if !ok || n.Event != rotation.EventFailed || n.VersionID != "v1" || n.ErrorClass != "authentication" {
			t.Fatalf("%v %+v", ok, n)
		}
	}
	if _, ok := parseNotification(`{"hello":1}`); ok {
		t.Fatal("a foreign message parsed as a notification")
	}
}

func TestDemoPassesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo starts the whole local stack")
	}
	var out bytes.Buffer
	if err := cmdDemo(context.Background(), nil, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "DEMO PASSED") {
		t.Fatalf("no pass line:\n%s", out.String())
	}
}
