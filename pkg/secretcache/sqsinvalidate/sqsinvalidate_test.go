package sqsinvalidate_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
	"github.com/rotation-suite/rotation/pkg/secretcache/sqsinvalidate"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf"

func TestOnlyRotationSucceededMessagesNameASecret(t *testing.T) {
	note := func(event string) string {
		b, _ := json.Marshal(rotation.Notification{SchemaVersion: 1, Event: event, SecretARN: arn, Step: "finishSecret"})
		return string(b)
	}
	envelope := func(msg string) string {
		b, _ := json.Marshal(map[string]string{"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": msg})
		return string(b)
	}
	eb := func(name, field string) string {
		d := map[string]any{"eventSource": "secretsmanager.amazonaws.com", "eventName": name}
		if name == "RotationSucceeded" {
			d["additionalEventData"] = map[string]string{field: arn}
		} else {
			d["requestParameters"] = map[string]string{field: arn}
		}
		b, _ := json.Marshal(map[string]any{"source": "aws.secretsmanager", "detail-type": "AWS Service Event via CloudTrail", "detail": d})
		return string(b)
	}
	for _, c := range []struct {
		name, body string
		want       bool
	}{
		{"SNS envelope of rotation.succeeded", envelope(note(rotation.EventSucceeded)), true},
		{"raw delivery of rotation.succeeded", note(rotation.EventSucceeded), true},
		{"rotation.started", envelope(note(rotation.EventStarted)), false},
		{"rotation.failed", note(rotation.EventFailed), false},
		{"EventBridge RotationSucceeded", eb("RotationSucceeded", "SecretId"), true},
		{"EventBridge UpdateSecretVersionStage", eb("UpdateSecretVersionStage", "secretId"), true},
		{"EventBridge RotationFailed", eb("RotationFailed", "SecretId"), false},
		{"not JSON", "hello", false},
	} {
		got, ok := sqsinvalidate.SecretOf([]byte(c.body))
		if ok != c.want || (ok && got != arn) {
			t.Errorf("%s: %q %t", c.name, got, ok)
		}
	}
}

type recorder struct {
	mu   sync.Mutex
	arns []string
	ch   chan string
}

func (r *recorder) Invalidate(id string) {
	r.mu.Lock()
	r.arns = append(r.arns, id)
	r.mu.Unlock()
	r.ch <- id
}

func TestThePollerInvalidatesOnTheSuitesSNSNotificationThroughSQS(t *testing.T) {
	m := testenv.SharedMoto(t)
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sq, sn := sqs.NewFromConfig(cfg), sns.NewFromConfig(cfg)
	topic, err := sn.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("rotation-notes-poller")})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("app-invalidations-poller")})
	if err != nil {
		t.Fatal(err)
	}
	qa, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(qa.Attributes["QueueArn"])}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{ch: make(chan string, 10)}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	p := &sqsinvalidate.Poller{Client: sq, QueueURL: aws.ToString(q.QueueUrl), Cache: rec, WaitTime: time.Second}
	go func() { done <- p.Run(pctx) }()
	notifier := &rotation.SNSNotifier{Client: sn, TopicARN: aws.ToString(topic.TopicArn)}
	for _, ev := range []string{rotation.EventStarted, rotation.EventSucceeded} {
		if err := notifier.Notify(ctx, rotation.Notification{SchemaVersion: 1, Event: ev, Kind: "postgres", SecretARN: arn, Step: "finishSecret", Outcome: "success"}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case got := <-rec.ch:
		if got != arn {
			t.Fatalf("invalidated %q", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no invalidation within 30 s")
	}
	cancel()
	<-done
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.arns) != 1 {
		t.Fatalf("invalidations %v, want one (rotation.started does not invalidate)", rec.arns)
	}
	left, _ := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if left.Attributes["ApproximateNumberOfMessages"] != "0" || left.Attributes["ApproximateNumberOfMessagesNotVisible"] != "0" {
		t.Fatalf("messages left on the queue: %v", left.Attributes)
	}
}
