package operator_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/rotation-suite/rotation/internal/operator"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// The operator keeps its own copy of the step and stage names so that the
// operator tool does not link the engine; they must be the engine's.
func TestStepAndStageNamesAreTheEngines(t *testing.T) {
	steps := map[operator.Step]rotation.Step{
		operator.StepCreate: rotation.StepCreate, operator.StepSet: rotation.StepSet,
		operator.StepTest: rotation.StepTest, operator.StepFinish: rotation.StepFinish,
		operator.StepProbe: rotation.StepProbe,
	}
	for o, r := range steps {
		if string(o) != string(r) {
			t.Errorf("operator step %q, engine step %q", o, r)
		}
	}
	var ours []string
	for _, s := range operator.Steps {
		ours = append(ours, string(s))
	}
	var theirs []string
	for _, s := range rotation.Steps {
		theirs = append(theirs, string(s))
	}
	if !slices.Equal(ours, theirs) {
		t.Errorf("operator.Steps %v, rotation.Steps %v", ours, theirs)
	}
	for o, r := range map[string]string{operator.StageCurrent: rotation.StageCurrent, operator.StagePending: rotation.StagePending, operator.StagePrevious: rotation.StagePrevious} {
		if o != r {
			t.Errorf("operator stage %q, engine stage %q", o, r)
		}
	}
}

// What the operator sends must parse, field for field, as the event the
// engine reads.
func TestOperatorEventParsesAsTheEnginesEvent(t *testing.T) {
	for _, s := range append(slices.Clone(operator.Steps), operator.StepProbe) {
		ev := operator.Event{Step: s, SecretID: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-AbCdEf", ClientRequestToken: "6a3c1a76-2f1e-4c9e-9f0a-7d1b2c3d4e5f"}
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := rotation.ParseEvent(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if string(got.Step) != string(ev.Step) || got.SecretID != ev.SecretID || got.ClientRequestToken != ev.ClientRequestToken {
			t.Fatalf("sent %+v, engine read %+v", ev, got)
		}
	}
}
