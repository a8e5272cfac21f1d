package awscall_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/rotation-suite/rotation/internal/awscall"
	"github.com/rotation-suite/rotation/internal/testenv"
)

// The SQS calls must read and delete what the SDK's
// client sent, against a real SQS API (moto), signed with the SDK's
// credential chain.
func TestQueueReaderReceivesAndDeletesWhatTheSDKSent(t *testing.T) {
	m := testenv.SharedMoto(t)
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sdk := sqs.NewFromConfig(cfg)
	cq, err := sdk.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("now-wait-reader"),
		Attributes: map[string]string{"VisibilityTimeout": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	url := aws.ToString(cq.QueueUrl)
	for _, b := range []string{"first", "second"} {
		if _, err := sdk.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: cq.QueueUrl, MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	q := awscall.NewSQS(cfg)
	var bodies []string
	for range 5 {
		msgs, err := q.Receive(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range msgs {
			if msg.ReceiptHandle == "" {
				t.Fatalf("message %q without a receipt handle", msg.Body)
			}
			if msg.Body == "first" {
				if err := q.Delete(ctx, url, msg.ReceiptHandle); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Contains(bodies, msg.Body) {
				bodies = append(bodies, msg.Body)
			}
		}
	}
	slices.Sort(bodies)
	if !slices.Equal(bodies, []string{"first", "second"}) {
		t.Fatalf("received %v, want first and second", bodies)
	}
	left, err := sdk.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: cq.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range left.Messages {
		if aws.ToString(msg.Body) == "first" {
			t.Fatal("the deleted message is still on the queue")
		}
	}
	_, err = q.Receive(ctx, strings.TrimSuffix(url, "now-wait-reader")+"no-such-queue")
	if err == nil || !strings.Contains(err.Error(), "sqs:ReceiveMessage") {
		t.Fatalf("a missing queue: want an sqs:ReceiveMessage error, got %v", err)
	}
}

func TestMain(m *testing.M) { testenv.Main(m) }
