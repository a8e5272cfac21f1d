package awscall

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Message is one SQS message as received.
type Message struct {
	Body          string `json:"Body"`
	ReceiptHandle string `json:"ReceiptHandle"`
}

// SQS receives and deletes messages with SQS's JSON protocol.
type SQS struct {
	c        client
	endpoint string
}

// NewSQS returns an SQS for cfg's credentials and region. Requests go to
// AWS_ENDPOINT_URL_SQS or AWS_ENDPOINT_URL when set, else to the queue
// URL's host.
func NewSQS(cfg aws.Config) *SQS {
	return &SQS{c: newClient(cfg, "sqs"), endpoint: explicitEndpoint(cfg, "SQS", "")}
}

// Receive returns up to 10 messages waiting on the queue, without waiting.
func (q *SQS) Receive(ctx context.Context, queueURL string) ([]Message, error) {
	var out struct {
		Messages []Message `json:"Messages"`
	}
	err := q.call(ctx, "ReceiveMessage", queueURL, map[string]any{"QueueUrl": queueURL, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0}, &out)
	return out.Messages, err
}

// Delete deletes a received message.
func (q *SQS) Delete(ctx context.Context, queueURL, receiptHandle string) error {
	return q.call(ctx, "DeleteMessage", queueURL, map[string]any{"QueueUrl": queueURL, "ReceiptHandle": receiptHandle}, nil)
}

func (q *SQS) call(ctx context.Context, action, queueURL string, in, out any) error {
	ep := q.endpoint
	if ep == "" {
		u, err := url.Parse(queueURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("sqs:%s: %q is not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)", action, queueURL)
		}
		ep = u.Scheme + "://" + u.Host + "/"
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("X-Amz-Target", "AmazonSQS."+action)
	resp, err := q.c.do(ctx, http.MethodPost, ep, h, body)
	if err != nil {
		return fmt.Errorf("sqs:%s: %w", action, err)
	}
	if resp.status/100 != 2 {
		return fmt.Errorf("sqs:%s: %s", action, apiError(resp))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return fmt.Errorf("sqs:%s: unreadable response: %w", action, err)
	}
	return nil
}
