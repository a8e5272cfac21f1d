package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"

	"github.com/rotation-suite/rotation/functions/dbrotate/pgstrategy"
	"github.com/rotation-suite/rotation/internal/password"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/internal/wirecount"
)

// stack is the local stack the benchmarks run on: moto behind the counting
// proxy, a throwaway PostgreSQL cluster, and the bootstraps built for this
// machine.
type stack struct {
	*testenv.Stack // moto, PostgreSQL, the direct Secrets Manager client
	wire           *wirecount.Counter
	sdk            *sdkCounter // on the functions' in-process SDK clients
	dir            string      // scratch directory (CA bundle file)
	caPEM          string      // path of the cluster's CA bundle

	// The Stack's client talks to moto directly (the driver, seeding,
	// checks); fn* clients talk through the counting proxy, as the functions do.
	fnAWS  aws.Config
	fnSM   *secretsmanager.Client
	kmsKey string
	lambda string // the no-op rotation function registered in moto

	bootstraps map[string]string // function → host bootstrap path
}

var functionNames = []string{"dbrotate", "jwtrotate", "apikeyrotate"}

// baselineName is the empty aws-lambda-go function (./cmd/rotbench/baseline)
// whose cold start is the floor the functions' start-ups are compared with.
const baselineName = "baseline"

// startStack starts moto and PostgreSQL and builds the three bootstraps for
// this machine, all at once.
func startStack(ctx context.Context, logf func(string, ...any)) (*stack, error) {
	pkgs := map[string]string{baselineName: "./cmd/rotbench/baseline"}
	o := testenv.StackOptions{Postgres: true}
	for _, f := range functionNames {
		pkgs[f] = "./functions/" + f
		o.Bootstraps = append(o.Bootstraps, pkgs[f])
	}
	o.Bootstraps = append(o.Bootstraps, pkgs[baselineName])
	ts, err := testenv.StartStack(ctx, o)
	if err != nil {
		testenv.StopAll()
		var me *testenv.MissingError
		if errors.As(err, &me) {
			return nil, fmt.Errorf("%s; install it with: %s", me.What, me.Fix)
		}
		return nil, err
	}
	s := &stack{Stack: ts, bootstraps: map[string]string{}}
	for name, pkg := range pkgs {
		s.bootstraps[name] = ts.Bootstraps[pkg]
	}
	logf("moto at %s, PostgreSQL at %s:%d, bootstraps built", s.Moto.Endpoint, s.Postgres.Host, s.Postgres.Port)
	if s.wire, err = wirecount.Start(s.Moto.Endpoint); err != nil {
		s.stop()
		return nil, err
	}
	if err := s.seedAWS(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *stack) stop() {
	if s.wire != nil {
		s.wire.Stop()
	}
	s.Stack.Stop()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
	testenv.StopAll() // the built bootstraps
}

func (s *stack) seedAWS(ctx context.Context) error {
	var err error
	if s.dir, err = os.MkdirTemp("", "rotbench-*"); err != nil {
		return err
	}
	s.caPEM = filepath.Join(s.dir, "db-ca.pem")
	if err := os.WriteFile(s.caPEM, s.Postgres.CACertPEM, 0o644); err != nil {
		return err
	}
	cfg, err := s.Moto.AWSConfig(ctx)
	if err != nil {
		return err
	}
	// The functions' view: the same settings the bootstraps get from their
	// environment, aimed at the counting proxy.
	if s.fnAWS, err = s.Moto.AWSConfig(ctx, config.WithBaseEndpoint(s.wire.URL)); err != nil {
		return err
	}
	s.sdk = newSDKCounter()
	s.fnAWS.APIOptions = append(s.fnAWS.APIOptions, s.sdk.apiOption)
	s.fnSM = secretsmanager.NewFromConfig(s.fnAWS)
	key, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("rotbench: JWT private keys")})
	if err != nil {
		return fmt.Errorf("create KMS key: %w", err)
	}
	s.kmsKey = aws.ToString(key.KeyMetadata.Arn)
	s.lambda, err = s.Moto.RegisterNoopLambda(ctx, "rotbench-rotation")
	return err
}

