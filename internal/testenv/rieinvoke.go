package testenv

// Invoking a function under the emulator, and telling a function error
// from a transport error in its answer.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// FunctionError is an error the function returned (or a timeout): Lambda
// still answers HTTP 200, with {"errorType","errorMessage"} as the body.
type FunctionError struct {
	Type    string // errorType, e.g. "errorString" or "TerminalError"; "Timeout" for a timed-out invocation
	Message string // errorMessage
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("function error %s: %s", e.Type, e.Message)
}

// Invoke sends event to the function and returns the response body. A
// function error comes back as a *FunctionError (with the raw body); any
// other non-success as a plain error.
func (r *RIE) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	r.invokeMu.Lock()
	defer r.invokeMu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Endpoint+"/2015-03-31/functions/function/invocations", bytes.NewReader(event))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("testenv: invoke: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("testenv: invoke: read response: %w", err)
	}
	if fe := functionError(body); fe != nil {
		return body, fe
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("testenv: invoke: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	if bytes.HasPrefix(body, []byte("Task timed out after")) {
		return body, &FunctionError{Type: "Timeout", Message: string(body)}
	}
	return body, nil
}

// functionError recognises Lambda's error document: an object with
// errorType and/or errorMessage and nothing but the error fields.
func functionError(body []byte) *FunctionError {
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return nil
	}
	_, hasType := doc["errorType"]
	_, hasMsg := doc["errorMessage"]
	if !hasType && !hasMsg {
		return nil
	}
	for k := range doc {
		switch k {
		case "errorType", "errorMessage", "stackTrace", "cause", "requestId":
		default:
			return nil
		}
	}
	fe := &FunctionError{}
	_ = json.Unmarshal(doc["errorType"], &fe.Type)
	_ = json.Unmarshal(doc["errorMessage"], &fe.Message)
	return fe
}

// IsFunctionError reports whether err is (or wraps) a *FunctionError.
func IsFunctionError(err error) bool {
	var fe *FunctionError
	return errors.As(err, &fe)
}
