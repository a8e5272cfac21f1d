// Package testenv starts and stops the real parts the integration tests run
// against: a moto server (the AWS APIs), a throwaway PostgreSQL cluster with
// scram-sha-256 password authentication, and the Lambda runtime interface
// emulator. Every server binds to 127.0.0.1 on a free port and is stopped by
// Main when the package's tests end. Every one of them is started through
// one launcher (StartProcess); the developer tool and the benchmarks start
// the same servers together through StartStack.
//
// A missing prerequisite is never skipped silently in CI: with CI set the
// test fails with the exact install command; elsewhere it skips with that same
// message. testenv owns no product logic.
package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
)

// MissingError says which prerequisite is absent and how to install it.
type MissingError struct {
	What string // the missing part
	Fix  string // the exact command that installs it
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("prerequisite missing: %s; install it with: %s", e.What, e.Fix)
}

// InCI reports whether the tests run in CI (CI set to a non-empty value other than "false").
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// Require handles a start-up error: nil passes; a MissingError skips outside CI
// and fails in CI; any other error fails.
func Require(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var me *MissingError
	if errors.As(err, &me) && !InCI() {
		t.Skip(me.Error())
	}
	t.Fatal(err)
}

var (
	stopMu sync.Mutex
	stops  []func()
)

// onStop registers a clean-up that Main runs after the tests.
func onStop(f func()) {
	stopMu.Lock()
	defer stopMu.Unlock()
	stops = append(stops, f)
}

// StopAll stops every server this process started, newest first.
func StopAll() {
	stopMu.Lock()
	s := stops
	stops = nil
	stopMu.Unlock()
	for i := len(s) - 1; i >= 0; i-- {
		s[i]()
	}
}

// Main runs the package's tests and then stops every server they started.
// Use it from TestMain: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	StopAll()
	os.Exit(code)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
