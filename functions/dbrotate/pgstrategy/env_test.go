package pgstrategy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotation-suite/rotation/functions/dbrotate/pgstrategy"
	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/password"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stack is the local stack one test uses: the shared PostgreSQL cluster and
// moto, a Secrets Manager client, and the no-op Lambda ARN RotateSecret needs.
type stack struct {
	pg        *testenv.Postgres
	moto      *testenv.Moto
	sm        *secretsmanager.Client
	lambdaARN string
	logs      *testenv.Buffer // every engine log line of the test
}

var (
	lambdaOnce sync.Once
	lambdaARN  string
	lambdaErr  error
)

func newStack(t testing.TB) *stack {
	t.Helper()
	pg := testenv.SharedPostgres(t)
	m := testenv.SharedMoto(t)
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lambdaOnce.Do(func() { lambdaARN, lambdaErr = m.RegisterNoopLambda(ctx, "dbrotate-noop") })
	if lambdaErr != nil {
		t.Fatal(lambdaErr)
	}
	return &stack{pg: pg, moto: m, sm: secretsmanager.NewFromConfig(cfg), lambdaARN: lambdaARN, logs: &testenv.Buffer{}}
}

// uniq returns a name unique to this run, so tests can share one cluster
// and one moto.
func uniq(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

func randomPassword(t testing.TB) string {
	pw, err := password.Policy{Length: 24, Exclude: password.DefaultExclude}.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return pw
}

// super runs statements as the cluster's superuser.
func (s *stack) super(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	c, err := s.pg.AdminConn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// createRole creates a login role whose password is set as a SCRAM
// verifier (so even the test's own passwords stay out of the server log).
func (s *stack) createRole(t testing.TB, name, password, attrs string) {
	t.Helper()
	v, err := pgstrategy.ScramVerifier(password)
	if err != nil {
		t.Fatal(err)
	}
	s.super(t, fmt.Sprintf("CREATE ROLE %s WITH LOGIN PASSWORD '%s' %s", pgx.Identifier{name}.Sanitize(), v, attrs))
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := s.pg.AdminConn(ctx, "postgres")
		if err != nil {
			return
		}
		defer c.Close(ctx)
		c.Exec(ctx, "DROP OWNED BY "+pgx.Identifier{name}.Sanitize())
		c.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
	})
}

// dropLater drops a role the function created (the clone) after the test.
func (s *stack) dropLater(t testing.TB, name string) {
	t.Cleanup(func() {
		ctx := context.Background()
		if c, err := s.pg.AdminConn(ctx, "postgres"); err == nil {
			c.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
			c.Close(ctx)
		}
	})
}

