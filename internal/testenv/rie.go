package testenv

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const rieModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

// RIEBinary builds the runtime interface emulator pinned in tools/go.mod
// (once per process) and returns its path.
func RIEBinary() (string, error) {
	return buildTool("aws-lambda-rie", rieModule, rieModule[:strings.Index(rieModule, "/cmd/")])
}

// RIE is a running Lambda runtime interface emulator serving one bootstrap.
// It runs one invocation at a time, as a single Lambda execution environment
// does; Invoke serialises callers.
type RIE struct {
	Endpoint   string // http://127.0.0.1:PORT (the emulator's invoke API)
	RuntimeAPI string // 127.0.0.1:PORT2 (the Lambda runtime API the function polls)

	proc     *Process
	logs     *Buffer
	invokeMu sync.Mutex
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
		client:     &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
	}
	cmd := exec.Command(rie,
		"--runtime-interface-emulator-address", fmt.Sprintf("127.0.0.1:%d", p1),
		"--runtime-api-address", r.RuntimeAPI,
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = rieEnv(env)
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	if r.proc, err = StartProcess(cmd); err != nil {
		return nil, fmt.Errorf("testenv: start aws-lambda-rie: %w", err)
	}
	err = r.proc.WaitReady(30*time.Second, 20*time.Millisecond, func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p1), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	switch {
	case errors.Is(err, errExited):
		return nil, fmt.Errorf("testenv: aws-lambda-rie exited during start-up: %s", tail([]byte(r.logs.String()), 20))
	case err != nil:
		r.Stop()
		return nil, fmt.Errorf("testenv: aws-lambda-rie not listening on %s within 30s: %s", r.Endpoint, tail([]byte(r.logs.String()), 20))
	}
	return r, nil
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

// Logs returns everything the emulator and the function wrote so far (the
// function's stdout and stderr reach the emulator's stdout, as in Lambda).
func (r *RIE) Logs() string { return r.logs.String() }

// Stop ends the emulator and its function process. Safe to call twice.
// RIE shuts its runtime down on SIGTERM; the runtime runs in its own
// process group, so a bare SIGKILL could leave it behind.
func (r *RIE) Stop() { r.proc.Stop(syscall.SIGTERM, 3*time.Second) }
