package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const postgresFix = "apt-get install -y postgresql-15"

// Postgres is a throwaway PostgreSQL cluster in a temp dir: TCP on 127.0.0.1
// with scram-sha-256 password authentication for every TCP connection (TLS
// and plaintext both accepted; the client decides), a trust-authenticated Unix
// socket in a private 0700 directory for administration, ssl=on with a
// certificate from a throwaway CA, and log_statement='all'.
//
// The postmaster is a direct child of the test process (killed if the test
// process dies), not a pg_ctl daemon, so an aborted test run leaks nothing
// but its temp dir.
type Postgres struct {
	Host          string // 127.0.0.1
	Port          int
	SuperUser     string // postgres
	SuperPassword string // random; never log it
	CACertPEM     []byte // the CA that signed the server certificate
	CACertPath    string // the same CA as a file (for sslrootcert=)
	ServerName    string // the name the server certificate is valid for: localhost (127.0.0.1 is in its SANs too)
	LogPath       string // the server's log (every statement, every connection)
	DataDir       string
	SocketDir     string // Unix socket directory (trust auth; admin use only)
	BinDir        string // where initdb and postgres were found

	dir      string
	proc     *Process
	stopOnce sync.Once
}

// String, GoString and LogValue keep the superuser password out of logs.
func (p *Postgres) String() string {
	if p == nil {
		return "testenv.Postgres(nil)"
	}
	return fmt.Sprintf("testenv.Postgres{%s:%d superuser=%s password=[REDACTED]}", p.Host, p.Port, p.SuperUser)
}

// GoString implements fmt.GoStringer (for %#v) without the password.
func (p *Postgres) GoString() string { return p.String() }

// LogValue implements slog.LogValuer without the password.
func (p *Postgres) LogValue() slog.Value { return slog.StringValue(p.String()) }

// StartPostgres creates and starts a throwaway cluster. Stop it with Stop
// (Main does it for the cluster from SharedPostgres).
func StartPostgres() (*Postgres, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := pgRunAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(pgTempParent(), "pgtest-*")
	if err != nil {
		return nil, err
	}
	p := &Postgres{
		Host:       "127.0.0.1",
		SuperUser:  "postgres",
		ServerName: "localhost",
		DataDir:    filepath.Join(dir, "data"),
		SocketDir:  filepath.Join(dir, "sock"),
		LogPath:    filepath.Join(dir, "server.log"),
		CACertPath: filepath.Join(dir, "ca.crt"),
		BinDir:     bin,
		dir:        dir,
	}
	if err := p.start(cred); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *Postgres) start(cred *syscall.Credential) error {
	pw := make([]byte, 24)
	if _, err := rand.Read(pw); err != nil {
		return err
	}
	p.SuperPassword = hex.EncodeToString(pw)
	port, err := FreePort()
	if err != nil {
		return err
	}
	p.Port = port

	if err := os.Mkdir(p.SocketDir, 0o700); err != nil {
		return err
	}
	pwFile := filepath.Join(p.dir, "pwfile")
	if err := os.WriteFile(pwFile, []byte(p.SuperPassword+"\n"), 0o600); err != nil {
		return err
	}
	if err := chownTree(p.dir, cred); err != nil {
		return err
	}

	initdb := exec.Command(filepath.Join(p.BinDir, "initdb"),
		"-D", p.DataDir, "-U", p.SuperUser, "--pwfile="+pwFile,
		"--auth-local=trust", "--auth-host=scram-sha-256",
		"-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions")
	initdb.Env = pgEnv()
	initdb.Dir = p.dir
	if cred != nil {
		initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	out, err := initdb.CombinedOutput()
	os.Remove(pwFile)
	if err != nil {
		return fmt.Errorf("testenv: initdb: %v: %s", err, tail(out, 20))
	}

	// TLS material: a throwaway CA and a server certificate for localhost and
	// 127.0.0.1; the key is owned by the server's OS user with mode 0600.
	ca, err := NewCA("rotation-suite test PostgreSQL CA")
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := ca.IssueServer("localhost", "127.0.0.1")
	if err != nil {
		return err
	}
	p.CACertPEM = ca.CertPEM
	certPath := filepath.Join(p.DataDir, "server.crt")
	keyPath := filepath.Join(p.DataDir, "server.key")
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{p.CACertPath, ca.CertPEM, 0o644},
		{certPath, certPEM, 0o644},
		{keyPath, keyPEM, 0o600},
	} {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return err
		}
	}

	hba := "# written by internal/testenv: password auth for every TCP connection\n" +
		"local all all trust\n" +
		"host  all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(p.DataDir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return err
	}
	conf := fmt.Sprintf(`
# --- internal/testenv ---
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
# DSM segments in the data directory, so an immediate stop leaves nothing in /dev/shm
dynamic_shared_memory_type = mmap
max_connections = 200
shared_buffers = 32MB
log_statement = 'all'
log_connections = on
log_disconnections = on
log_line_prefix = '%%m [%%p] %%q%%u@%%d '
log_timezone = 'UTC'
timezone = 'UTC'
ssl = on
ssl_cert_file = '%s'
ssl_key_file = '%s'
`, p.Port, p.SocketDir, certPath, keyPath)
	f, err := os.OpenFile(filepath.Join(p.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := chownTree(p.dir, cred); err != nil {
		return err
	}

	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(p.BinDir, "postgres"), "-D", p.DataDir)
	cmd.Env = pgEnv()
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Credentials are applied before the parent-death signal, so the
	// postmaster still dies with the test process when running as root.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	p.proc, err = StartProcess(cmd)
	logf.Close()
	if err != nil {
		return fmt.Errorf("testenv: start postgres: %w", err)
	}
	err = p.proc.WaitReady(60*time.Second, 50*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, p.AdminDSN("postgres"))
		if err == nil {
			conn.Close(context.Background())
		}
		return err
	})
	switch {
	case errors.Is(err, errExited):
		return fmt.Errorf("testenv: postgres exited during start-up: %s", p.logTail())
	case err != nil:
		return fmt.Errorf("testenv: postgres not ready on port %d within 60s (%v): %s", p.Port, errors.Unwrap(err), p.logTail())
	}
	return nil
}

