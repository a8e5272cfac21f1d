package pgstrategy_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/functions/dbrotate/pgstrategy"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// refusingServer answers every SSLRequest with 'N' (no TLS) and records
// whether the client then went on in plaintext.
type refusingServer struct {
	ln        net.Listener
	plaintext atomic.Int32
	requests  atomic.Int32
}

func startRefusingServer(t *testing.T) *refusingServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &refusingServer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				c.SetDeadline(time.Now().Add(3 * time.Second))
				hdr := make([]byte, 8)
				if _, err := io.ReadFull(c, hdr); err != nil {
					return
				}
				if binary.BigEndian.Uint32(hdr[4:]) == 80877103 { // SSLRequest
					rs.requests.Add(1)
					c.Write([]byte{'N'})
					buf := make([]byte, 1)
					if n, _ := c.Read(buf); n > 0 {
						rs.plaintext.Add(1)
					}
					return
				}
				rs.plaintext.Add(1) // a startup message without asking for TLS
			}(c)
		}
	}()
	return rs
}

func TestTLS(t *testing.T) {
	ctx := context.Background()
	otherCA, err := testenv.NewCA("some other CA")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		extra  map[string]any
		cfg    func(s *stack, c *pgstrategy.Config)
		class  rotation.Class // "" = the rotation succeeds
		want   string         // in the error, or in the log on success
		single bool
	}{
		{name: "verify-full with the CA from the environment", extra: map[string]any{}},
		{name: "verify-full with the CA from the secret", cfg: func(s *stack, c *pgstrategy.Config) { c.CABundlePEM = nil },
			extra: map[string]any{"sslrootcertpem": "CA"}},
		{name: "verify-full with a server-name override", extra: map[string]any{"sslservername": "localhost"}},
		{name: "a wrong CA is refused", cfg: func(s *stack, c *pgstrategy.Config) { c.CABundlePEM = otherCA.CertPEM },
			class: rotation.ClassTLS, want: "not trusted"},
		{name: "a wrong host name is refused", extra: map[string]any{"sslservername": "db.wrong.example"},
			class: rotation.ClassTLS, want: "not valid for the host name"},
		{name: "verify-ca checks the chain but not the name", extra: map[string]any{"sslmode": "verify-ca", "sslservername": "db.wrong.example"}},
		{name: "verify-ca still refuses a wrong CA", extra: map[string]any{"sslmode": "verify-ca"},
			cfg: func(s *stack, c *pgstrategy.Config) { c.CABundlePEM = otherCA.CertPEM }, class: rotation.ClassTLS, want: "not trusted"},
		{name: "require encrypts and warns", extra: map[string]any{"sslmode": "require"},
			cfg: func(s *stack, c *pgstrategy.Config) { c.CABundlePEM = otherCA.CertPEM }, want: "not verified"},
		{name: "plaintext with the explicit opt-in warns on every rotation", extra: map[string]any{"sslmode": "disable"},
			cfg: func(s *stack, c *pgstrategy.Config) { c.AllowPlaintext = true }, want: "NOT encrypted"},
	}
	for _, c := range cases {
		for _, alt := range []bool{false, true} {
			name := c.name + map[bool]string{false: " (single user)", true: " (alternating)"}[alt]
			t.Run(name, func(t *testing.T) {
				s := newStack(t)
				cfg := testConfig(s)
				if c.cfg != nil {
					c.cfg(s, &cfg)
				}
				extra := map[string]any{}
				for k, v := range c.extra {
					if v == "CA" {
						v = string(s.pg.CACertPEM)
					}
					extra[k] = v
				}
				var arn, user string
				if alt {
					m, _ := s.adminSecret(t, false)
					user = uniq("tls")
					pw := randomPassword(t)
					s.createRole(t, user, pw, "")
					s.dropLater(t, user+"_clone")
					extra["masterarn"] = m
					arn = s.createSecret(t, uniq("tls"), s.appSecret(user, pw, extra))
				} else {
					user = uniq("tls")
					pw := randomPassword(t)
					s.createRole(t, user, pw, "")
					arn = s.createSecret(t, uniq("tls"), s.appSecret(user, pw, extra))
				}
				before := s.roleState(t, user)
				eng, _ := s.engine(t, cfg)
				d := s.driver(eng)
				d.Attempts = 1
				_, err := d.Rotate(ctx, arn, "")
				if c.class == "" {
					if err != nil {
						t.Fatal(err)
					}
					cur, _ := s.value(t, arn, rotation.StageCurrent)
					if err := s.login(ctx, cur); err != nil {
						t.Fatal(err)
					}
					if c.want != "" && strings.Count(s.logs.String(), c.want) < 2 {
						t.Fatalf("the rotation did not warn %q in its steps", c.want)
					}
					return
				}
				if err == nil {
					t.Fatal("the rotation succeeded")
				}
				if rotation.ClassOf(err) != c.class || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("want %s error saying %q, got %s: %v", c.class, c.want, rotation.ClassOf(err), err)
				}
				if s.roleState(t, user) != before {
					t.Fatal("the role changed")
				}
			})
		}
	}

	t.Run("a server without TLS is refused, with no plaintext fallback", func(t *testing.T) {
		s := newStack(t)
		rs := startRefusingServer(t)
		port := rs.ln.Addr().(*net.TCPAddr).Port
		arn := s.createSecret(t, uniq("tls"), s.appSecret(uniq("tls"), "x-password-1", map[string]any{"port": port}))
		eng, _ := s.engine(t, testConfig(s))
		d := s.driver(eng)
		d.Attempts = 1
		_, err := d.Rotate(ctx, arn, "")
		if rotation.ClassOf(err) != rotation.ClassTLS || !strings.Contains(err.Error(), "never falls back") {
			t.Fatalf("want a TLS error, got %v", err)
		}
		if rs.requests.Load() == 0 {
			t.Fatal("the client never asked for TLS")
		}
		if n := rs.plaintext.Load(); n != 0 {
			t.Fatalf("the client went on in plaintext %d times after TLS was refused", n)
		}
	})
}
