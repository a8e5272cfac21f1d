package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// emfDirective is the metric directive of an Embedded Metric Format line.
type emfDirective struct {
	Namespace  string
	Dimensions [][]string
	Metrics    []struct{ Name, Unit string }
}

// unreachable is a Secrets Manager that answers every call with an error.
type unreachable struct{ rotation.SecretsAPI }

func (unreachable) DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return nil, errors.New("connection refused")
}

// kindOnly is a strategy that is only asked its kind (the step fails first).
type kindOnly struct{ rotation.Strategy }

func (kindOnly) Kind() string { return "postgres" }

// emittedMetricLines runs the engine's two reporting paths under a Lambda
// function's environment — a failed step of an Engine, and a cold-start
// configuration error — and returns their EMF lines, decoded.
func emittedMetricLines(t *testing.T, functionName string) []M {
	t.Helper()
	t.Setenv("AWS_LAMBDA_FUNCTION_NAME", functionName) // as Lambda sets it: the function's name
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "events", "dbrotate", "createSecret.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	eng, err := rotation.New(rotation.Config{Secrets: unreachable{}, Strategy: kindOnly{}, Logger: log, Metrics: &out})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Invoke(context.Background(), raw); err == nil {
		t.Fatal("the step succeeded against an unreachable Secrets Manager")
	}
	cold := rotation.NewFailedHandler(rotation.Reporter{Logger: log, Metrics: &out},
		rotation.NewError(rotation.ClassConfiguration, "environment", "a required variable is unset", nil))
	if _, err := cold.Invoke(context.Background(), raw); err == nil {
		t.Fatal("the cold-start handler succeeded")
	}
	var docs []M
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var doc M
		if err := json.Unmarshal([]byte(l), &doc); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
		docs = append(docs, doc)
	}
	if len(docs) != 2 {
		t.Fatalf("want two EMF lines, got %d:\n%s", len(docs), out.String())
	}
	return docs
}

func directiveOf(t *testing.T, doc M) emfDirective {
	t.Helper()
	b, _ := json.Marshal(doc["_aws"].(M)["CloudWatchMetrics"])
	var ds []emfDirective
	if err := json.Unmarshal(b, &ds); err != nil || len(ds) != 1 {
		t.Fatalf("want one metric directive, got %s", b)
	}
	return ds[0]
}

// The values a dimension can take, where they are a fixed set.
var dimensionValues = map[string][]string{
	"Step": {"createSecret", "setSecret", "testSecret", "finishSecret", "probeSecret", "none"},
	"ErrorClass": {"none", string(rotation.ClassInput), string(rotation.ClassConfiguration), string(rotation.ClassState),
		string(rotation.ClassNetwork), string(rotation.ClassTLS), string(rotation.ClassAuthentication), string(rotation.ClassPermission),
		string(rotation.ClassThrottling), string(rotation.ClassDependency), string(rotation.ClassTimeout)},
	"Kind": {"postgres", "jwt", "apikey", "webhook", rotation.KindUnknown},
}

// An alarm on the engine's metrics matches nothing unless its namespace,
// metric and exact set of dimensions are ones the engine writes, and its
// FunctionName is the function's name. This reads the lines the engine
// emits and every alarm of every template, so the two cannot drift apart.
func TestAlarmsOnTheEngineMetricsMatchTheDimensionsItEmits(t *testing.T) {
	docs := emittedMetricLines(t, "app-dev-dbrotate")
	d := directiveOf(t, docs[0])
	if cold := directiveOf(t, docs[1]); !slices.EqualFunc(d.Dimensions, cold.Dimensions, slices.Equal[[]string]) || d.Namespace != cold.Namespace {
		t.Fatalf("a cold-start line has another directive than a step's: %+v vs %+v", cold, d)
	}
	for _, doc := range docs {
		for _, set := range d.Dimensions {
			for _, dim := range set {
				if v, _ := doc[dim].(string); v == "" {
					t.Errorf("dimension %s has no value in the line (EMF drops the metric)", dim)
				}
			}
		}
		if doc["FunctionName"] != "app-dev-dbrotate" {
			t.Errorf("FunctionName is %v, not the function's name", doc["FunctionName"])
		}
	}
	sets := map[string]bool{}
	for _, set := range d.Dimensions {
		s := slices.Clone(set)
		sort.Strings(s)
		sets[strings.Join(s, ",")] = true
	}
	units := map[string]string{}
	for _, m := range d.Metrics {
		units[m.Name] = m.Unit
	}

	py, err := pythonWithCfnLint()
	testenv.Require(t, err)
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "stacks", "*.yaml"))
	examples, _ := filepath.Glob(filepath.Join(root, "examples", "*", "template.yaml"))
	for _, f := range append(files, examples...) {
		rel, _ := filepath.Rel(root, f)
		t.Run(rel, func(t *testing.T) {
			src, _, err := dump(py, f)
			if err != nil {
				t.Fatal(err)
			}
			functions := resources(src, "AWS::Serverless::Function")
			for id, r := range resources(src, "AWS::Lambda::Function") {
				functions[id] = r
			}
			onEngine := 0
			for id, a := range resources(src, "AWS::CloudWatch::Alarm") {
				p := props(a)
				if p["Namespace"] != d.Namespace {
					continue
				}
				onEngine++
				if _, ok := units[p["MetricName"].(string)]; !ok {
					t.Errorf("%s: the engine writes no metric %v", id, p["MetricName"])
				}
				if u, ok := p["Unit"]; ok && u != units[p["MetricName"].(string)] {
					t.Errorf("%s: unit %v, the engine writes %s", id, u, units[p["MetricName"].(string)])
				}
				var names []string
				for _, dim := range list(p["Dimensions"]) {
					dim, _ := dim.(M)
					name, _ := dim["Name"].(string)
					names = append(names, name)
					switch allowed, fixed := dimensionValues[name]; {
					case name == "FunctionName":
						if _, ok := functions[refOf(dim["Value"])]; !ok {
							t.Errorf("%s: FunctionName must be !Ref of the template's function (the engine writes AWS_LAMBDA_FUNCTION_NAME), got %v", id, dim["Value"])
						}
					case fixed:
						if v, _ := dim["Value"].(string); !slices.Contains(allowed, v) {
							t.Errorf("%s: %s %v is not a value the engine writes (%v)", id, name, dim["Value"], allowed)
						}
					}
				}
				sort.Strings(names)
				if !sets[strings.Join(names, ",")] {
					t.Errorf("%s: dimensions %v are not a set the engine writes %v: the alarm would never see a datapoint", id, names, d.Dimensions)
				}
			}
			if strings.HasPrefix(rel, "stacks"+string(filepath.Separator)) && onEngine == 0 {
				t.Errorf("no alarm reads the engine's %s metrics", d.Namespace)
			}
		})
	}
}
