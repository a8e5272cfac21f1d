package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"
)

// StackOptions says what StartStack starts and builds besides moto.
type StackOptions struct {
	Postgres   bool     // a throwaway PostgreSQL cluster
	RIE        bool     // build the Lambda runtime interface emulator
	Bootstraps []string // function packages to build for this machine (BuildBootstrap), e.g. "./functions/dbrotate"
}

// Stack is the local stack the developer tool and the benchmarks run on:
// moto, optionally PostgreSQL, and the function bootstraps built for this
// machine, with a Secrets Manager client aimed at moto.
type Stack struct {
	Moto       *Moto
	Postgres   *Postgres         // nil unless StackOptions.Postgres
	Bootstraps map[string]string // package path → bootstrap binary
	SM         *secretsmanager.Client
}

// StartStack starts moto (and PostgreSQL) and builds what o names, all at
// once. On failure it stops what it started; when a prerequisite is missing
// the error is that *MissingError, so the caller can print its fix.
func StartStack(ctx context.Context, o StackOptions) (*Stack, error) {
	s := &Stack{Bootstraps: map[string]string{}}
	var wg sync.WaitGroup
	var motoErr, pgErr, buildErr error
	wg.Add(2)
	go func() { defer wg.Done(); s.Moto, motoErr = StartMoto() }()
	go func() {
		defer wg.Done()
		if o.RIE {
			if _, buildErr = RIEBinary(); buildErr != nil {
				return
			}
		}
		for _, pkg := range o.Bootstraps {
			var bin string
			if bin, buildErr = BuildBootstrap(pkg); buildErr != nil {
				return
			}
			s.Bootstraps[pkg] = bin
		}
	}()
	if o.Postgres {
		wg.Add(1)
		go func() { defer wg.Done(); s.Postgres, pgErr = StartPostgres() }()
	}
	wg.Wait()
	errs := []error{motoErr, pgErr, buildErr}
	for _, err := range errs {
		var me *MissingError
		if errors.As(err, &me) {
			s.Stop()
			return nil, me
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.Stop()
		return nil, err
	}
	cfg, err := s.Moto.AWSConfig(ctx)
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.SM = secretsmanager.NewFromConfig(cfg)
	return s, nil
}

// Stop stops moto and PostgreSQL. The built binaries stay until StopAll.
func (s *Stack) Stop() {
	if s.Postgres != nil {
		s.Postgres.Stop()
	}
	if s.Moto != nil {
		s.Moto.Stop()
	}
}

// CreateSecret creates a secret with a string value in moto and returns its
// ARN.
func (s *Stack) CreateSecret(ctx context.Context, name, value string) (string, error) {
	out, err := s.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		return "", fmt.Errorf("create secret %s: %w", name, err)
	}
	return aws.ToString(out.ARN), nil
}

// SecretValue returns the string value of the version of secret arn that
// carries stage.
func (s *Stack) SecretValue(ctx context.Context, arn, stage string) ([]byte, error) {
	out, err := s.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(stage)})
	if err != nil {
		return nil, err
	}
	return []byte(aws.ToString(out.SecretString)), nil
}

// LoginTLS logs in to database db at host:port as user, over TLS
// verify-full against the cluster's CA with serverName as the expected
// certificate name, the way an application does, and closes the
// connection. The error names the user, never the password.
func (p *Postgres) LoginTLS(ctx context.Context, host string, port int, serverName, db, user, password string) error {
	cfg, err := pgx.ParseConfig("connect_timeout=10")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CACertPEM)
	cfg.Host, cfg.Port, cfg.Database = host, uint16(port), db
	cfg.User, cfg.Password = user, password
	cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}
	cfg.Fallbacks = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("login as %s: %w", user, err)
	}
	return conn.Close(ctx)
}