func tail(b []byte, lines int) []byte {
	b = bytes.TrimSpace(b)
	i := len(b)
	for n := 0; n < lines && i > 0; n++ {
		j := bytes.LastIndexByte(b[:i], '\n')
		if j < 0 {
			return b
		}
		i = j
	}
	return bytes.TrimSpace(b[i:])
}

func (p *Postgres) logTail() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return "(no server log: " + err.Error() + ")"
	}
	return "server log tail:\n" + string(tail(b, 20))
}

// AdminDSN returns a pgx-compatible URL for the superuser over TCP with its
// password and sslmode=disable, for database db. Admin and test use only;
// the URL holds the password, so never log it.
func (p *Postgres) AdminDSN(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(p.SuperUser, p.SuperPassword),
		Host:     fmt.Sprintf("%s:%d", p.Host, p.Port),
		Path:     "/" + db,
		RawQuery: "sslmode=disable&connect_timeout=10",
	}
	return u.String()
}

// AdminConn opens a superuser connection to db (over TCP, no TLS).
func (p *Postgres) AdminConn(ctx context.Context, db string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, p.AdminDSN(db))
}

// ConnCount returns how many client connections are open for role user
// (all roles if user is empty), not counting the one used to ask.
func (p *Postgres) ConnCount(ctx context.Context, user string) (int, error) {
	conn, err := p.AdminConn(ctx, "postgres")
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
		AND ($1 = '' OR usename = $1)`, user).Scan(&n)
	return n, err
}

// ServerLog returns the server's log so far.
func (p *Postgres) ServerLog() ([]byte, error) { return os.ReadFile(p.LogPath) }

// Stop shuts the cluster down at once (an immediate shutdown, as
// pg_ctl stop -m immediate does) and removes its temp dir. Safe to call twice.
func (p *Postgres) Stop() {
	p.stopOnce.Do(func() {
		p.proc.Stop(syscall.SIGQUIT, 10*time.Second)
		if p.dir != "" {
			_ = os.RemoveAll(p.dir)
		}
	})
}

var sharedPG shared[*Postgres]

// SharedPostgres returns the test binary's cluster, starting it on first use;
// Main stops it. A missing PostgreSQL skips the test outside CI and fails it
// in CI. Tests sharing it should create their own roles and databases with
// unique names.
func SharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	return sharedPG.get(t, StartPostgres, (*Postgres).Stop)
}
