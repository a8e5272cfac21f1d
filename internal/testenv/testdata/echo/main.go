// Command echo is a test-only Lambda function for internal/testenv's RIE
// tests: it echoes its event, prints to stdout/stderr, returns an error on
// request, and reports selected environment variables.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Say   string `json:"say"`
	Fail  string `json:"fail,omitempty"`
	Env   string `json:"env,omitempty"`
	Sleep int    `json:"sleepMillis,omitempty"`
	Panic bool   `json:"panic,omitempty"`
}

type reply struct {
	Said        string `json:"said"`
	Env         string `json:"env,omitempty"`
	HasDeadline bool   `json:"hasDeadline"`
	PID         int    `json:"pid"`
}

func handle(ctx context.Context, e event) (reply, error) {
	fmt.Println("echo stdout:", e.Say)
	fmt.Fprintln(os.Stderr, "echo stderr:", e.Say)
	if e.Sleep > 0 {
		select {
		case <-time.After(time.Duration(e.Sleep) * time.Millisecond):
		case <-ctx.Done():
			return reply{}, ctx.Err()
		}
	}
	if e.Panic {
		panic("echo asked to panic")
	}
	if e.Fail != "" {
		return reply{}, errors.New(e.Fail)
	}
	_, hasDeadline := ctx.Deadline()
	r := reply{Said: e.Say, HasDeadline: hasDeadline, PID: os.Getpid()}
	if e.Env != "" {
		r.Env = os.Getenv(e.Env)
	}
	return r, nil
}

func main() { lambda.Start(handle) }
