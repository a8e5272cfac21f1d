package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

func cmdNow(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("now", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	wait := fs.Bool("wait", false, "follow the rotation until the new version is AWSCURRENT")
	timeout := fs.Duration("timeout", 5*time.Minute, "with --wait: give up after this long")
	queue := fs.String("queue-url", "", "with --wait: an SQS queue subscribed to the notification topic, to show each step's outcome and the error of a failed attempt")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	cfg, err := c.awsConfig(ctx)
	if err != nil {
		return err
	}
	sm := secretsmanager.NewFromConfig(cfg)
	var q queueReader
	if *queue != "" {
		q = sqs.NewFromConfig(cfg)
	}
	return rotateNow(ctx, sm, q, *queue, pos[0], *wait, *timeout, out)
}

type queueReader interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
}

// nowClient is what `rotate now` uses of Secrets Manager.
type nowClient interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	RotateSecret(ctx context.Context, in *secretsmanager.RotateSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error)
}

// rotateNow starts a rotation and, with wait, follows it.
func rotateNow(ctx context.Context, sm nowClient, q queueReader, queueURL, secret string, wait bool, timeout time.Duration, out io.Writer) error {
	start := time.Now()
	r, err := sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(secret), RotateImmediately: aws.Bool(true)})
	if err != nil {
		var ir *smtypes.InvalidRequestException
		if errors.As(err, &ir) {
			return fmt.Errorf("%w\n  hint: 'rotate status %s' shows whether a previous rotation is stuck", explain("RotateSecret", err), secret)
		}
		return explain("RotateSecret", err)
	}
	token := aws.ToString(r.VersionId)
	fmt.Fprintf(out, "rotation started: %s version %s\n", aws.ToString(r.ARN), token)
	if !wait {
		return nil
	}
	f := &follower{sm: sm, q: q, queueURL: queueURL, arn: aws.ToString(r.ARN), token: token, out: out, start: start}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return f.follow(wctx)
}

// follower watches one rotation through DescribeSecret (and notifications).
type follower struct {
	sm       nowClient
	q        queueReader
	queueURL string
	arn      string
	token    string
	out      io.Writer
	start    time.Time
	phase    string
	lastErr  *rotation.Notification
}

func (f *follower) say(format string, a ...any) {
	fmt.Fprintf(f.out, "  [%6.1fs] %s\n", time.Since(f.start).Seconds(), fmt.Sprintf(format, a...))
}

func (f *follower) follow(ctx context.Context) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		done, err := f.poll(ctx)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("the rotation did not finish within the timeout (last seen: %s)", f.phase)
			if f.lastErr != nil {
				msg += fmt.Sprintf("; last failed attempt: %s in %s: %s", f.lastErr.ErrorClass, f.lastErr.Step, f.lastErr.Message)
			}
			return errors.New(msg + "; 'rotate status' shows the labels, the function's log has the details")
		case <-tick.C:
		}
	}
}

func (f *follower) setPhase(p string) {
	if p != f.phase {
		f.phase = p
		f.say("%s", p)
	}
}

func (f *follower) poll(ctx context.Context) (bool, error) {
	if f.q != nil {
		if err := f.readNotifications(ctx); err != nil {
			return false, err
		}
	}
	d, err := f.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(f.arn)})
	if err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		return false, explain("DescribeSecret", err)
	}
	stages, ok := d.VersionIdsToStages[f.token]
	switch {
	case !ok:
		return false, fmt.Errorf("version %s disappeared: the rotation was abandoned (someone wrote a new version mid-rotation?)", f.token)
	case slices.Contains(stages, rotation.StageCurrent):
		f.setPhase("finishSecret done: the new version is AWSCURRENT")
		fmt.Fprintf(f.out, "rotation succeeded in %s\n", time.Since(f.start).Round(time.Millisecond))
		return true, nil
	case slices.Contains(stages, rotation.StagePending):
		_, err := f.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(f.arn), VersionId: aws.String(f.token), VersionStage: aws.String(rotation.StagePending)})
		var nf *smtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			f.setPhase("createSecret: waiting for the new value (AWSPENDING placeholder is empty)")
		} else if err == nil {
			f.setPhase("createSecret done: setSecret / testSecret / finishSecret running")
		}
	default:
		return false, fmt.Errorf("version %s lost AWSPENDING without becoming AWSCURRENT: the rotation was abandoned or cleaned up", f.token)
	}
	return false, nil
}

// readNotifications shows the function's notifications for this rotation.
// A terminal (not retryable) failure ends the wait with its class and message.
func (f *follower) readNotifications(ctx context.Context) error {
	out, err := f.q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(f.queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 0})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("read notifications: %w", err)
	}
	for _, m := range out.Messages {
		n, ok := parseNotification(aws.ToString(m.Body))
		if !ok || n.VersionID != f.token {
			continue
		}
		_, _ = f.q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(f.queueURL), ReceiptHandle: m.ReceiptHandle})
		switch n.Event {
		case rotation.EventFailed:
			nn := n
			f.lastErr = &nn
			f.say("%s failed: %s error: %s (retryable: %v)", n.Step, n.ErrorClass, n.Message, n.Retryable)
			if !n.Retryable {
				return fmt.Errorf("rotation failed in %s: %s error: %s", n.Step, n.ErrorClass, n.Message)
			}
		default:
			f.say("notification %s (%s, %d ms)", n.Event, n.Step, n.DurationMs)
		}
	}
	return nil
}

// parseNotification reads a notification from an SQS body: either the raw
// message or SNS's JSON envelope around it.
func parseNotification(body string) (rotation.Notification, bool) {
	var n rotation.Notification
	// SNS's envelope has "Type":"Notification"; our own message has a
	// lower-case "message" field that encoding/json would also match.
	var env struct {
		Type    string `json:"Type"`
		Message string `json:"Message"`
	}
	if json.Unmarshal([]byte(body), &env) == nil && env.Type == "Notification" && env.Message != "" {
		body = env.Message
	}
	if err := json.Unmarshal([]byte(body), &n); err != nil || n.SchemaVersion == 0 {
		return n, false
	}
	return n, true
}