// awsEnv is the AWS part of a bootstrap's environment: static test
// credentials, and every SDK endpoint at the counting proxy.
func (s *stack) awsEnv() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.wire.URL,
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_REGION=" + testenv.Region,
		"AWS_DEFAULT_REGION=" + testenv.Region,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// ---- PostgreSQL seeding ----

// dbRole is a login role the benchmark creates, with its password.
type dbRole struct{ name, password string }

// newRoles creates login roles with random passwords. The statements carry
// SCRAM verifiers, never the passwords (the server logs every statement).
func (s *stack) newRoles(ctx context.Context, attrs string, names ...string) ([]dbRole, error) {
	policy := password.Policy{Length: password.DefaultLength, Exclude: password.DefaultExclude}
	roles := make([]dbRole, len(names))
	var stmts []string
	for i, n := range names {
		pw, err := policy.Generate()
		if err != nil {
			return nil, err
		}
		v, err := pgstrategy.ScramVerifier(pw)
		if err != nil {
			return nil, err
		}
		roles[i] = dbRole{n, pw}
		stmts = append(stmts, fmt.Sprintf("CREATE ROLE %s LOGIN %s PASSWORD '%s'", pgx.Identifier{n}.Sanitize(), attrs, v))
	}
	conn, err := s.Postgres.AdminConn(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	for len(stmts) > 0 {
		k := min(len(stmts), 200)
		if err := conn.PgConn().Exec(ctx, strings.Join(stmts[:k], ";\n")).Close(); err != nil {
			return nil, fmt.Errorf("create roles: %w", err)
		}
		stmts = stmts[k:]
	}
	return roles, nil
}

// dbSecret is the JSON of a database secret for role r, in the shape of AWS's
// templates (plus masterarn for alternating users).
func (s *stack) dbSecret(r dbRole, masterARN string) string {
	m := map[string]any{
		"engine": "postgres", "host": s.Postgres.Host, "port": s.Postgres.Port, "dbname": "postgres",
		"username": r.name, "password": r.password,
	}
	if masterARN != "" {
		m["masterarn"] = masterARN
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// login logs in with a database secret's credentials over TLS verify-full,
// as an application would.
func (s *stack) login(ctx context.Context, value []byte) error {
	var c struct {
		Host     string `json:"host"`
		Port     int    `json:"port"`
		Username string `json:"username"`
		Password string `json:"password"`
		DBName   string `json:"dbname"`
	}
	if err := json.Unmarshal(value, &c); err != nil {
		return fmt.Errorf("parse secret: %w", err)
	}
	return s.Postgres.LoginTLS(ctx, c.Host, c.Port, c.Host, c.DBName, c.Username, c.Password)
}

// serverLog returns the server log from offset on, and the new offset.
func (s *stack) serverLog(offset int64) (string, int64, error) {
	f, err := os.Open(s.Postgres.LogPath)
	if err != nil {
		return "", offset, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", offset, err
	}
	if st.Size() <= offset {
		return "", st.Size(), nil
	}
	buf := make([]byte, st.Size()-offset)
	n, err := f.ReadAt(buf, offset)
	if err != nil && n == 0 {
		return "", offset, err
	}
	return string(buf[:n]), offset + int64(n), nil
}

func (s *stack) logOffset() int64 {
	st, err := os.Stat(s.Postgres.LogPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// logFacts counts, in a stretch of server log, the sessions the rotation
// functions opened (application_name secrets-manager-rotation) and the
// failed password logins (SQLSTATE 28P01, "password authentication failed").
type logFacts struct{ sessions, failedLogins int }

func parseLog(text string) logFacts {
	var f logFacts
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.Contains(line, "connection authorized:") && strings.Contains(line, "application_name=secrets-manager-rotation"):
			f.sessions++
		case strings.Contains(line, "password authentication failed"):
			f.failedLogins++
		}
	}
	return f
}
