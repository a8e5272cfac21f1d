package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func pgCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// userDSN builds a TCP URL for user/password with the given sslmode
// (and sslrootcert when verifying).
func userDSN(p *Postgres, user, password, sslmode string) string {
	q := url.Values{"sslmode": {sslmode}, "connect_timeout": {"10"}}
	if strings.HasPrefix(sslmode, "verify") {
		q.Set("sslrootcert", p.CACertPath)
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password),
		Host: fmt.Sprintf("%s:%d", p.Host, p.Port), Path: "/postgres", RawQuery: q.Encode()}
	return u.String()
}

func TestPostgresWrongPasswordFailsWith28P01(t *testing.T) {
	p := SharedPostgres(t)
	ctx := pgCtx(t)
	for _, mode := range []string{"disable", "verify-full"} {
		conn, err := pgx.Connect(ctx, userDSN(p, p.SuperUser, p.SuperPassword+"x", mode))
		if err == nil {
			conn.Close(ctx)
			t.Fatalf("sslmode=%s: a wrong password was accepted: TCP authentication is not scram-sha-256", mode)
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
			t.Fatalf("sslmode=%s: want SQLSTATE 28P01, got %v", mode, err)
		}
		if strings.Contains(err.Error(), p.SuperPassword) {
			t.Fatal("the error text holds the password")
		}
	}
}

func TestPostgresTLSVerifyFullWithTheCASucceeds(t *testing.T) {
	p := SharedPostgres(t)
	ctx := pgCtx(t)
	for _, host := range []string{p.ServerName, "127.0.0.1"} {
		cfg, err := pgx.ParseConfig(userDSN(p, p.SuperUser, p.SuperPassword, "verify-full"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Host = host
		if cfg.TLSConfig != nil {
			cfg.TLSConfig.ServerName = host
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("verify-full to %s: %v", host, err)
		}
		var ssl bool
		if err := conn.QueryRow(ctx, `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
		if !ssl {
			t.Fatalf("verify-full to %s: the server reports a plaintext connection", host)
		}
	}
}

func TestPostgresTLSWithAWrongServerNameFails(t *testing.T) {
	p := SharedPostgres(t)
	ctx := pgCtx(t)
	cfg, err := pgx.ParseConfig(userDSN(p, p.SuperUser, p.SuperPassword, "verify-full"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLSConfig.ServerName = "db.example.com"
	cfg.Fallbacks = nil // no silent retry without TLS
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		conn.Close(ctx)
		t.Fatal("a certificate for localhost/127.0.0.1 was accepted for db.example.com")
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("want a certificate verification error, got %v", err)
	}
}

func TestPostgresTLSWithAnUnknownCAFails(t *testing.T) {
	p := SharedPostgres(t)
	ctx := pgCtx(t)
	other, err := NewCA("some other CA")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(userDSN(p, p.SuperUser, p.SuperPassword, "verify-full"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLSConfig = other.ClientTLSConfig(p.ServerName)
	cfg.Fallbacks = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		conn.Close(ctx)
		t.Fatal("a server certificate from an untrusted CA was accepted")
	}
}

func TestPostgresSuperuserCreatesALoginRoleThatAuthenticatesByPassword(t *testing.T) {
	p := SharedPostgres(t)
	ctx := pgCtx(t)
	admin, err := p.AdminConn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	role := fmt.Sprintf("app_%d", time.Now().UnixNano())
	// Utility statements take no parameters: a fixed literal is fine here.
	if _, err := admin.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN PASSWORD 'Correct-Horse-1'"); err != nil {
		t.Fatal(err)
	}
	drop := "DROP ROLE IF EXISTS " + pgx.Identifier{role}.Sanitize()
	defer func() { _, _ = admin.Exec(context.Background(), drop) }()

	var verifier string
	if err := admin.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, role).Scan(&verifier); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(verifier, "SCRAM-SHA-256$") {
		t.Fatalf("password not stored as a SCRAM-SHA-256 verifier (prefix %.14q)", verifier)
	}

	conn, err := pgx.Connect(ctx, userDSN(p, role, "Correct-Horse-1", "verify-full"))
	if err != nil {
		t.Fatalf("the new role cannot log in with its password: %v", err)
	}
	var who string
	if err := conn.QueryRow(ctx, `SELECT current_user`).Scan(&who); err != nil {
		t.Fatal(err)
	}
	if who != role {
		t.Fatalf("logged in as %q, want %q", who, role)
	}
	if n, err := p.ConnCount(ctx, role); err != nil || n != 1 {
		t.Fatalf("ConnCount(%s) = %d, %v; want 1", role, n, err)
	}
	conn.Close(ctx)

	_, err = pgx.Connect(ctx, userDSN(p, role, "wrong", "disable"))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Fatalf("wrong password for the new role: want 28P01, got %v", err)
	}
}

func TestPostgresServerLogRecordsEveryStatement(t *testing.T) {
	p := SharedPostgres(t)
	ctx := pgCtx(t)
	admin, err := p.AdminConn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("log_probe_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "SELECT '"+marker+"'"); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for {
		log, err := p.ServerLog()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(log), marker) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("statement %q not in the server log", marker)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPostgresRedactsTheSuperuserPassword(t *testing.T) {
	p := SharedPostgres(t)
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%v", p), fmt.Sprintf("%+v", p), fmt.Sprintf("%#v", p)} {
		if strings.Contains(s, p.SuperPassword) {
			t.Fatalf("formatting the cluster printed its password: %s", s)
		}
	}
}

func TestPostgresStopRemovesTheClusterAndIsIdempotent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second cluster")
	}
	start := time.Now()
	p, err := StartPostgres()
	Require(t, err)
	t.Logf("cluster start (initdb + postgres + first scram login): %v", time.Since(start))
	ctx := pgCtx(t)
	conn, err := p.AdminConn(ctx, "postgres")
	if err != nil {
		p.Stop()
		t.Fatal(err)
	}
	conn.Close(ctx)
	p.Stop()
	p.Stop()
	if _, err := p.AdminConn(ctx, "postgres"); err == nil {
		t.Fatal("the cluster still answers after Stop")
	}
	if _, err := p.ServerLog(); err == nil {
		t.Fatal("the temp dir survived Stop")
	}
}
