package rotation

import (
	"encoding/json"
	"fmt"
	"time"
)

// The CloudWatch metrics every step writes, as one Embedded Metric Format
// line (docs/operate.md#logs-and-metrics).
const (
	metricNamespace = "SecretRotation"

	dimFunctionName = "FunctionName" // the function's name, as in AWS/Lambda
	dimKind         = "Kind"         // the strategy's kind: postgres, jwt, apikey, webhook
	dimStep         = "Step"         // the step; "none" when the event did not parse
	dimErrorClass   = "ErrorClass"   // the failure's class; "none" for a success
)

// metricDimensions are the dimension sets of both metrics: per function (the
// one an alarm on a function's failures uses), per function and step, per
// function and error class, and per kind across functions (one account's dev
// and prod stacks of one kind together). Each set is well under EMF's limit
// of 30 dimensions, and every dimension is a member of the root object.
var metricDimensions = [][]string{
	{dimFunctionName},
	{dimFunctionName, dimStep},
	{dimFunctionName, dimErrorClass},
	{dimKind},
}

// emitMetrics writes one CloudWatch Embedded Metric Format line.
func (rep *Reporter) emitMetrics(r *run, dur time.Duration, re *Error) {
	if rep.Metrics == nil {
		return
	}
	failures := 0
	class := "none"
	if re != nil {
		failures = 1
		class = string(re.Class)
	}
	step := string(r.ev.Step)
	if step == "" {
		step = "none"
	}
	doc := map[string]any{
		"_aws": map[string]any{
			"Timestamp": rep.Now().UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  metricNamespace,
				"Dimensions": metricDimensions,
				"Metrics": []any{
					map[string]string{"Name": "StepDuration", "Unit": "Milliseconds"},
					map[string]string{"Name": "StepFailures", "Unit": "Count"},
				},
			}},
		},
		dimFunctionName: rep.FunctionName,
		dimKind:         rep.Kind,
		dimStep:         step,
		dimErrorClass:   class,
		"StepDuration":  float64(dur.Microseconds()) / 1000,
		"StepFailures":  failures,
		"secretArn":     r.arn,
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return
	}
	_, _ = fmt.Fprintf(rep.Metrics, "%s\n", b)
}
