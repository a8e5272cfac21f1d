package awscall

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// InvokeResult is a synchronous invocation's outcome: FunctionError is
// Lambda's X-Amz-Function-Error ("Unhandled" when the handler failed), ""
// on success; Payload is the function's response or error document.
type InvokeResult struct {
	FunctionError string
	Payload       []byte
}

// Lambda invokes functions with Lambda's Invoke API (RequestResponse).
type Lambda struct {
	c        client
	endpoint string
}

// NewLambda returns a Lambda for cfg's credentials and region. endpoint, if
// not "", is where requests go (the runtime emulator's URL for a local
// function); else AWS_ENDPOINT_URL_LAMBDA, AWS_ENDPOINT_URL, or Lambda's
// regional endpoint.
func NewLambda(cfg aws.Config, endpoint string) *Lambda {
	ep := explicitEndpoint(cfg, "LAMBDA", endpoint)
	if ep == "" {
		ep = regional("lambda", cfg.Region)
	}
	return &Lambda{c: newClient(cfg, "lambda"), endpoint: strings.TrimSuffix(ep, "/")}
}

// Invoke runs function (a name, ARN or partial ARN) with payload and waits
// for its result. An error is a failed call (the function did not run, or
// its result is unknown); a function's own error is a result with
// FunctionError set.
func (l *Lambda) Invoke(ctx context.Context, function string, payload []byte) (*InvokeResult, error) {
	if function == "" {
		return nil, fmt.Errorf("lambda:Invoke: no function name")
	}
	u := l.endpoint + "/2015-03-31/functions/" + url.PathEscape(function) + "/invocations"
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Amz-Invocation-Type", "RequestResponse")
	resp, err := l.c.do(ctx, http.MethodPost, u, h, payload)
	if err != nil {
		return nil, fmt.Errorf("lambda:Invoke: %w", err)
	}
	if resp.status/100 != 2 {
		return nil, fmt.Errorf("lambda:Invoke: %s", apiError(resp))
	}
	return &InvokeResult{FunctionError: resp.header.Get("X-Amz-Function-Error"), Payload: resp.body}, nil
}

// apiError is an AWS error response as "Code: message". REST services name
// the code in X-Amzn-ErrorType ("Code:namespace"), JSON services in
// "__type" ("namespace#Code"); the message is "message" or "Message".
func apiError(resp *response) string {
	var doc struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
		Upper   string `json:"Message"`
	}
	_ = json.Unmarshal(resp.body, &doc)
	code := resp.header.Get("X-Amzn-ErrorType")
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	if code == "" && doc.Type != "" {
		code = doc.Type[strings.LastIndexByte(doc.Type, '#')+1:]
	}
	if code == "" {
		code = http.StatusText(resp.status)
	}
	msg := doc.Message
	if msg == "" {
		msg = doc.Upper
	}
	if msg == "" {
		return fmt.Sprintf("%s (HTTP %d)", code, resp.status)
	}
	return fmt.Sprintf("%s: %s (HTTP %d)", code, msg, resp.status)
}

// Endpoint is where Invoke sends requests.
func (l *Lambda) Endpoint() string { return l.endpoint }
