package testenv

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a server (or function) process started by StartProcess: in its
// own process group, killed by the kernel if this process dies, and watched
// so that its exit is seen at once. It is the one launcher behind moto,
// local-kms, PostgreSQL and the runtime emulator.
type Process struct {
	cmd      *exec.Cmd
	exited   chan struct{}
	stopOnce sync.Once
}

// StartProcess starts cmd in a new process group with a parent-death
// SIGKILL, keeping any other SysProcAttr field the caller set (such as
// Credential), and returns at once.
func StartProcess(cmd *exec.Cmd) (*Process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// errExited says the process ended while WaitReady waited for it.
var errExited = errors.New("exited during start-up")

// WaitReady calls ready every interval until it returns nil (the process is
// ready: nil), the process exits (an error wrapping errExited), or timeout
// passes (an error with ready's last error).
func (p *Process) WaitReady(timeout, interval time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return errExited
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %s: %w", timeout, err)
		}
		select {
		case <-p.exited:
			return errExited
		case <-time.After(interval):
		}
	}
}

// Stop ends the process: sig first (0 for none), then, if it has not exited
// within grace, SIGKILL to its whole process group. It returns once the
// process has exited. Safe to call twice.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) {
	if p == nil {
		return
	}
	p.stopOnce.Do(func() {
		if sig != 0 {
			_ = p.cmd.Process.Signal(sig)
			select {
			case <-p.exited:
				return
			case <-time.After(grace):
			}
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	})
}

// Kill ends the process and its group at once (Stop without a signal first).
func (p *Process) Kill() { p.Stop(0, 0) }

// shared is a server that the package's tests share: started on first use,
// stopped by Main.
type shared[T any] struct {
	once sync.Once
	v    T
	err  error
}

// get returns the shared server, starting it on first use and registering
// stop with Main. A start-up error is handled by Require: a MissingError
// skips the test outside CI and fails it in CI.
func (s *shared[T]) get(t testing.TB, start func() (T, error), stop func(T)) T {
	t.Helper()
	s.once.Do(func() {
		s.v, s.err = start()
		if s.err == nil {
			v := s.v
			onStop(func() { stop(v) })
		}
	})
	Require(t, s.err)
	return s.v
}