// appSecret is the JSON of AWS's PostgreSQL templates for user on the test cluster.
func (s *stack) appSecret(user, password string, extra map[string]any) string {
	m := map[string]any{"engine": "postgres", "host": "127.0.0.1", "port": s.pg.Port, "username": user, "password": password, "dbname": "postgres"}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func (s *stack) createSecret(t testing.TB, name, value string) string {
	t.Helper()
	out, err := s.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

// adminSecret creates an admin role with CREATEROLE and its secret.
func (s *stack) adminSecret(t testing.TB, full bool) (arn, role string) {
	t.Helper()
	role = uniq("adm")
	pw := randomPassword(t)
	s.createRole(t, role, pw, "CREATEROLE")
	val := `{"username":"` + role + `","password":` + jsonString(pw) + `}`
	if full {
		val = s.appSecret(role, pw, nil)
	}
	return s.createSecret(t, uniq("master"), val), role
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

func testConfig(s *stack) pgstrategy.Config {
	return pgstrategy.Config{
		Password:      password.Policy{Length: password.DefaultLength, Exclude: password.DefaultExclude},
		CABundlePEM:   s.pg.CACertPEM,
		OutgoingGrace: time.Hour,
	}
}

// newStrategy is pgstrategy.New for a configuration the test knows to be
// valid.
func newStrategy(t testing.TB, cfg pgstrategy.Config) *pgstrategy.Strategy {
	t.Helper()
	st, err := pgstrategy.New(cfg, pgstrategy.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// engine builds the in-process function: the strategy behind the engine.
func (s *stack) engine(t testing.TB, cfg pgstrategy.Config) (*rotation.Engine, *pgstrategy.Strategy) {
	t.Helper()
	st := newStrategy(t, cfg)
	t.Cleanup(st.Close)
	eng, err := rotation.New(rotation.Config{Secrets: s.sm, Strategy: st, Logger: slog.New(slog.NewJSONHandler(s.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return eng, st
}

func (s *stack) driver(inv driver.Invoker) *driver.Driver {
	return &driver.Driver{SM: s.sm, Invoke: inv, LambdaARN: s.lambdaARN, StepTimeout: 30 * time.Second}
}

// value reads a stage's value; ok is false when no version carries it.
func (s *stack) value(t testing.TB, arn, stage string) (string, bool) {
	t.Helper()
	out, err := s.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(stage)})
	if err != nil {
		if strings.Contains(err.Error(), "ResourceNotFound") {
			return "", false
		}
		t.Fatal(err)
	}
	return aws.ToString(out.SecretString), true
}

type cred struct {
	Host     string          `json:"host"`
	Port     json.RawMessage `json:"port"`
	Username string          `json:"username"`
	Password string          `json:"password"`
}

func parseCred(t testing.TB, v string) cred {
	t.Helper()
	var c cred
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// login proves that a secret value logs in, over verified TLS, as an
// application would.
func (s *stack) login(ctx context.Context, value string) error {
	var c cred
	if err := json.Unmarshal([]byte(value), &c); err != nil {
		return err
	}
	return s.loginAs(ctx, c.Username, c.Password)
}

func (s *stack) loginAs(ctx context.Context, user, password string) error {
	cfg, err := pgconn.ParseConfig("sslmode=disable")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.pg.CACertPEM)
	cfg.Host, cfg.Port, cfg.Database, cfg.User, cfg.Password = "127.0.0.1", uint16(s.pg.Port), "postgres", user, password
	cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	cfg.Fallbacks = nil
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	return c.Close(ctx)
}

func isAuthErr(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "28P01"
}

// roleState is what bad-input tests compare: the stored verifier and expiry.
func (s *stack) roleState(t testing.TB, role string) string {
	t.Helper()
	ctx := context.Background()
	c, err := s.pg.AdminConn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var st string
	err = c.QueryRow(ctx, `SELECT coalesce(rolpassword,'') || '|' || coalesce(rolvaliduntil::text,'null') FROM pg_authid WHERE rolname = $1`, role).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return "absent"
	}
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// validUntil returns a role's VALID UNTIL as text ("infinity", a timestamp, or "null").
func (s *stack) validUntil(t testing.TB, role string) string {
	t.Helper()
	ctx := context.Background()
	c, err := s.pg.AdminConn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var txt string
	if err := c.QueryRow(ctx, `SELECT coalesce(rolvaliduntil::text,'null') FROM pg_roles WHERE rolname = $1`, role).Scan(&txt); err != nil {
		t.Fatalf("valid until of %s: %v", role, err)
	}
	return txt
}

// versions returns every value the secret ever had (deprecated ones too).
func (s *stack) allValues(t testing.TB, arn string) []string {
	t.Helper()
	ctx := context.Background()
	out, err := s.sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(arn), IncludeDeprecated: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var vals []string
	for _, v := range out.Versions {
		g, err := s.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: v.VersionId})
		if err == nil && aws.ToString(g.SecretString) != "" {
			vals = append(vals, aws.ToString(g.SecretString))
		}
	}
	return vals
}

// assertPasswordsNotLogged checks the server log (log_statement='all') and
// the function's log for every password the secret ever held.
func (s *stack) assertPasswordsNotLogged(t testing.TB, passwords []string, extraLogs ...string) {
	t.Helper()
	srv, err := s.pg.ServerLog()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(srv, []byte("SCRAM-SHA-256$4096:")) {
		t.Fatal("the server log holds no ALTER ROLE with a verifier: is log_statement='all' on?")
	}
	logs := append([]string{string(srv), s.logs.String()}, extraLogs...)
	for _, pw := range passwords {
		for i, l := range logs {
			if strings.Contains(l, pw) {
				t.Fatalf("a generated password appears in log %d", i)
			}
		}
	}
}

func passwordsOf(t testing.TB, vals []string) []string {
	var pws []string
	for _, v := range vals {
		pws = append(pws, parseCred(t, v).Password)
	}
	return pws
}

func jsonUnmarshal(v string, dst any) error { return json.Unmarshal([]byte(v), dst) }

// memberOf lists the roles role is a member of, comma-separated.
func (s *stack) memberOf(t testing.TB, role string) string {
	t.Helper()
	ctx := context.Background()
	c, err := s.pg.AdminConn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var out string
	err = c.QueryRow(ctx, `SELECT coalesce(string_agg(g.rolname, ',' ORDER BY g.rolname), '') FROM pg_auth_members m
		JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $1`, role).Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// begin asks moto for a rotation's placeholder (as the service does) and
// returns its token; the test then runs the steps itself.
func (s *stack) begin(t testing.TB, arn string) string {
	t.Helper()
	out, err := s.sm.RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{
		SecretId: aws.String(arn), RotationLambdaARN: aws.String(s.lambdaARN), RotateImmediately: aws.Bool(true),
		RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.VersionId)
}

// step runs one step against the in-process engine.
func step(eng *rotation.Engine, arn, token string, st rotation.Step) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return eng.Handle(ctx, rotation.Event{Step: st, SecretID: arn, ClientRequestToken: token})
}

// setRolePassword sets a role's password behind the function's back.
func (s *stack) setRolePassword(t testing.TB, role, password string) {
	t.Helper()
	v, err := pgstrategy.ScramVerifier(password)
	if err != nil {
		t.Fatal(err)
	}
	s.super(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", pgx.Identifier{role}.Sanitize(), v))
}

// read is value for goroutines: it returns the error instead of failing.
func (s *stack) read(arn, stage string) (string, error) {
	out, err := s.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(stage)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}
