package rotation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/rotation-suite/rotation/internal/crashtest"
	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestEveryCrashPointOfARotationConverges(t *testing.T) {
	e := newEnv(t)
	points := crashtest.Run(t, crashtest.Harness{
		Setup: func(t *testing.T) (string, *driver.Driver) {
			return e.newSecret(fmt.Sprintf(`{"n":0,"password":"seed-%d"}`, time.Now().UnixNano())), e.driver()
		},
		SM: e.sm,
		Check: func(_ context.Context, _ string, v []byte) error {
			if !e.strategy.tgt.ok(string(v)) {
				return fmt.Errorf("the target does not accept the value")
			}
			return nil
		},
	})
	t.Logf("crash points exercised: %d", len(points))
	// 9 Secrets Manager calls (cold) + set + login, before and after each.
	if len(points) < 16 {
		t.Fatalf("too few failure points: %d", len(points))
	}
}

// A crash harness must be able to fail: a strategy whose Set is not
// idempotent (it changes the value the target accepts on every call) breaks
// the invariant that the AWSCURRENT value works.
func TestTheCrashHarnessCatchesANonIdempotentStrategy(t *testing.T) {
	e := newEnv(t)
	e.strategy.createFn = func(req *rotation.CreateRequest) ([]byte, error) {
		return []byte(fmt.Sprintf(`{"v":"%d"}`, time.Now().UnixNano())), nil
	}
	broken := &forgetfulTarget{inner: e.strategy}
	eng, err := rotation.New(rotation.Config{Secrets: e.sm, Strategy: broken, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h := crashtest.Harness{
		Setup: func(*testing.T) (string, *driver.Driver) {
			broken.last = ""
			return e.newSecret(fmt.Sprintf(`{"v":"seed-%d"}`, time.Now().UnixNano())), &driver.Driver{SM: e.sm, Invoke: eng, LambdaARN: e.lambda}
		},
		SM:    e.sm,
		Check: func(_ context.Context, _ string, v []byte) error { return broken.check(v) },
	}
	points, err := h.Points(t)
	if err != nil {
		t.Fatal(err)
	}
	caught := 0
	for _, p := range points {
		if h.Exercise(t, p) != nil {
			caught++
		}
	}
	if caught == 0 {
		t.Fatal("the harness passed a strategy that loses the working credential")
	}
	t.Logf("the harness caught the broken strategy at %d of %d points", caught, len(points))
}

// forgetfulTarget accepts only the last value set: the old credential stops
// working as soon as setSecret runs, before finishSecret promotes the new one.
type forgetfulTarget struct {
	inner *testStrategy
	last  string
}

func (f *forgetfulTarget) Kind() string { return "forgetful" }
func (f *forgetfulTarget) Create(ctx context.Context, r *rotation.CreateRequest) (*rotation.CreateResponse, error) {
	return f.inner.Create(ctx, r)
}
func (f *forgetfulTarget) Set(ctx context.Context, r *rotation.SetRequest) (*rotation.SetResponse, error) {
	return nil, rotation.Call(ctx, "target:set", func(context.Context) error { f.last = string(r.Pending.Value); return nil })
}
func (f *forgetfulTarget) Test(ctx context.Context, r *rotation.TestRequest) (*rotation.TestResponse, error) {
	return nil, rotation.Call(ctx, "target:login", func(context.Context) error { return f.check(r.Pending.Value) })
}
func (f *forgetfulTarget) check(v []byte) error {
	if f.last == "" && strings.Contains(string(v), "seed-") {
		return nil
	}
	if string(v) != f.last {
		return fmt.Errorf("refused")
	}
	return nil
}

func TestNotificationsReachAnSQSQueueThroughSNSWithSchemaAndAttributes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg, err := e.moto.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snsc, sqsc := sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("rotation-notes")})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("notes-%d", time.Now().UnixNano()))})
	if err != nil {
		t.Fatal(err)
	}
	qa, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(qa.Attributes["QueueArn"])}); err != nil {
		t.Fatal(err)
	}
	eng, err := rotation.New(rotation.Config{Secrets: e.sm, Strategy: e.strategy, Logger: slog.New(slog.DiscardHandler),
		Notifier: &rotation.SNSNotifier{Client: snsc, TopicARN: aws.ToString(topic.TopicArn)}})
	if err != nil {
		t.Fatal(err)
	}
	arn := e.newSecret(initial)
	d := &driver.Driver{SM: e.sm, Invoke: eng, LambdaARN: e.lambda}
	res, err := d.Rotate(ctx, arn, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []rotation.Notification
	var attrs []map[string]string
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < 2 && time.Now().Before(deadline) {
		out, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			var envl struct {
				Message           string
				MessageAttributes map[string]struct{ Type, Value string }
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &envl); err != nil {
				t.Fatalf("SNS envelope: %v", err)
			}
			var n rotation.Notification
			dec := json.NewDecoder(strings.NewReader(envl.Message))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&n); err != nil {
				t.Fatalf("notification does not match the schema: %v: %s", err, envl.Message)
			}
			got = append(got, n)
			a := map[string]string{}
			for k, v := range envl.MessageAttributes {
				a[k] = v.Value
			}
			attrs = append(attrs, a)
			if strings.Contains(envl.Message, "initial-password-0") || strings.Contains(envl.Message, "pw-") {
				t.Fatal("a secret value reached a notification")
			}
		}
	}
	if len(got) != 2 {
		t.Fatalf("want 2 notifications (started, succeeded), got %d", len(got))
	}
	for i, want := range []struct{ event, step string }{{rotation.EventStarted, "createSecret"}, {rotation.EventSucceeded, "finishSecret"}} {
		n := got[i]
		if n.SchemaVersion != rotation.NotificationSchemaVersion || n.Event != want.event || n.Step != want.step || n.SecretARN != arn || n.VersionID != res.Token || n.Kind != "test" || n.Outcome != "success" || n.Time.IsZero() {
			t.Fatalf("notification %d: %+v", i, n)
		}
		a := attrs[i]
		if a["event"] != want.event || a["kind"] != "test" || a["outcome"] != "success" || a["step"] != want.step {
			t.Fatalf("message attributes %d: %v", i, a)
		}
	}
}

