package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/rotation-suite/rotation/internal/cli"
	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/internal/wire"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// demo runs every function on an embedded local stack and checks what a
// user would check by hand. Every check that fails is collected; the demo
// exits non-zero if any did.
type demo struct {
	out      io.Writer
	start    time.Time
	failures []string
	passes   int

	*testenv.Stack // moto, PostgreSQL, the Secrets Manager client
	kmsc           *kms.Client
	sqsc           *sqs.Client
	queue          string
	topic          string
	lambda         string
	kmsKey         string
	env            []string // common function environment

	cleanups []func()
}

func cmdDemo(ctx context.Context, args []string, out io.Writer) error {
	cmd := cli.New("devtool demo", "", "Runs every function on an embedded local stack (moto, PostgreSQL, the Lambda runtime emulator) and checks what a\nuser would check by hand.", out)
	if _, err := cmd.Parse(args, 0); err != nil {
		return err
	}
	d := &demo{out: out, start: time.Now()}
	defer d.cleanup()
	err := d.run(ctx)
	d.line("")
	if err != nil {
		d.failures = append(d.failures, "demo aborted: "+err.Error())
	}
	if len(d.failures) > 0 {
		fmt.Fprintf(out, "DEMO FAILED: %d of %d checks failed (%s):\n", len(d.failures), len(d.failures)+d.passes, time.Since(d.start).Round(100*time.Millisecond))
		for _, f := range d.failures {
			fmt.Fprintf(out, "  ✗ %s\n", f)
		}
		return fmt.Errorf("%d check(s) failed", len(d.failures))
	}
	fmt.Fprintf(out, "DEMO PASSED: all %d checks passed in %s; everything it started is stopped.\n", d.passes, time.Since(d.start).Round(100*time.Millisecond))
	return nil
}

func (d *demo) line(format string, a ...any) { fmt.Fprintf(d.out, format+"\n", a...) }

func (d *demo) section(title string) {
	d.line("\n== %s  [%.1fs]", title, time.Since(d.start).Seconds())
}

// check records one named check.
func (d *demo) check(name string, err error) bool {
	if err != nil {
		d.failures = append(d.failures, name+": "+err.Error())
		d.line("  ✗ %s: %v", name, err)
		return false
	}
	d.passes++
	d.line("  ✓ %s", name)
	return true
}

func (d *demo) run(ctx context.Context) error {
	d.section("Starting the local stack: moto (AWS APIs), PostgreSQL (scram-sha-256, TLS), Lambda runtime emulator")
	if err := d.startStack(ctx); err != nil {
		return err
	}
	if err := d.seedAWS(ctx); err != nil {
		return err
	}
	if err := d.dbDemo(ctx); err != nil {
		return err
	}
	if err := d.jwtDemo(ctx); err != nil {
		return err
	}
	if err := d.apikeyDemo(ctx); err != nil {
		return err
	}
	d.notifications(ctx)
	return nil
}

func (d *demo) startStack(ctx context.Context) error {
	o := testenv.StackOptions{Postgres: true, RIE: true}
	for _, f := range functionNames {
		o.Bootstraps = append(o.Bootstraps, "./functions/"+f)
	}
	s, err := testenv.StartStack(ctx, o)
	var me *testenv.MissingError
	if errors.As(err, &me) {
		return fmt.Errorf("%s\n  install it with: %s", me.What, me.Fix)
	}
	if err != nil {
		return err
	}
	d.Stack = s
	d.stopLater(s.Stop)
	d.line("  moto at %s; PostgreSQL %s:%d (TLS, server name %q); functions built for the runtime emulator", d.Moto.Endpoint, d.Postgres.Host, d.Postgres.Port, d.Postgres.ServerName)
	return nil
}

// stopLater registers a clean-up that cmdDemo runs, newest first, however
// the demo ends.
func (d *demo) stopLater(f func()) { d.cleanups = append(d.cleanups, f) }

