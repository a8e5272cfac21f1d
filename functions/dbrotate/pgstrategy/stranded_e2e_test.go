package pgstrategy_test

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// switchable is a TCP forwarder to PostgreSQL that the test can switch off:
// while off it resets every new connection, as a server that is down.
type switchable struct {
	ln    net.Listener
	off   atomic.Bool
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newSwitchable(t *testing.T, target string) *switchable {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchable{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p.off.Load() {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); up.Close() }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *switchable) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// TestAStrandedPasswordHealsUnderTheRuntimeEmulator drives the built
// bootstrap through the stranding: single user, createSecret and setSecret
// succeed, PostgreSQL is down during testSecret, an operator removes the
// stale AWSPENDING. The database now holds the password of a version no
// label points at; the next rotation finds it and AWSCURRENT logs in again.
func TestAStrandedPasswordHealsUnderTheRuntimeEmulator(t *testing.T) {
	ctx := context.Background()
	s := newStack(t)
	rie := startFunction(t, s)
	px := newSwitchable(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(s.pg.Port)))
	user, pw := uniq("strandrie"), randomPassword(t)
	s.createRole(t, user, pw, "")
	arn := s.createSecret(t, uniq("strandrie"), s.appSecret(user, pw, map[string]any{"port": px.port()}))

	d := s.driver(rie)
	d.Attempts = 1
	d.OnStep = func(sr driver.StepResult) {
		if sr.Step == rotation.StepSet && sr.Err == nil {
			px.off.Store(true) // down for testSecret
		}
	}
	res, err := d.Rotate(ctx, arn, "")
	if err == nil || !strings.Contains(err.Error(), "testSecret") {
		t.Fatalf("the rotation with the database down during testSecret: %v", err)
	}
	px.off.Store(false)
	s.removePending(t, arn, res.Token)
	cur, _ := s.value(t, arn, rotation.StageCurrent)
	if err := s.login(ctx, cur); err == nil {
		t.Fatal("setup: AWSCURRENT still logs in; the password was not stranded")
	}

	d.OnStep, d.Attempts = nil, 2
	for i := range 2 {
		if _, err := d.Rotate(ctx, arn, ""); err != nil {
			t.Fatalf("rotation %d after the stranding: %v\nfunction log:\n%s", i+1, err, rie.Logs())
		}
		cur, _ = s.value(t, arn, rotation.StageCurrent)
		if err := s.login(ctx, cur); err != nil {
			t.Fatalf("AWSCURRENT does not log in after rotation %d: %v", i+1, err)
		}
	}
	logs := rie.Logs()
	if !strings.Contains(logs, res.Token) || !strings.Contains(logs, "no label points at") {
		t.Fatal("the function's log does not say which version it recovered from")
	}
	if strings.Contains(logs, "changed outside rotation") {
		t.Fatal("the function claimed an outside change for a change the rotation made")
	}
	s.assertPasswordsNotLogged(t, passwordsOf(t, s.allValues(t, arn)), logs)
}
