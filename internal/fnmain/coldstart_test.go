package fnmain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	fnName    = "app-dev-dbrotate"
	secretARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/dev/db-AbCdEf"
	versionID = "0b5c1d8e-aaaa-bbbb-cccc-123456789012"
	// rotToken is the event's RotationToken, which nothing may report.
	rotToken = "rotation-token-that-must-stay-secret"
)

var coldEvent = []byte(`{"Step":"setSecret","SecretId":"` + secretARN + `","ClientRequestToken":"` + versionID + `","RotationToken":"` + rotToken + `"}`)

// badEnvironment is a builder that fails as ConfigFromEnv does.
func badEnvironment(context.Context, Deps) (rotation.Strategy, error) {
	return nil, rotation.NewError(rotation.ClassConfiguration, "environment", "PASSWORD_LENGTH: want a whole number, got \"lots\"", nil)
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

// offlineAWS sets an AWS configuration that loads without a network.
func offlineAWS(t *testing.T) {
	for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": filepath.Join(t.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none")} {
		t.Setenv(k, v)
	}
}

// emf returns the EMF lines of out (the log lines are the others).
func emf(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var doc map[string]any
		if err := json.Unmarshal([]byte(l), &doc); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
		if _, ok := doc["_aws"]; ok {
			lines = append(lines, doc)
		}
	}
	return lines
}