func TestAFailedPublishIsLoggedAndNeverFailsTheRotation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg, _ := e.moto.AWSConfig(ctx)
	eng, err := rotation.New(rotation.Config{Secrets: e.sm, Strategy: e.strategy, Logger: slog.New(slog.NewJSONHandler(e.logs, nil)),
		Notifier: &rotation.SNSNotifier{Client: sns.NewFromConfig(cfg), TopicARN: "arn:aws:sns:us-east-1:123456789012:no-such-topic"}})
	if err != nil {
		t.Fatal(err)
	}
	arn := e.newSecret(initial)
	if _, err := (&driver.Driver{SM: e.sm, Invoke: eng, LambdaARN: e.lambda}).Rotate(ctx, arn, ""); err != nil {
		t.Fatalf("a failed publish failed the rotation: %v", err)
	}
	if !strings.Contains(e.logs.String(), "notification not published") {
		t.Fatal("the failed publish was not logged")
	}
}

func TestFIFOTopicsGetAGroupIdAndADeduplicationIdFromTokenStepAndEvent(t *testing.T) {
	var ins []*sns.PublishInput
	pub := publishFunc(func(in *sns.PublishInput) { ins = append(ins, in) })
	n := &rotation.SNSNotifier{Client: pub, TopicARN: "arn:aws:sns:us-east-1:123456789012:rot.fifo"}
	base := rotation.Notification{SchemaVersion: 1, Event: rotation.EventStarted, SecretARN: "arn:s", VersionID: "tok", Step: "createSecret"}
	for _, nn := range []rotation.Notification{base, base, func() rotation.Notification { b := base; b.Event = rotation.EventFailed; return b }()} {
		if err := n.Notify(context.Background(), nn); err != nil {
			t.Fatal(err)
		}
	}
	if aws.ToString(ins[0].MessageGroupId) != "arn:s" || ins[0].MessageDeduplicationId == nil {
		t.Fatalf("FIFO fields missing: %+v", ins[0])
	}
	if aws.ToString(ins[0].MessageDeduplicationId) != aws.ToString(ins[1].MessageDeduplicationId) || aws.ToString(ins[0].MessageDeduplicationId) == aws.ToString(ins[2].MessageDeduplicationId) {
		t.Fatal("the deduplication id must be a function of token, step and event")
	}
	std := &rotation.SNSNotifier{Client: pub, TopicARN: "arn:aws:sns:us-east-1:123456789012:rot"}
	_ = std.Notify(context.Background(), base)
	if ins[3].MessageGroupId != nil || ins[3].MessageDeduplicationId != nil {
		t.Fatal("a standard topic must not get FIFO fields")
	}
}

type publishFunc func(in *sns.PublishInput)

func (f publishFunc) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f(in)
	return &sns.PublishOutput{}, nil
}

func TestLogsOfFullRotationsHoldNoByteOfAnySecretValue(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	d := e.driver()
	d.RotationToken = "rotation-token-never-logged-123"
	for i := 0; i < 3; i++ {
		if _, err := d.Rotate(context.Background(), arn, ""); err != nil {
			t.Fatal(err)
		}
	}
	// One failed rotation, whose error mentions the secret.
	e.strategy.failTest = fmt.Errorf("login with %s refused", e.value(arn, rotation.StageCurrent))
	d.Attempts = 2
	_, _ = d.Rotate(context.Background(), arn, "")
	e.strategy.failTest = nil
	logs := e.logs.String() + e.metrics.String()
	if logs == "" {
		t.Fatal("no log output captured")
	}
	// Every value the secret ever had.
	out, err := e.sm.ListSecretVersionIds(context.Background(), &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(arn), IncludeDeprecated: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, v := range out.Versions {
		if s, err := e.valueOf(arn, aws.ToString(v.VersionId)); err == nil {
			values = append(values, s)
		}
	}
	if len(values) < 4 {
		t.Fatalf("want at least 4 secret values, have %d", len(values))
	}
	pw := regexp.MustCompile(`"password":"([^"]+)"`)
	for _, v := range values {
		for _, m := range pw.FindAllStringSubmatch(v, -1) {
			if strings.Contains(logs, m[1]) {
				t.Fatalf("a password reached the log")
			}
		}
		if strings.Contains(logs, v) {
			t.Fatal("a secret value reached the log")
		}
	}
	if strings.Contains(logs, d.RotationToken) {
		t.Fatal("the RotationToken reached the log")
	}
	for _, want := range []string{`"secretArn"`, `"step"`, `"versionId"`, `"durationMs"`, `"outcome"`} {
		if !strings.Contains(e.logs.String(), want) {
			t.Fatalf("log lines lack %s", want)
		}
	}
}

func TestDriverRemovesAWSPENDINGAfterSuccessAsTheServiceDoes(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	res, err := e.driver().Rotate(context.Background(), arn, "")
	if err != nil {
		t.Fatal(err)
	}
	st := e.stages(arn)
	if slices.Contains(st[res.Token], rotation.StagePending) {
		t.Fatalf("AWSPENDING left on the current version: %v", st)
	}
	// And the next rotation can start.
	if _, err := e.driver().Rotate(context.Background(), arn, ""); err != nil {
		t.Fatal(err)
	}
}
