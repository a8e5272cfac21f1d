package pgstrategy

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/pkg/pgsecret"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// passwordPhisher is a server that asks every client for its password in
// cleartext (AuthenticationCleartextPassword) and records whether a
// PasswordMessage came back.
func passwordPhisher(t *testing.T, method uint32) (port int, leaked *atomic.Int32) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	leaked = &atomic.Int32{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				c.SetDeadline(time.Now().Add(3 * time.Second))
				var n [4]byte
				if _, err := io.ReadFull(c, n[:]); err != nil {
					return
				}
				if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(n[:])-4)); err != nil {
					return
				}
				msg := []byte{'R', 0, 0, 0, 8, 0, 0, 0, 0}
				if method == 5 { // MD5 carries a 4-byte salt
					msg = []byte{'R', 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4}
				}
				binary.BigEndian.PutUint32(msg[5:9], method)
				c.Write(msg)
				b := make([]byte, 1)
				if k, _ := c.Read(b); k == 1 && b[0] == 'p' {
					leaked.Add(1)
				}
			}(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, leaked
}

func TestAdminLoginNeverSendsThePassword(t *testing.T) {
	for _, c := range []struct {
		name   string
		method uint32
		admin  bool
	}{
		{"admin asked for cleartext", 3, true},
		{"admin asked for MD5", 5, true},
		{"application user asked for cleartext", 3, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			port, leaked := passwordPhisher(t, c.method)
			ep := endpoint{host: "127.0.0.1", port: port, db: "postgres", mode: pgsecret.SSLDisable}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := mustNew(t, Config{Password: testPolicy, AllowPlaintext: true}).connect(ctx, ep, "admin", "m4ster-password", c.admin, "the admin user admin")
			if err == nil {
				closeConn(conn)
				t.Fatal("the login succeeded")
			}
			if rotation.ClassOf(err) != rotation.ClassAuthentication || !strings.Contains(err.Error(), "SCRAM") {
				t.Errorf("want an authentication error naming SCRAM, got %v", err)
			}
			time.Sleep(50 * time.Millisecond)
			if leaked.Load() != 0 {
				t.Fatal("the client sent a password message to a server that asked for a weaker method")
			}
		})
	}
}
