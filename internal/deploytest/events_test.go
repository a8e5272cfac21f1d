package deploytest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// eventFunctions are the functions that get Secrets Manager's step events.
var eventFunctions = []string{"dbrotate", "jwtrotate", "apikeyrotate"}

const fakeAccount = "123456789012"

func TestStepEventsParseAsTheEngineParsesThem(t *testing.T) {
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "events", "*", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no step events under events/*/: %v", err)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(rel, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := rotation.ParseEvent(raw)
			if err != nil {
				t.Fatalf("rotation.ParseEvent: %v", err)
			}
			if want := strings.TrimSuffix(filepath.Base(f), ".json"); string(ev.Step) != want {
				t.Errorf("file %s holds Step %q", rel, ev.Step)
			}
			if !strings.HasPrefix(ev.SecretID, "arn:aws:secretsmanager:") || !strings.Contains(ev.SecretID, ":"+fakeAccount+":secret:") {
				t.Errorf("SecretId must be a secret ARN in the example account %s, got %q", fakeAccount, ev.SecretID)
			}
			// The service's steps carry a RotationToken; the suite's own
			// read-only probe (sent by operators, naming the AWSCURRENT
			// version) does not.
			if ev.Step != rotation.StepProbe && (ev.RotationToken == "" || !strings.Contains(ev.RotationToken, "EXAMPLE")) {
				t.Errorf("RotationToken must be present (newer invocations send it) and obviously fake")
			}
			// Exactly the service's four fields, nothing else.
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(raw, &fields); err != nil {
				t.Fatal(err)
			}
			for k := range fields {
				switch k {
				case "Step", "SecretId", "ClientRequestToken", "RotationToken":
				default:
					t.Errorf("field %q is not in the shape Secrets Manager sends", k)
				}
			}
		})
	}
}

func TestStepEventsCoverEveryFunctionAndStep(t *testing.T) {
	root := repoRoot(t)
	fns := append([]string(nil), eventFunctions...)
	// Any function added under functions/ needs events too.
	if dirs, err := os.ReadDir(filepath.Join(root, "functions")); err == nil {
		for _, d := range dirs {
			if d.IsDir() && !contains(fns, d.Name()) {
				fns = append(fns, d.Name())
			}
		}
	}
	for _, fn := range fns {
		var tokens []string
		for _, step := range rotation.Steps {
			f := filepath.Join(root, "events", fn, string(step)+".json")
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Errorf("missing events/%s/%s.json", fn, step)
				continue
			}
			if ev, err := rotation.ParseEvent(raw); err == nil {
				tokens = append(tokens, ev.SecretID+" "+ev.ClientRequestToken)
			}
		}
		if _, err := os.Stat(filepath.Join(root, "events", fn, string(rotation.StepProbe)+".json")); err != nil {
			t.Errorf("missing events/%s/%s.json (the read-only probe)", fn, rotation.StepProbe)
		}
		// The four steps of one rotation share the secret and the token.
		for _, tok := range tokens[min(1, len(tokens)):] {
			if tok != tokens[0] {
				t.Errorf("events/%s: the four steps must name the same secret and ClientRequestToken", fn)
				break
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestManualRotateEventIsTheTriggerInputNotAStepEvent(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "events", "manual-rotate.json"))
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		SecretID          string `json:"SecretId"`
		RotateImmediately *bool  `json:"RotateImmediately"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		t.Fatalf("manual-rotate.json: %v", err)
	}
	if !strings.HasPrefix(in.SecretID, "arn:aws:secretsmanager:") || in.RotateImmediately == nil {
		t.Errorf("manual-rotate.json needs SecretId (a secret ARN) and RotateImmediately, got %+v", in)
	}
	if _, err := rotation.ParseEvent(raw); err == nil {
		t.Error("manual-rotate.json parses as a step event; it must not be mistaken for one")
	}
}
