package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotation-suite/rotation/internal/awscall"
	"github.com/rotation-suite/rotation/internal/cli"
	"github.com/rotation-suite/rotation/internal/operator"
	"github.com/rotation-suite/rotation/internal/wire"
)

func cmdNow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := cli.New("rotate now", "SECRET [flags]",
		"Asks Secrets Manager to rotate the secret now (as 'aws secretsmanager rotate-secret'). With --wait it follows the\n"+
			"rotation and succeeds only when the new version is AWSCURRENT, has a value, and the labels are consistent.\n"+
			"With --output json the progress goes to stderr and the result to stdout as one JSON object.", stdout)
	var a cli.AWS
	a.Register(c.Flags)
	wait := c.Flags.Bool("wait", false, "follow the rotation until the new version is AWSCURRENT, then check the result")
	timeout := c.Flags.Duration("timeout", 5*time.Minute, "with --wait: give up after this long")
	queue := c.Flags.String("queue-url", "", "with --wait: an SQS queue subscribed to the notification topic, to show each step's outcome and the error of a failed attempt")
	var output cli.Output
	cli.RegisterOutput(c.Flags, &output, cli.Table, cli.JSON)
	pos, err := c.Parse(args, 1)
	if err != nil {
		return err
	}
	cfg, err := a.Config(ctx)
	if err != nil {
		return err
	}
	sm := secretsmanager.NewFromConfig(cfg)
	var q queueReader
	if *queue != "" {
		q = awscall.NewSQS(cfg)
	}
	progress := stdout
	if output == cli.JSON {
		progress = stderr
	}
	res, err := rotateNow(ctx, sm, q, *queue, pos[0], *wait, *timeout, progress)
	if output == cli.JSON && res != nil {
		if err != nil {
			res.Error = err.Error()
		}
		if jerr := cli.WriteJSON(stdout, res); jerr != nil && err == nil {
			err = jerr
		}
	}
	return err
}

// nowResult is what `rotate now` reports (the JSON of --output json).
type nowResult struct {
	ARN        string `json:"arn"`
	VersionID  string `json:"versionId"`
	Waited     bool   `json:"waited"`
	Result     string `json:"result"` // started, succeeded, failed
	DurationMs int64  `json:"durationMs"`
	Error      string `json:"error,omitempty"`
}

// queueReader is what `now --wait --queue-url` uses of SQS.
type queueReader interface {
	Receive(ctx context.Context, queueURL string) ([]awscall.Message, error)
	Delete(ctx context.Context, queueURL, receiptHandle string) error
}

// nowClient is what `rotate now` uses of Secrets Manager.
type nowClient interface {
	stateClient
	RotateSecret(ctx context.Context, in *secretsmanager.RotateSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error)
}

// rotateNow starts a rotation and, with wait, follows it.
// rotateNow starts a rotation and, with wait, follows it and checks the
// result. The result is nil only when RotateSecret itself failed.
func rotateNow(ctx context.Context, sm nowClient, q queueReader, queueURL, secret string, wait bool, timeout time.Duration, out io.Writer) (*nowResult, error) {
	start := time.Now()
	r, err := sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(secret), RotateImmediately: aws.Bool(true)})
	if err != nil {
		var ir *smtypes.InvalidRequestException
		if errors.As(err, &ir) {
			return nil, fmt.Errorf("%w\n  hint: 'rotate status %s' shows whether a previous rotation is stuck", operator.Explain("RotateSecret", err), secret)
		}
		return nil, operator.Explain("RotateSecret", err)
	}
	token := aws.ToString(r.VersionId)
	res := &nowResult{ARN: aws.ToString(r.ARN), VersionID: token, Waited: wait, Result: "started"}
	fmt.Fprintf(out, "rotation started: %s version %s\n", res.ARN, token)
	if !wait {
		return res, nil
	}
	f := &follower{sm: sm, q: q, queueURL: queueURL, arn: res.ARN, token: token, out: out, start: start}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = f.follow(wctx)
	if err == nil {
		f.setPhase("checking the result: AWSCURRENT has a value, the labels are consistent")
		err = checkResult(ctx, sm, res.ARN, token)
	}
	res.DurationMs = time.Since(start).Milliseconds()
	if err != nil {
		res.Result = "failed"
		return res, err
	}
	res.Result = "succeeded"
	fmt.Fprintf(out, "rotation succeeded in %s\n", time.Since(start).Round(time.Millisecond))
	return res, nil
}

// checkResult verifies what a finished rotation must leave: the new version
// is the only AWSCURRENT and has a value, AWSPREVIOUS (if any) is on another
// version, and no other version holds AWSPENDING.
func checkResult(ctx context.Context, sm stateClient, arn, token string) error {
	s, err := loadState(ctx, sm, arn)
	if err != nil {
		return err
	}
	var problems []string
	for _, v := range s.Versions {
		switch {
		case v.ID != token && slices.Contains(v.Stages, operator.StageCurrent):
			problems = append(problems, fmt.Sprintf("version %s is also AWSCURRENT", v.ID))
		case v.ID != token && slices.Contains(v.Stages, operator.StagePending):
			problems = append(problems, fmt.Sprintf("version %s still holds AWSPENDING", v.ID))
		case v.ID == token && slices.Contains(v.Stages, operator.StagePrevious):
			problems = append(problems, fmt.Sprintf("the new version %s is also AWSPREVIOUS", v.ID))
		}
	}
	switch {
	case s.Current == nil || s.Current.ID != token:
		problems = append(problems, fmt.Sprintf("the new version %s is not AWSCURRENT", token))
	case !s.CurrentHasValue:
		problems = append(problems, fmt.Sprintf("the new version %s is AWSCURRENT but has no value: applications reading the secret fail", token))
	}
	if len(problems) > 0 {
		return fmt.Errorf("the rotation finished but the result is wrong: %s; 'rotate status %s' shows the labels", strings.Join(problems, "; "), s.Name)
	}
	return nil
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
	lastErr  *wire.Notification
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
		return false, operator.Explain("DescribeSecret", err)
	}
	stages, ok := d.VersionIdsToStages[f.token]
	switch {
	case !ok:
		return false, fmt.Errorf("version %s disappeared: the rotation was abandoned (someone wrote a new version mid-rotation?)", f.token)
	case slices.Contains(stages, operator.StageCurrent):
		f.setPhase("finishSecret done: the new version is AWSCURRENT")
		return true, nil
	case slices.Contains(stages, operator.StagePending):
		_, err := f.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(f.arn), VersionId: aws.String(f.token), VersionStage: aws.String(operator.StagePending)})
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
	msgs, err := f.q.Receive(ctx, f.queueURL)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("read notifications: %w", err)
	}
	for _, m := range msgs {
		n, ok := wire.ParseNotification(m.Body)
		if !ok || n.VersionID != f.token {
			continue
		}
		_ = f.q.Delete(ctx, f.queueURL, m.ReceiptHandle)
		switch n.Event {
		case wire.EventFailed:
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
