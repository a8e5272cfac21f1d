package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Invoke runs one step event through the function with the Lambda Invoke API
// and returns a *StepError if the function reported an error.
func Invoke(ctx context.Context, lam LambdaAPI, function string, ev Event) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	out, err := lam.Invoke(ctx, function, payload)
	if err != nil {
		return fmt.Errorf("%s: %w", ev.Step, err)
	}
	var doc struct {
		Type    *string `json:"errorType"`
		Message *string `json:"errorMessage"`
	}
	isDoc := json.Unmarshal(out.Payload, &doc) == nil && (doc.Type != nil || doc.Message != nil)
	if out.FunctionError == "" && !isDoc && !strings.HasPrefix(string(out.Payload), "Task timed out") {
		return nil
	}
	se := &StepError{Step: ev.Step, Type: aws.ToString(doc.Type), Message: aws.ToString(doc.Message)}
	if !isDoc {
		se.Type, se.Message = out.FunctionError, strings.TrimSpace(string(out.Payload))
	}
	return se
}
