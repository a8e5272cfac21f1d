package rotation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// NotificationSchemaVersion is the version of the Notification JSON schema.
const NotificationSchemaVersion = 1

// Notification events.
const (
	EventStarted          = "rotation.started"   // createSecret stored a new pending value
	EventSucceeded        = "rotation.succeeded" // finishSecret moved AWSCURRENT to the new version: once per promotion
	EventFailed           = "rotation.failed"    // any step failed
	EventWarning          = "rotation.warning"   // a step succeeded with warnings
	EventConfigTestPassed = "configtest.passed"  // testSecret on an empty pending version passed
	EventConfigTestFailed = "configtest.failed"  // …and failed
)

// Notification is the one JSON message published per notable step outcome.
// It never carries a secret value or the RotationToken.
type Notification struct {
	SchemaVersion int               `json:"schemaVersion"`
	Event         string            `json:"event"`
	Kind          string            `json:"kind"`
	Function      string            `json:"function,omitempty"`
	SecretARN     string            `json:"secretArn"`
	VersionID     string            `json:"versionId"`
	Step          string            `json:"step"`
	Outcome       string            `json:"outcome"` // "success" or "failure"
	DurationMs    int64             `json:"durationMs"`
	ErrorClass    string            `json:"errorClass,omitempty"`
	Retryable     bool              `json:"retryable,omitempty"`
	Message       string            `json:"message,omitempty"` // redacted
	ConfigTest    bool              `json:"configTest,omitempty"`
	Warnings      []string          `json:"warnings,omitempty"`
	Details       map[string]string `json:"details,omitempty"`
	Time          time.Time         `json:"time"`
}

// Notifier publishes rotation notifications.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, n Notification) error

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, n Notification) error { return f(ctx, n) }

// SNSPublisher is the subset of the SNS client SNSNotifier uses.
type SNSPublisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// SNSNotifier publishes notifications to one SNS topic, with message
// attributes (event, kind, outcome, step; an empty one is left out) for
// subscription filter policies.
// For a FIFO topic (ARN ending in .fifo) it sets the group id to the secret
// ARN and a deduplication id derived from token, step and event.
type SNSNotifier struct {
	Client   SNSPublisher
	TopicARN string
}

// Notify publishes n.
func (s *SNSNotifier) Notify(ctx context.Context, n Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return err
	}
	attr := func(v string) snstypes.MessageAttributeValue {
		return snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	attrs := map[string]snstypes.MessageAttributeValue{}
	for k, v := range map[string]string{"event": n.Event, "kind": n.Kind, "outcome": n.Outcome, "step": n.Step} {
		if v != "" { // SNS refuses an empty attribute value (a step unknown at cold start)
			attrs[k] = attr(v)
		}
	}
	in := &sns.PublishInput{
		TopicArn:          aws.String(s.TopicARN),
		Message:           aws.String(string(body)),
		MessageAttributes: attrs,
	}
	if strings.HasSuffix(s.TopicARN, ".fifo") {
		sum := sha256.Sum256([]byte(n.VersionID + "\x00" + n.Step + "\x00" + n.Event))
		in.MessageGroupId = aws.String(n.SecretARN)
		in.MessageDeduplicationId = aws.String(hex.EncodeToString(sum[:]))
	}
	return Call(ctx, "sns:Publish", func(ctx context.Context) error {
		_, err := s.Client.Publish(ctx, in)
		return err
	})
}

// notify builds and sends the step's notification, if any. A failed publish
// is logged and never fails the rotation.
func (rep *Reporter) notify(ctx context.Context, r *run, dur time.Duration, re *Error) {
	if rep.Notifier == nil || r.ev.Step == StepProbe {
		return // a probe is an operator's question, answered by its result
	}
	n := Notification{
		SchemaVersion: NotificationSchemaVersion, Kind: rep.Kind, Function: rep.FunctionName,
		SecretARN: r.arn, VersionID: r.ev.ClientRequestToken, Step: string(r.ev.Step), Outcome: "success",
		DurationMs: dur.Milliseconds(), ConfigTest: r.configTest, Warnings: r.report.Warnings, Details: r.report.Details,
		Time: rep.Now().UTC(),
	}
	if re != nil && r.promoted {
		// AWSCURRENT moved and then the after-finish action failed: two
		// events, the promotion (its one rotation.succeeded) and the failure.
		ok := n
		ok.Event, ok.Warnings, ok.Details = EventSucceeded, nil, nil
		rep.publish(ctx, r, ok)
	}
	switch {
	case re != nil:
		n.Outcome, n.ErrorClass, n.Retryable, n.Message = "failure", string(re.Class), re.Retryable, re.Error()
		n.Event = EventFailed
		if r.configTest {
			n.Event = EventConfigTestFailed
		}
	case r.configTest:
		n.Event = EventConfigTestPassed
	case r.started:
		n.Event = EventStarted
	case r.promoted:
		n.Event = EventSucceeded
	case len(r.report.Warnings) > 0:
		n.Event = EventWarning
	default:
		return
	}
	rep.publish(ctx, r, n)
}

func (rep *Reporter) publish(ctx context.Context, r *run, n Notification) {
	if err := rep.Notifier.Notify(ctx, n); err != nil {
		rep.Logger.WarnContext(ctx, "notification not published; the rotation goes on", "secretArn", r.arn, "event", n.Event, "error", r.red.Redact(err.Error()))
	}
}
