package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

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
	moto  *testenv.Moto
	pg    *testenv.Postgres
	wire  *wirecount.Counter
	sdk   *sdkCounter // on the functions' in-process SDK clients
	dir   string      // scratch directory (CA bundle file)
	caPEM string      // path of the cluster's CA bundle

	// direct clients talk to moto (the driver, seeding, checks); fn* clients
	// talk through the counting proxy, as the functions do.
	sm     *secretsmanager.Client
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
	s := &stack{bootstraps: map[string]string{}}
	var wg sync.WaitGroup
	var motoErr, pgErr, buildErr error
	wg.Add(3)
	go func() { defer wg.Done(); s.moto, motoErr = testenv.StartMoto() }()
	go func() { defer wg.Done(); s.pg, pgErr = testenv.StartPostgres() }()
	go func() {
		defer wg.Done()
		for _, f := range functionNames {
			var bin string
			if bin, buildErr = testenv.BuildBootstrap("./functions/" + f); buildErr != nil {
				return
			}
			s.bootstraps[f] = bin
		}
		var bin string
		if bin, buildErr = testenv.BuildBootstrap("./cmd/rotbench/baseline"); buildErr == nil {
			s.bootstraps[baselineName] = bin
		}
	}()
	wg.Wait()
	if err := errors.Join(motoErr, pgErr, buildErr); err != nil {
		s.stop()
		var me *testenv.MissingError
		if errors.As(err, &me) {
			return nil, fmt.Errorf("%s; install it with: %s", me.What, me.Fix)
		}
		return nil, err
	}
	logf("moto at %s, PostgreSQL at %s:%d, bootstraps built", s.moto.Endpoint, s.pg.Host, s.pg.Port)
	var err error
	if s.wire, err = wirecount.Start(s.moto.Endpoint); err != nil {
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
	if s.pg != nil {
		s.pg.Stop()
	}
	if s.moto != nil {
		s.moto.Stop()
	}
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
	if err := os.WriteFile(s.caPEM, s.pg.CACertPEM, 0o644); err != nil {
		return err
	}
	cfg, err := s.moto.AWSConfig(ctx)
	if err != nil {
		return err
	}
	s.sm = secretsmanager.NewFromConfig(cfg)
	// The functions' view: the same settings the bootstraps get from their
	// environment, aimed at the counting proxy.
	if s.fnAWS, err = s.moto.AWSConfig(ctx, config.WithBaseEndpoint(s.wire.URL)); err != nil {
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
	s.lambda, err = s.moto.RegisterNoopLambda(ctx, "rotbench-rotation")
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

func (s *stack) createSecret(ctx context.Context, name, value string) (string, error) {
	out, err := s.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		return "", fmt.Errorf("create secret %s: %w", name, err)
	}
	return aws.ToString(out.ARN), nil
}

func (s *stack) value(ctx context.Context, arn, stage string) ([]byte, error) {
	out, err := s.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(stage)})
	if err != nil {
		return nil, err
	}
	return []byte(aws.ToString(out.SecretString)), nil
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
	conn, err := s.pg.AdminConn(ctx, "postgres")
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
		"engine": "postgres", "host": s.pg.Host, "port": s.pg.Port, "dbname": "postgres",
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
	cfg, err := pgx.ParseConfig("connect_timeout=10 application_name=rotbench-check")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.pg.CACertPEM)
	cfg.Host, cfg.Port, cfg.Database = c.Host, uint16(c.Port), c.DBName
	cfg.User, cfg.Password = c.Username, c.Password
	cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: c.Host, MinVersion: tls.VersionTLS12}
	cfg.Fallbacks = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("login as %s: %w", c.Username, err)
	}
	return conn.Close(ctx)
}

// serverLog returns the server log from offset on, and the new offset.
func (s *stack) serverLog(offset int64) (string, int64, error) {
	f, err := os.Open(s.pg.LogPath)
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
	st, err := os.Stat(s.pg.LogPath)
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
