package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rotation-suite/rotation/internal/testenv"
)

// fakeRuntime is a minimal Lambda Runtime API (the 2018-06-01 interface a
// provided.al2023 bootstrap polls): GET …/invocation/next hands out queued
// events, POST …/invocation/{id}/response and …/error complete them, POST
// …/init/error records a start-up failure. It serves one bootstrap process,
// one invocation at a time, as one Lambda execution environment does, and
// implements driver.Invoker so the local driver can run a rotation through
// the real binary.
type fakeRuntime struct {
	Addr string // host:port for AWS_LAMBDA_RUNTIME_API

	ln  net.Listener
	srv *http.Server

	// polls receives the time of every GET …/next as it arrives: the first
	// one marks the process ready for its first event.
	polls chan time.Time
	queue chan *invocation

	mu       sync.Mutex
	inflight map[string]*invocation
	seq      int // invocations queued
	nPolls   int // GET …/next requests seen
	initErr  string
	fnARN    string
}

type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	done     chan invokeResult
}

type invokeResult struct {
	body []byte
	err  error
}

// functionError is what the function reported through …/error.
type functionError struct{ Type, Message string }

func (e *functionError) Error() string { return "function error " + e.Type + ": " + e.Message }

func startFakeRuntime(functionName string) (*fakeRuntime, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rt := &fakeRuntime{
		Addr:     ln.Addr().String(),
		ln:       ln,
		polls:    make(chan time.Time, 64),
		queue:    make(chan *invocation),
		inflight: map[string]*invocation{},
		fnARN:    fmt.Sprintf("arn:aws:lambda:us-east-1:123456789012:function:%s", functionName),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", rt.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", rt.response)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", rt.error)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", rt.initError)
	rt.srv = &http.Server{Handler: mux}
	go func() { _ = rt.srv.Serve(ln) }()
	return rt, nil
}

func (rt *fakeRuntime) stop() { _ = rt.srv.Close() }

func (rt *fakeRuntime) next(w http.ResponseWriter, r *http.Request) {
	rt.mu.Lock()
	rt.nPolls++
	rt.mu.Unlock()
	select {
	case rt.polls <- time.Now():
	default:
	}
	var inv *invocation
	select {
	case inv = <-rt.queue:
	case <-r.Context().Done():
		return
	}
	rt.mu.Lock()
	rt.inflight[inv.id] = inv
	rt.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", rt.fnARN)
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
}

func (rt *fakeRuntime) complete(id string, res invokeResult) bool {
	rt.mu.Lock()
	inv, ok := rt.inflight[id]
	delete(rt.inflight, id)
	rt.mu.Unlock()
	if ok {
		inv.done <- res
	}
	return ok
}

func (rt *fakeRuntime) response(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if !rt.complete(r.PathValue("id"), invokeResult{body: body}) {
		http.Error(w, "unknown request id", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (rt *fakeRuntime) error(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	fe := &functionError{}
	var doc struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &doc) == nil {
		fe.Type, fe.Message = doc.ErrorType, doc.ErrorMessage
	} else {
		fe.Message = string(bytes.TrimSpace(body))
	}
	if !rt.complete(r.PathValue("id"), invokeResult{body: body, err: fe}) {
		http.Error(w, "unknown request id", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (rt *fakeRuntime) initError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rt.mu.Lock()
	rt.initErr = string(bytes.TrimSpace(body))
	rt.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// Invoke implements driver.Invoker: it queues the event for the process's
// next poll and waits for its response or error. The deadline the function
// sees is the context's (30 s without one), as Lambda passes its timeout.
func (rt *fakeRuntime) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	rt.mu.Lock()
	rt.seq++
	id := fmt.Sprintf("rotbench-%06d", rt.seq)
	rt.mu.Unlock()
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(30 * time.Second)
	}
	inv := &invocation{id: id, payload: payload, deadline: dl, done: make(chan invokeResult, 1)}
	select {
	case rt.queue <- inv:
	case <-ctx.Done():
		return nil, fmt.Errorf("the function did not poll for the event: %w", ctx.Err())
	}
	select {
	case res := <-inv.done:
		return res.body, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("the function did not answer: %w", ctx.Err())
	}
}

// waitPoll waits for the next GET …/next (or returns the one already seen).
func (rt *fakeRuntime) waitPoll(timeout time.Duration) (time.Time, error) {
	select {
	case t := <-rt.polls:
		return t, nil
	case <-time.After(timeout):
		rt.mu.Lock()
		ie := rt.initErr
		rt.mu.Unlock()
		if ie != "" {
			return time.Time{}, fmt.Errorf("the function reported an init error: %s", ie)
		}
		return time.Time{}, fmt.Errorf("the function did not poll the runtime API within %s", timeout)
	}
}

// waitIdle waits until the process polls again after its last invocation,
// i.e. it has finished everything it was given.
func (rt *fakeRuntime) waitIdle(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		rt.mu.Lock()
		idle := rt.nPolls > rt.seq
		rt.mu.Unlock()
		if idle {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the function did not poll again within %s of its last invocation", timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// drainPolls forgets polls seen so far.
func (rt *fakeRuntime) drainPolls() {
	for {
		select {
		case <-rt.polls:
		default:
			return
		}
	}
}

// bootstrapProc is a bootstrap process started against a fakeRuntime.
type bootstrapProc struct {
	proc    *testenv.Process
	rt      *fakeRuntime
	out     *testenv.Buffer
	started time.Time
}

// lambdaEnv is the environment a provided.al2023 function sees, reduced to
// what matters here, plus the function's own settings.
func lambdaEnv(rt *fakeRuntime, name string, extra []string) []string {
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"LANG=en_US.UTF-8",
		"TZ=:UTC",
		"AWS_LAMBDA_RUNTIME_API=" + rt.Addr,
		"AWS_LAMBDA_FUNCTION_NAME=" + name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"LAMBDA_TASK_ROOT=/var/task",
	}
	return append(env, extra...)
}

// startBootstrap execs bin with env and returns at once; started is taken
// just before the exec.
func startBootstrap(bin string, rt *fakeRuntime, env []string) (*bootstrapProc, error) {
	rt.drainPolls()
	p := &bootstrapProc{rt: rt, out: &testenv.Buffer{}}
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Dir = os.TempDir()
	cmd.Stdout, cmd.Stderr = p.out, p.out
	p.started = time.Now()
	proc, err := testenv.StartProcess(cmd)
	if err != nil {
		return nil, err
	}
	p.proc = proc
	return p, nil
}

// ready waits for the first poll and returns the time from exec to it.
func (p *bootstrapProc) ready(timeout time.Duration) (time.Duration, error) {
	t, err := p.rt.waitPoll(timeout)
	if err != nil {
		return 0, fmt.Errorf("%w; output: %s", err, lastLines(p.out.String(), 5))
	}
	return t.Sub(p.started), nil
}

// status reads a "Key: value kB" line of /proc/<pid>/status in bytes.
func (p *bootstrapProc) status(key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.proc.Pid()))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc status %s: unexpected %q", key, v)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		return n * 1024, err
	}
	return 0, errors.New("/proc status has no " + key)
}

func (p *bootstrapProc) kill() { p.proc.Kill() }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
