package testenv

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
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

const rieModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

var (
	buildDirOnce sync.Once
	buildDir     string
	buildDirErr  error

	buildMu    sync.Mutex
	buildCache = map[string]*buildResult{}
)

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// binDir is the process's directory for built binaries, removed by Main.
func binDir() (string, error) {
	buildDirOnce.Do(func() {
		buildDir, buildDirErr = os.MkdirTemp("", "testenv-bin-*")
		if buildDirErr == nil {
			dir := buildDir
			onStop(func() { os.RemoveAll(dir) })
		}
	})
	return buildDir, buildDirErr
}

// cachedBuild runs build once per key per process.
func cachedBuild(key string, build func(out string) error, name string) (string, error) {
	buildMu.Lock()
	r, ok := buildCache[key]
	if !ok {
		r = &buildResult{}
		buildCache[key] = r
	}
	buildMu.Unlock()
	r.once.Do(func() {
		dir, err := binDir()
		if err != nil {
			r.err = err
			return
		}
		sub, err := os.MkdirTemp(dir, name+"-*")
		if err != nil {
			r.err = err
			return
		}
		out := filepath.Join(sub, name)
		if err := build(out); err != nil {
			r.err = err
			return
		}
		r.path = out
	})
	return r.path, r.err
}

func goTool() (string, error) {
	// go test puts $GOROOT/bin first on the test binary's PATH.
	p, err := exec.LookPath("go")
	if err != nil {
		return "", &MissingError{What: "the go command", Fix: "install Go 1.26 from https://go.dev/dl/ and put it on PATH"}
	}
	return p, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// goBuildEnv is the environment for building a Lambda bootstrap: a static
// binary for the host platform (RIE runs it directly on this machine).
func goBuildEnv() []string {
	env := make([]string, 0, len(os.Environ())+4)
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "GOOS="), strings.HasPrefix(kv, "GOARCH="),
			strings.HasPrefix(kv, "CGO_ENABLED="), strings.HasPrefix(kv, "GOFLAGS="):
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
}

// BuildBootstrap builds the Lambda function package pkgPath (relative to the
// module root, like "./functions/dbrotate", or a full import path) the way
// Lambda's provided.al2023 runtime needs it — CGO_ENABLED=0, -tags
// lambda.norpc, -trimpath, stripped — for the host GOOS/GOARCH so that RIE can
// run it here. It returns the absolute path of the binary, built once per
// process per package and removed by Main.
func BuildBootstrap(pkgPath string) (string, error) {
	return cachedBuild("bootstrap:"+pkgPath, func(out string) error {
		gobin, err := goTool()
		if err != nil {
			return err
		}
		root, err := RepoRoot()
		if err != nil {
			return err
		}
		cmd := exec.Command(gobin, "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, pkgPath)
		cmd.Dir = root
		cmd.Env = goBuildEnv()
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("testenv: build bootstrap %s: %v\n%s", pkgPath, err, bytes.TrimSpace(b))
		}
		return nil
	}, "bootstrap")
}

// RIEBinary builds the runtime interface emulator pinned in tools/go.mod
// (once per process) and returns its path.
func RIEBinary() (string, error) {
	return cachedBuild("rie", func(out string) error {
		gobin, err := goTool()
		if err != nil {
			return err
		}
		root, err := RepoRoot()
		if err != nil {
			return err
		}
		cmd := exec.Command(gobin, "build", "-trimpath", "-o", out, rieModule)
		cmd.Dir = filepath.Join(root, "tools")
		cmd.Env = append(goBuildEnv(), "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			return &MissingError{
				What: fmt.Sprintf("aws-lambda-rie (go build in tools/ failed: %v: %s)", err, lastLine(b)),
				Fix:  "cd tools && go mod download " + rieModule[:strings.Index(rieModule, "/cmd/")],
			}
		}
		return nil
	}, "aws-lambda-rie")
}

// RIE is a running Lambda runtime interface emulator serving one bootstrap.
// It runs one invocation at a time, as a single Lambda execution environment
// does; Invoke serialises callers.
type RIE struct {
	Endpoint   string // http://127.0.0.1:PORT (the emulator's invoke API)
	RuntimeAPI string // 127.0.0.1:PORT2 (the Lambda runtime API the function polls)

	cmd      *exec.Cmd
	exited   chan struct{}
	logs     *Buffer
	invokeMu sync.Mutex
	stopOnce sync.Once
	client   *http.Client
}

// StartRIE starts the emulator for bootstrap (an absolute path, usually from
// BuildBootstrap) on two free loopback ports. The emulator and thus the
// function see os.Environ() plus env (later entries win); the function
// process itself starts on the first Invoke, as a cold start does. It returns
// once the emulator accepts TCP connections. Stop it with Stop.
func StartRIE(bootstrap string, env []string) (*RIE, error) {
	if !filepath.IsAbs(bootstrap) {
		abs, err := filepath.Abs(bootstrap)
		if err != nil {
			return nil, err
		}
		bootstrap = abs
	}
	if !fileExists(bootstrap) {
		return nil, fmt.Errorf("testenv: bootstrap %s does not exist", bootstrap)
	}
	rie, err := RIEBinary()
	if err != nil {
		return nil, err
	}
	p1, err := FreePort()
	if err != nil {
		return nil, err
	}
	p2, err := FreePort()
	if err != nil {
		return nil, err
	}
	for p2 == p1 {
		if p2, err = FreePort(); err != nil {
			return nil, err
		}
	}
	r := &RIE{
		Endpoint:   fmt.Sprintf("http://127.0.0.1:%d", p1),
		RuntimeAPI: fmt.Sprintf("127.0.0.1:%d", p2),
		logs:       &Buffer{},
		exited:     make(chan struct{}),
		client:     &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
	}
	cmd := exec.Command(rie,
		"--runtime-interface-emulator-address", fmt.Sprintf("127.0.0.1:%d", p1),
		"--runtime-api-address", r.RuntimeAPI,
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = rieEnv(env)
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testenv: start aws-lambda-rie: %w", err)
	}
	r.cmd = cmd
	go func() { _ = cmd.Wait(); close(r.exited) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p1), time.Second)
		if err == nil {
			c.Close()
			return r, nil
		}
		select {
		case <-r.exited:
			return nil, fmt.Errorf("testenv: aws-lambda-rie exited during start-up: %s", tail([]byte(r.logs.String()), 20))
		default:
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("testenv: aws-lambda-rie not listening on %s within 30s: %s", r.Endpoint, tail([]byte(r.logs.String()), 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rieEnv is os.Environ() plus extra, later entries winning; it drops
// AWS_LAMBDA_MAX_CONCURRENCY, which switches RIE into a different mode.
func rieEnv(extra []string) []string {
	idx := map[string]int{}
	var out []string
	for _, kv := range append(os.Environ(), extra...) {
		k, _, _ := strings.Cut(kv, "=")
		if k == "AWS_LAMBDA_MAX_CONCURRENCY" {
			continue
		}
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

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

// Logs returns everything the emulator and the function wrote so far (the
// function's stdout and stderr reach the emulator's stdout, as in Lambda).
func (r *RIE) Logs() string { return r.logs.String() }

// Stop ends the emulator and its function process. Safe to call twice.
func (r *RIE) Stop() {
	r.stopOnce.Do(func() {
		if r.cmd == nil || r.cmd.Process == nil {
			return
		}
		// RIE shuts its runtime down on SIGTERM; the runtime runs in its own
		// process group, so a bare SIGKILL could leave it behind.
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.exited
		}
	})
}