func (d *demo) cleanup() {
	for i := len(d.cleanups) - 1; i >= 0; i-- {
		d.cleanups[i]()
	}
	d.cleanups = nil
}

func (d *demo) seedAWS(ctx context.Context) error {
	cfg, err := d.Moto.AWSConfig(ctx)
	if err != nil {
		return err
	}
	d.kmsc = kms.NewFromConfig(cfg)
	d.sqsc = sqs.NewFromConfig(cfg)
	snsc := sns.NewFromConfig(cfg)
	key, err := d.kmsc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("demo: JWT private keys")})
	if err != nil {
		return fmt.Errorf("create KMS key: %w", err)
	}
	d.kmsKey = aws.ToString(key.KeyMetadata.Arn)
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("rotation-notifications")})
	if err != nil {
		return err
	}
	d.topic = aws.ToString(topic.TopicArn)
	q, err := d.sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("rotation-notifications")})
	if err != nil {
		return err
	}
	d.queue = aws.ToString(q.QueueUrl)
	qa, err := d.sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return err
	}
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(qa.Attributes["QueueArn"])}); err != nil {
		return err
	}
	if d.lambda, err = d.Moto.RegisterNoopLambda(ctx, "demo-rotation"); err != nil {
		return err
	}
	d.env = append(d.Moto.Env(), "SNS_TOPIC_ARN="+d.topic, "LOG_LEVEL=warn")
	d.line("  KMS key %s, SNS topic %s → SQS queue", short(d.kmsKey), short(d.topic))
	return nil
}

func short(arn string) string {
	if i := strings.LastIndexAny(arn, ":/"); i >= 0 && i < len(arn)-1 {
		return "…" + arn[i:]
	}
	return arn
}

// rotate rotates one secret through a function under the runtime emulator,
// the way `rotate local` does, printing each step with its time.
func (d *demo) rotate(ctx context.Context, rie *testenv.RIE, label, arn string) error {
	d.line("  rotating %s", label)
	drv := &driver.Driver{SM: d.SM, Invoke: rie, LambdaARN: d.lambda, Attempts: 1, OnStep: func(s driver.StepResult) {
		status := "ok"
		if s.Err != nil {
			status = "FAILED: " + s.Err.Error()
		}
		d.line("      %-13s %7.1f ms  %s", s.Step, float64(s.Duration.Microseconds())/1000, status)
	}}
	res, err := drv.Rotate(ctx, arn, "")
	if err != nil {
		d.line("%s", indent(rie.Logs(), "      function log | ", 15))
		return err
	}
	d.line("      → version %s is AWSCURRENT (%s)", res.Token[:8], res.Duration.Round(time.Millisecond))
	return nil
}

func (d *demo) startFunction(name string, extra ...string) (*testenv.RIE, error) {
	rie, err := startFunction(name, append(append([]string{}, d.env...), extra...))
	if err != nil {
		return nil, err
	}
	d.stopLater(rie.Stop)
	return rie, nil
}

func expectErr(err error, msg string) error {
	if err == nil {
		return errors.New(msg)
	}
	return nil
}

func (d *demo) notifications(ctx context.Context) {
	d.section("Notifications received on the SQS queue subscribed to the SNS topic")
	counts := map[string]int{}
	total := 0
	for i := 0; i < 20; i++ {
		out, err := d.sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(d.queue), MaxNumberOfMessages: 10})
		if err != nil || len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			if n, ok := wire.ParseNotification(aws.ToString(m.Body)); ok {
				counts[n.Kind+" "+n.Event]++
				total++
			}
			_, _ = d.sqsc.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(d.queue), ReceiptHandle: m.ReceiptHandle})
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d.line("      %-32s ×%d", k, counts[k])
	}
	d.check(fmt.Sprintf("%d notifications received, none of them a failure", total), func() error {
		if total == 0 {
			return errors.New("no notification arrived")
		}
		for k := range counts {
			if strings.HasSuffix(k, rotation.EventFailed) {
				return fmt.Errorf("a failure was notified: %s", k)
			}
		}
		return nil
	}())
}