// checkFailureLine checks the metric line of a failed setSecret at cold start.
func checkFailureLine(t *testing.T, doc map[string]any) {
	t.Helper()
	for k, v := range map[string]any{"FunctionName": fnName, "Kind": rotation.KindUnknown, "Step": "setSecret", "ErrorClass": "configuration", "StepFailures": 1.0, "secretArn": secretARN} {
		if doc[k] != v {
			t.Errorf("metric %s = %v, want %v", k, doc[k], v)
		}
	}
	spec := doc["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
	want := []any{[]any{"FunctionName"}, []any{"FunctionName", "Step"}, []any{"FunctionName", "ErrorClass"}, []any{"Kind"}}
	if spec["Namespace"] != "SecretRotation" || !reflect.DeepEqual(spec["Dimensions"], want) {
		t.Errorf("metric directive %v", spec)
	}
}

// A strategy that does not build (a bad environment, the commonest
// first-deploy failure) fails every invocation and reports each one as a
// failed step: the rotation.failed notification and the metric line.
func TestAColdStartConfigurationErrorNotifiesAndCountsOnEveryInvocation(t *testing.T) {
	offlineAWS(t)
	out := &testenv.Buffer{}
	notes := &recorder{}
	env := map[string]string{"AWS_LAMBDA_FUNCTION_NAME": fnName, "SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:notes"}
	h := newHandler(context.Background(), badEnvironment, func(k string) string { return env[k] },
		sinks{out: out, notifier: func(aws.Config, string) rotation.Notifier { return notes }})
	for range 3 {
		_, err := h.Invoke(context.Background(), coldEvent)
		var re *rotation.Error
		if !errors.As(err, &re) || re.Class != rotation.ClassConfiguration || re.Step != "setSecret" || !strings.Contains(err.Error(), "PASSWORD_LENGTH") {
			t.Fatalf("got %v", err)
		}
	}
	if len(notes.notes) != 3 {
		t.Fatalf("want a notification per invocation, got %d", len(notes.notes))
	}
	n := notes.notes[0]
	if n.SchemaVersion != rotation.NotificationSchemaVersion || n.Event != rotation.EventFailed || n.Outcome != "failure" || n.ErrorClass != "configuration" ||
		n.Step != "setSecret" || n.SecretARN != secretARN || n.VersionID != versionID || n.Function != fnName || n.Kind != rotation.KindUnknown ||
		n.Retryable || !strings.Contains(n.Message, "PASSWORD_LENGTH") {
		t.Fatalf("notification %+v", n)
	}
	lines := emf(t, out.String())
	if len(lines) != 3 {
		t.Fatalf("want a metric line per invocation, got %d:\n%s", len(lines), out.String())
	}
	checkFailureLine(t, lines[0])
	if c := strings.Count(out.String(), "configuration error: every rotation will fail until it is fixed"); c != 1 {
		t.Errorf("the start-up error is logged %d times, want once", c)
	}
	body, _ := json.Marshal(notes.notes)
	if strings.Contains(out.String(), rotToken) || strings.Contains(string(body), rotToken) {
		t.Fatal("the RotationToken was reported")
	}
}

// When the AWS configuration itself does not load there is no SNS client:
// the metric line and the log still report every invocation.
func TestAnAWSConfigurationThatDoesNotLoadIsStillCountedAndLogged(t *testing.T) {
	offlineAWS(t)
	t.Setenv("AWS_PROFILE", "no-such-profile")
	out := &testenv.Buffer{}
	env := map[string]string{"AWS_LAMBDA_FUNCTION_NAME": fnName, "SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:notes"}
	h := newHandler(context.Background(), func(context.Context, Deps) (rotation.Strategy, error) {
		t.Fatal("the strategy is built without an AWS configuration")
		return nil, nil
	}, func(k string) string { return env[k] }, sinks{out: out, notifier: func(aws.Config, string) rotation.Notifier {
		t.Fatal("a notifier is built without an AWS configuration")
		return nil
	}})
	_, err := h.Invoke(context.Background(), coldEvent)
	if rotation.ClassOf(err) != rotation.ClassConfiguration || !strings.Contains(err.Error(), "AWS SDK configuration") {
		t.Fatalf("got %v", err)
	}
	lines := emf(t, out.String())
	if len(lines) != 1 {
		t.Fatalf("want one metric line, got:\n%s", out.String())
	}
	checkFailureLine(t, lines[0])
	if !strings.Contains(out.String(), `"msg":"rotation step failed"`) || strings.Contains(out.String(), rotToken) {
		t.Fatalf("log:\n%s", out.String())
	}
}

// The cold-start notification reaches a subscriber through real SNS, with
// the message attributes a filter policy selects on.
func TestAColdStartConfigurationErrorReachesTheQueueThroughSNS(t *testing.T) {
	m := testenv.SharedMoto(t)
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_PROFILE", "")
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snsc, sqsc := sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	name := fmt.Sprintf("fnmain-coldstart-%d", time.Now().UnixNano())
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
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
	env := map[string]string{"AWS_LAMBDA_FUNCTION_NAME": fnName, "SNS_TOPIC_ARN": aws.ToString(topic.TopicArn)}
	out := &testenv.Buffer{}
	h := newHandler(ctx, badEnvironment, func(k string) string { return env[k] }, sinks{out: out})
	if _, err := h.Invoke(ctx, coldEvent); rotation.ClassOf(err) != rotation.ClassConfiguration {
		t.Fatalf("got %v", err)
	}
	var msgs []sqstypes.Message
	for deadline := time.Now().Add(15 * time.Second); len(msgs) == 0 && time.Now().Before(deadline); {
		r, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, r.Messages...)
	}
	if len(msgs) != 1 {
		t.Fatalf("want one message on the queue, got %d\n%s", len(msgs), out.String())
	}
	var envl struct {
		Message           string
		MessageAttributes map[string]struct{ Value string }
	}
	if err := json.Unmarshal([]byte(aws.ToString(msgs[0].Body)), &envl); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(aws.ToString(msgs[0].Body), rotToken) {
		t.Fatal("the RotationToken reached the topic")
	}
	var n rotation.Notification
	if err := json.Unmarshal([]byte(envl.Message), &n); err != nil {
		t.Fatal(err)
	}
	if n.Event != rotation.EventFailed || n.ErrorClass != "configuration" || n.Step != "setSecret" || n.SecretARN != secretARN || n.Function != fnName {
		t.Fatalf("notification %+v", n)
	}
	for k, v := range map[string]string{"event": rotation.EventFailed, "kind": rotation.KindUnknown, "outcome": "failure", "step": "setSecret"} {
		if envl.MessageAttributes[k].Value != v {
			t.Errorf("message attribute %s = %q, want %q", k, envl.MessageAttributes[k].Value, v)
		}
	}
	checkFailureLine(t, emf(t, out.String())[0])
}
