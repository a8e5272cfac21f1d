package rotation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// emfLine is one decoded Embedded Metric Format line.
type emfLine struct {
	raw  map[string]any
	Spec struct {
		Namespace  string
		Dimensions [][]string
		Metrics    []struct{ Name, Unit string }
	}
}

// emfLines decodes every line of out, and checks what CloudWatch requires of
// an EMF document: one metric directive, at most 30 dimensions per set, and
// every dimension a non-empty string member of the root object.
func emfLines(t *testing.T, out string) []emfLine {
	t.Helper()
	var lines []emfLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var doc struct {
			AWS struct {
				CloudWatchMetrics []json.RawMessage
			} `json:"_aws"`
		}
		var x emfLine
		if err := json.Unmarshal([]byte(l), &doc); err != nil || json.Unmarshal([]byte(l), &x.raw) != nil {
			t.Fatalf("not JSON: %v: %s", err, l)
		}
		if len(doc.AWS.CloudWatchMetrics) != 1 || json.Unmarshal(doc.AWS.CloudWatchMetrics[0], &x.Spec) != nil {
			t.Fatalf("want one metric directive: %s", l)
		}
		for _, set := range x.Spec.Dimensions {
			if len(set) == 0 || len(set) > 30 {
				t.Fatalf("dimension set %v: EMF allows 1 to 30 dimensions", set)
			}
			for _, d := range set {
				if v, _ := x.raw[d].(string); v == "" {
					t.Fatalf("dimension %s has no string value in the root object: %s", d, l)
				}
			}
		}
		lines = append(lines, x)
	}
	return lines
}

var wantDimensions = [][]string{{"FunctionName"}, {"FunctionName", "Step"}, {"FunctionName", "ErrorClass"}, {"Kind"}}

// Two stacks of one kind in one account (dev and prod) must not merge into
// one metric: the function's name and the strategy's kind are separate
// dimensions, and the sets an alarm needs exist.
func TestMetricsCarryTheFunctionNameAndTheKindAsSeparateDimensions(t *testing.T) {
	e := newEnv(t, func(c *rotation.Config) { c.FunctionName = "app-prod-rotate" })
	missing := "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-secret-AbCdEf"
	_ = e.step(missing, "11111111-2222-3333-4444-555555555555", rotation.StepCreate)
	lines := emfLines(t, e.metrics.String())
	if len(lines) != 1 {
		t.Fatalf("want one EMF line, got %d", len(lines))
	}
	l := lines[0]
	if l.Spec.Namespace != "SecretRotation" || !reflect.DeepEqual(l.Spec.Dimensions, wantDimensions) {
		t.Fatalf("namespace %q, dimensions %v", l.Spec.Namespace, l.Spec.Dimensions)
	}
	want := map[string]any{"FunctionName": "app-prod-rotate", "Kind": "test", "Step": "createSecret", "ErrorClass": "configuration", "StepFailures": 1.0, "secretArn": missing}
	for k, v := range want {
		if l.raw[k] != v {
			t.Errorf("%s = %v, want %v", k, l.raw[k], v)
		}
	}
	if _, ok := l.raw["Function"]; ok {
		t.Error("the old Function dimension is still written")
	}
	if n := e.notes.notes; len(n) != 1 || n[0].Function != "app-prod-rotate" || n[0].Kind != "test" {
		t.Fatalf("notifications %+v", n)
	}
}

// Outside Lambda, with no name configured, the function is "local".
func TestFunctionNameIsLocalOutsideLambda(t *testing.T) {
	t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "")
	var metrics bytes.Buffer
	notes := &recorder{}
	h := rotation.NewFailedHandler(rotation.Reporter{Kind: "test", Metrics: &metrics, Notifier: notes, Logger: discardLogger()}, errors.New("bad"))
	_, _ = h.Invoke(context.Background(), []byte(`{"Step":"setSecret","SecretId":"s","ClientRequestToken":"t"}`))
	if l := emfLines(t, metrics.String()); l[0].raw["FunctionName"] != rotation.LocalFunctionName {
		t.Fatalf("FunctionName %v", l[0].raw["FunctionName"])
	}
	if len(notes.notes) != 1 || notes.notes[0].Function != rotation.LocalFunctionName {
		t.Fatalf("notifications %+v", notes.notes)
	}
}
