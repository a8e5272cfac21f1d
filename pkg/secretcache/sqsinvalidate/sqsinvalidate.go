// Package sqsinvalidate owns the rotation notifications an application
// listens to: a small poller of one SQS queue that turns each message saying
// a secret was rotated into secretcache.Cache.Invalidate, so a rotation is
// picked up within seconds instead of at the cache's TTL.
//
// The queue may carry, in any mix:
//
//   - the suite's own notifications, from an SNS subscription to its topic
//     (the SNS envelope, or raw message delivery): only "rotation.succeeded"
//     invalidates;
//   - Secrets Manager's EventBridge events through a rule whose target is the
//     queue: "RotationSucceeded" (detail.additionalEventData.SecretId) and
//     "UpdateSecretVersionStage" (detail.requestParameters.secretId), which
//     also covers a label moved by hand.
//
// Every other message is deleted and ignored. The application's role needs
// sqs:ReceiveMessage and sqs:DeleteMessage on the queue (and kms:Decrypt on
// its key when the queue is encrypted with a customer managed key); the
// queue policy must let the topic (sns.amazonaws.com, aws:SourceArn = the
// topic) or the rule (events.amazonaws.com, aws:SourceArn = the rule) send.
// Give each application instance its own queue, or every instance but one
// misses each notification; the cache's TTL stays the fallback.
package sqsinvalidate

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/rotation-suite/rotation/pkg/extcall"
)

// SQS is the subset of *sqs.Client the poller uses.
type SQS interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
}

// Invalidator is what the poller calls; *secretcache.Cache satisfies it.
type Invalidator interface {
	Invalidate(secretIDOrARN string)
}

// Poller long-polls one queue until its context ends.
type Poller struct {
	Client   SQS
	QueueURL string
	Cache    Invalidator
	// WaitTime is the long-poll wait in whole seconds, at most 20 s (under
	// a second: no wait, short polling); 0 or more than 20 s: 20 s.
	WaitTime time.Duration
	// OnInvalidate, if set, is called after each invalidation with the
	// secret the message named, an ARN or a name (for metrics).
	OnInvalidate func(secretARN string)
	Logger       *slog.Logger // nil: no logs
}

// Run polls until ctx is done and returns ctx's error (or, at once, an error
// naming a missing Client, QueueURL or Cache). A failed receive is logged
// and retried after a pause that grows to 30 s.
func (p *Poller) Run(ctx context.Context) error {
	if p.Client == nil || p.QueueURL == "" || p.Cache == nil {
		return errors.New("sqsinvalidate: Poller needs Client, QueueURL and Cache")
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	wait := p.WaitTime
	if wait <= 0 || wait > 20*time.Second {
		wait = 20 * time.Second
	}
	pause := time.Second
	for ctx.Err() == nil {
		var out *sqs.ReceiveMessageOutput
		err := extcall.Do(ctx, "sqs:ReceiveMessage", func(ctx context.Context) error {
			var err error
			out, err = p.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
				QueueUrl: aws.String(p.QueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: int32(wait / time.Second),
			})
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			log.Warn("receiving rotation notifications failed", "queue", p.QueueURL, "error", err.Error())
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
			pause = min(2*pause, 30*time.Second)
			continue
		}
		pause = time.Second
		for _, m := range out.Messages {
			if arn, ok := SecretOf([]byte(aws.ToString(m.Body))); ok {
				p.Cache.Invalidate(arn)
				if p.OnInvalidate != nil {
					p.OnInvalidate(arn)
				}
			}
			// A message in hand is deleted even while the poller stops.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err := extcall.Do(dctx, "sqs:DeleteMessage", func(ctx context.Context) error {
				_, err := p.Client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(p.QueueURL), ReceiptHandle: m.ReceiptHandle})
				return err
			})
			cancel()
			if err != nil {
				log.Warn("deleting a rotation notification failed; it will be seen again", "queue", p.QueueURL, "error", err.Error())
			}
		}
	}
	return ctx.Err()
}

// SecretOf returns the secret (ARN or name) a message says was rotated or
// had a stage moved, and false for any other message.
func SecretOf(body []byte) (string, bool) {
	var m struct {
		// SNS envelope
		Type    string `json:"Type"`
		Message string `json:"Message"`
		// the suite's notification (raw delivery, or inside the envelope)
		Event     string `json:"event"`
		SecretARN string `json:"secretArn"`
		// EventBridge
		Source string `json:"source"`
		Detail struct {
			EventName           string `json:"eventName"`
			AdditionalEventData struct {
				SecretID string `json:"SecretId"`
			} `json:"additionalEventData"`
			RequestParameters struct {
				SecretID string `json:"secretId"`
			} `json:"requestParameters"`
		} `json:"detail"`
	}
	if json.Unmarshal(body, &m) != nil {
		return "", false
	}
	switch {
	case m.Type == "Notification" && m.Message != "":
		return SecretOf([]byte(m.Message))
	case m.Event == "rotation.succeeded" && m.SecretARN != "":
		return m.SecretARN, true
	case m.Source == "aws.secretsmanager" && m.Detail.EventName == "RotationSucceeded" && m.Detail.AdditionalEventData.SecretID != "":
		return m.Detail.AdditionalEventData.SecretID, true
	case m.Source == "aws.secretsmanager" && m.Detail.EventName == "UpdateSecretVersionStage" && m.Detail.RequestParameters.SecretID != "":
		return m.Detail.RequestParameters.SecretID, true
	}
	return "", false
}
