package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

const echoPkg = "./internal/testenv/testdata/echo"

func startEcho(t *testing.T, env ...string) *RIE {
	t.Helper()
	bs, err := BuildBootstrap(echoPkg)
	Require(t, err)
	start := time.Now()
	r, err := StartRIE(bs, env)
	Require(t, err)
	t.Logf("RIE listening after %v", time.Since(start))
	t.Cleanup(r.Stop)
	return r
}

type echoReply struct {
	Said        string `json:"said"`
	Env         string `json:"env"`
	HasDeadline bool   `json:"hasDeadline"`
	PID         int    `json:"pid"`
}

func invokeEcho(t *testing.T, r *RIE, event string) (echoReply, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	body, err := r.Invoke(ctx, []byte(event))
	var rep echoReply
	if err == nil {
		if jerr := json.Unmarshal(body, &rep); jerr != nil {
			t.Fatalf("response %q: %v", body, jerr)
		}
	}
	return rep, err
}

func TestRIEInvokesTheBootstrapAndPassesTheEnvironment(t *testing.T) {
	r := startEcho(t, "ECHO_PROBE=from-testenv", "AWS_LAMBDA_FUNCTION_TIMEOUT=30")
	start := time.Now()
	rep, err := invokeEcho(t, r, `{"say":"hello","env":"ECHO_PROBE"}`)
	if err != nil {
		t.Fatalf("invoke: %v\nlogs:\n%s", err, r.Logs())
	}
	t.Logf("first (cold) invoke took %v", time.Since(start))
	if rep.Said != "hello" || rep.Env != "from-testenv" || !rep.HasDeadline {
		t.Fatalf("reply %+v: want said=hello env=from-testenv with a deadline", rep)
	}
	start = time.Now()
	rep2, err := invokeEcho(t, r, `{"say":"again"}`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second (warm) invoke took %v", time.Since(start))
	if rep2.PID != rep.PID {
		t.Fatalf("the second invoke ran in a new process (%d then %d); want a warm environment", rep.PID, rep2.PID)
	}
	// The function's output reaches the emulator's log through a pipe and may
	// arrive after the invoke's response: wait for it (bounded).
	for _, want := range []string{"echo stdout: hello", "echo stderr: hello", "echo stdout: again"} {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(r.Logs(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("logs miss %q after 10 s:\n%s", want, r.Logs())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestRIEFunctionErrorIsAGoErrorDespiteHTTP200(t *testing.T) {
	r := startEcho(t)
	_, err := invokeEcho(t, r, `{"say":"x","fail":"boom: nothing to rotate"}`)
	var fe *FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("want *FunctionError, got %v", err)
	}
	if fe.Message != "boom: nothing to rotate" || fe.Type == "" {
		t.Fatalf("got %+v", fe)
	}
	// The environment stays usable after a function error.
	if rep, err := invokeEcho(t, r, `{"say":"after"}`); err != nil || rep.Said != "after" {
		t.Fatalf("invoke after a function error: %+v, %v", rep, err)
	}
}

func TestRIEPanicIsAFunctionError(t *testing.T) {
	r := startEcho(t)
	_, err := invokeEcho(t, r, `{"say":"x","panic":true}`)
	if !IsFunctionError(err) {
		t.Fatalf("want a function error for a panic, got %v\nlogs:\n%s", err, r.Logs())
	}
}

func TestRIETimeoutIsAFunctionError(t *testing.T) {
	r := startEcho(t, "AWS_LAMBDA_FUNCTION_TIMEOUT=1")
	_, err := invokeEcho(t, r, `{"say":"slow","sleepMillis":5000}`)
	if !IsFunctionError(err) {
		t.Fatalf("want a function error for a timeout, got %v", err)
	}
}

func TestRIEStopEndsTheFunctionProcess(t *testing.T) {
	r := startEcho(t)
	rep, err := invokeEcho(t, r, `{"say":"pid"}`)
	if err != nil {
		t.Fatal(err)
	}
	r.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(rep.PID, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("function process %d still alive after Stop", rep.PID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBuildBootstrapIsCachedPerPackage(t *testing.T) {
	a, err := BuildBootstrap(echoPkg)
	Require(t, err)
	b, err := BuildBootstrap(echoPkg)
	if err != nil || a != b {
		t.Fatalf("second build: %q, %v; want the cached %q", b, err, a)
	}
	if _, err := BuildBootstrap("./internal/testenv/testdata/nonexistent"); err == nil {
		t.Fatal("building a missing package succeeded")
	}
}

func TestFunctionErrorRecognisesOnlyLambdaErrorDocuments(t *testing.T) {
	cases := map[string]bool{
		`{"errorType":"T","errorMessage":"m"}`:                 true,
		`{"errorMessage":"m","errorType":"T","stackTrace":[]}`: true,
		`{"errorMessage":"m","said":"x"}`:                      false,
		`{"said":"x"}`:                                         false,
		`"errorMessage"`:                                       false,
		`null`:                                                 false,
	}
	for body, want := range cases {
		if got := functionError([]byte(body)) != nil; got != want {
			t.Errorf("%s: function error = %v, want %v", body, got, want)
		}
	}
}
