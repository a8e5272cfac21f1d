package pgpool_test

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"

	"github.com/rotation-suite/rotation/internal/smfake"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/pgpool"
	"github.com/rotation-suite/rotation/pkg/secretcache"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is one test's database role, its secret (in smfake, which follows
// Secrets Manager's label rules) and a cache over it.
type env struct {
	pg    *testenv.Postgres
	sm    *smfake.Fake
	cache *secretcache.Cache
	role  string
	arn   string
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// scramVerifier is what PostgreSQL stores for password (RFC 5802/7677), so
// that the test's passwords never appear in the server's statement log.
func scramVerifier(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	salted, _ := pbkdf2.Key(sha256.New, password, salt, 4096, 32)
	mac := func(k []byte, s string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(s)); return h.Sum(nil) }
	stored := sha256.Sum256(mac(salted, "Client Key"))
	b := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$4096:%s$%s:%s", b(salt), b(stored[:]), b(mac(salted, "Server Key")))
}

func (e *env) super(t testing.TB, sql string) {
	t.Helper()
	ctx := context.Background()
	c, err := e.pg.AdminConn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (e *env) setPassword(t testing.TB, pw string) {
	e.super(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", pgx.Identifier{e.role}.Sanitize(), scramVerifier(pw)))
}

func (e *env) value(pw string, extra map[string]any) string {
	m := map[string]any{"engine": "postgres", "host": "127.0.0.1", "port": e.pg.Port, "username": e.role, "password": pw, "dbname": "postgres"}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func newEnv(t *testing.T, ttl time.Duration) (*env, string) {
	t.Helper()
	e := &env{pg: testenv.SharedPostgres(t), sm: smfake.New(), role: "pool_" + randHex(4)}
	pw := randHex(16)
	e.super(t, fmt.Sprintf("CREATE ROLE %s WITH LOGIN PASSWORD '%s'", pgx.Identifier{e.role}.Sanitize(), scramVerifier(pw)))
	t.Cleanup(func() {
		ctx := context.Background()
		if c, err := e.pg.AdminConn(ctx, "postgres"); err == nil {
			c.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", e.role)
			c.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{e.role}.Sanitize())
			c.Close(ctx)
		}
	})
	out, err := e.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String("app/" + e.role), SecretString: aws.String(e.value(pw, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.arn = aws.ToString(out.ARN)
	e.cache, err = secretcache.New(secretcache.Config{Client: e.sm, TTL: ttl, MinRefreshInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return e, pw
}

// put stores a new version of the secret with the given stage.
func (e *env) put(t testing.TB, value, stage string) string {
	t.Helper()
	out, err := e.sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(e.arn), SecretString: aws.String(value), VersionStages: []string{stage}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.VersionId)
}

func (e *env) pool(t *testing.T, mod ...func(*pgpool.Config)) *pgpool.Pool {
	t.Helper()
	cfg := pgpool.Config{Cache: e.cache, SecretID: e.arn, CABundlePEM: e.pg.CACertPEM, RecycleCheck: 50 * time.Millisecond}
	for _, m := range mod {
		m(&cfg)
	}
	p, err := pgpool.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
