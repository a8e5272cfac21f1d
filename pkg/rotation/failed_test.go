package rotation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// failedSetup is a FailedHandler with every sink recorded.
type failedSetup struct {
	h       *rotation.FailedHandler
	logs    bytes.Buffer
	metrics bytes.Buffer
	notes   recorder
}

func newFailed(t *testing.T, err error) *failedSetup {
	t.Helper()
	f := &failedSetup{}
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.h = rotation.NewFailedHandler(rotation.Reporter{FunctionName: "app-dev-dbrotate", Notifier: &f.notes, Metrics: &f.metrics,
		Logger: slog.New(slog.NewJSONHandler(&f.logs, nil)), Now: func() time.Time { return clock }}, err)
	return f
}

const coldToken = "rotation-token-must-stay-secret"

// A configuration error found at cold start is reported on every invocation
// as a failed step is: the same rotation.failed notification, the same
// metric line, naming the event's step and secret, and never its
// RotationToken.
func TestAColdStartConfigurationErrorIsReportedLikeAFailedStepOnEveryInvocation(t *testing.T) {
	f := newFailed(t, rotation.NewError(rotation.ClassConfiguration, "environment", "PASSWORD_LENGTH: not a number", nil))
	arn := "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf"
	ev := `{"Step":"createSecret","SecretId":"` + arn + `","ClientRequestToken":"0b5c1d8e-aaaa-bbbb-cccc-123456789012","RotationToken":"` + coldToken + `"}`
	for i := range 2 {
		_, err := f.h.Invoke(context.Background(), []byte(ev))
		var re *rotation.Error
		if !errors.As(err, &re) || re.Class != rotation.ClassConfiguration || re.Step != "createSecret" || re.Retryable {
			t.Fatalf("invocation %d: %#v", i, err)
		}
	}
	if len(f.notes.notes) != 2 {
		t.Fatalf("want one notification per invocation, got %d", len(f.notes.notes))
	}
	n := f.notes.notes[0]
	want := rotation.Notification{SchemaVersion: rotation.NotificationSchemaVersion, Event: rotation.EventFailed, Kind: rotation.KindUnknown,
		Function: "app-dev-dbrotate", SecretARN: arn, VersionID: "0b5c1d8e-aaaa-bbbb-cccc-123456789012", Step: "createSecret",
		Outcome: "failure", ErrorClass: "configuration", Message: n.Message, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if !reflect.DeepEqual(n, want) || !strings.Contains(n.Message, "PASSWORD_LENGTH: not a number") {
		t.Fatalf("notification\n got %+v\nwant %+v", n, want)
	}
	lines := emfLines(t, f.metrics.String())
	if len(lines) != 2 || !reflect.DeepEqual(lines[0].Spec.Dimensions, wantDimensions) {
		t.Fatalf("metric lines %s", f.metrics.String())
	}
	for k, v := range map[string]any{"FunctionName": "app-dev-dbrotate", "Kind": "unknown", "Step": "createSecret", "ErrorClass": "configuration", "StepFailures": 1.0, "secretArn": arn} {
		if lines[0].raw[k] != v {
			t.Errorf("metric %s = %v, want %v", k, lines[0].raw[k], v)
		}
	}
	if !strings.Contains(f.logs.String(), `"msg":"rotation step failed"`) || !strings.Contains(f.logs.String(), `"errorClass":"configuration"`) {
		t.Fatalf("log %s", f.logs.String())
	}
	notes, _ := json.Marshal(f.notes.notes)
	for what, s := range map[string]string{"log": f.logs.String(), "metrics": f.metrics.String(), "notifications": string(notes)} {
		if strings.Contains(s, coldToken) {
			t.Errorf("the RotationToken reached the %s", what)
		}
	}
}

// The cold-start line has the same directive as a failed step's: an alarm
// on one sees the other.
func TestAColdStartMetricLineHasTheStepsDirective(t *testing.T) {
	e := newEnv(t)
	_ = e.step("arn:aws:secretsmanager:us-east-1:123456789012:secret:none-AbCdEf", "11111111-2222-3333-4444-555555555555", rotation.StepCreate)
	f := newFailed(t, errors.New("no strategy"))
	_, _ = f.h.Invoke(context.Background(), []byte(`{"Step":"createSecret","SecretId":"s","ClientRequestToken":"t"}`))
	step, cold := emfLines(t, e.metrics.String())[0], emfLines(t, f.metrics.String())[0]
	if !reflect.DeepEqual(step.raw["_aws"].(map[string]any)["CloudWatchMetrics"], cold.raw["_aws"].(map[string]any)["CloudWatchMetrics"]) {
		t.Fatalf("directives differ:\n%v\n%v", step.raw["_aws"], cold.raw["_aws"])
	}
	for k := range step.raw {
		if _, ok := cold.raw[k]; !ok {
			t.Errorf("cold-start line lacks %s", k)
		}
	}
}

// An unclassified error is a configuration error; an event that does not
// parse is still counted (Step "none") and notified, without a step.
func TestAColdStartErrorWithAnUnparsableEventIsStillCountedAndNotified(t *testing.T) {
	f := newFailed(t, errors.New("strategy: no key"))
	_, err := f.h.Invoke(context.Background(), []byte(`{"Step":`))
	if rotation.ClassOf(err) != rotation.ClassConfiguration || !strings.Contains(err.Error(), "strategy: no key") {
		t.Fatalf("got %v", err)
	}
	l := emfLines(t, f.metrics.String())
	if l[0].raw["Step"] != "none" || l[0].raw["ErrorClass"] != "configuration" {
		t.Fatalf("metric %v", l[0].raw)
	}
	if len(f.notes.notes) != 1 || f.notes.notes[0].Step != "" || f.notes.notes[0].Event != rotation.EventFailed {
		t.Fatalf("notifications %+v", f.notes.notes)
	}
}

// A probe is answered by its result, at cold start as always: counted, not
// notified.
func TestAColdStartProbeIsCountedButNotNotified(t *testing.T) {
	f := newFailed(t, errors.New("bad"))
	_, _ = f.h.Invoke(context.Background(), []byte(`{"Step":"probeSecret","SecretId":"s","ClientRequestToken":"t"}`))
	if len(emfLines(t, f.metrics.String())) != 1 || len(f.notes.notes) != 0 {
		t.Fatalf("metrics %q, notifications %+v", f.metrics.String(), f.notes.notes)
	}
}
