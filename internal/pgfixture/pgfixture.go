// Package pgfixture provisions many PostgreSQL secrets on the local stack
// (a testenv PostgreSQL cluster and moto) for scale tests and benchmarks of
// dbrotate: login roles with SCRAM verifiers, their secrets in the JSON of
// AWS's templates, and for alternating users one shared admin role and
// secret. It owns no rotation logic and is not used by the function.
package pgfixture

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"

	"github.com/rotation-suite/rotation/functions/dbrotate/pgstrategy"
	"github.com/rotation-suite/rotation/internal/password"
	"github.com/rotation-suite/rotation/internal/testenv"
)

// Mode selects the kind of secrets Provision makes.
type Mode string

// The modes of pgstrategy.
const (
	Single Mode = pgstrategy.ModeSingle
	Clone  Mode = pgstrategy.ModeClone
	Pair   Mode = pgstrategy.ModePair
)

// Fleet is a set of provisioned secrets.
type Fleet struct {
	Prefix     string   // unique prefix of every role and secret name
	SecretARNs []string // the rotated secrets
	AdminARN   string   // the shared admin secret (alternating modes)
	roles      []string
	pg         *testenv.Postgres
	sm         *secretsmanager.Client
}

// Provision creates n secrets of mode on pg and sm. Secrets point at
// 127.0.0.1 with sslmode verify-full; give the function pg.CACertPEM
// (DB_CA_BUNDLE_FILE=pg.CACertPath) so it trusts the cluster.
func Provision(ctx context.Context, pg *testenv.Postgres, sm *secretsmanager.Client, mode Mode, n int) (*Fleet, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	f := &Fleet{Prefix: "fl" + hex.EncodeToString(b), pg: pg, sm: sm}
	conn, err := pg.AdminConn(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	pol := password.Policy{Length: 32, Exclude: password.DefaultExclude}
	newRole := func(name, attrs string) (string, error) {
		pw, err := pol.Generate()
		if err != nil {
			return "", err
		}
		v, err := pgstrategy.ScramVerifier(pw)
		if err != nil {
			return "", err
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE ROLE %s WITH LOGIN PASSWORD '%s' %s", pgx.Identifier{name}.Sanitize(), v, attrs)); err != nil {
			return "", fmt.Errorf("create role %s: %w", name, err)
		}
		f.roles = append(f.roles, name)
		return pw, nil
	}
	secret := func(name string, fields map[string]any) (string, error) {
		val, err := json.Marshal(fields)
		if err != nil {
			return "", err
		}
		out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(string(val))})
		if err != nil {
			return "", fmt.Errorf("create secret %s: %w", name, err)
		}
		return aws.ToString(out.ARN), nil
	}
	if mode != Single {
		adm := f.Prefix + "_admin"
		pw, err := newRole(adm, "CREATEROLE")
		if err != nil {
			return f, err
		}
		if f.AdminARN, err = secret(f.Prefix+"/admin", map[string]any{"username": adm, "password": pw}); err != nil {
			return f, err
		}
	}
	for i := range n {
		user := fmt.Sprintf("%s_u%d", f.Prefix, i)
		pw, err := newRole(user, "")
		if err != nil {
			return f, err
		}
		fields := map[string]any{"engine": "postgres", "host": "127.0.0.1", "port": pg.Port, "username": user, "password": pw, "dbname": "postgres"}
		switch mode {
		case Clone:
			fields["masterarn"] = f.AdminARN
			f.roles = append(f.roles, user+"_clone")
		case Pair:
			if _, err := newRole(user+"_b", ""); err != nil {
				return f, err
			}
			fields["masterarn"] = f.AdminARN
			fields["userpair"] = []string{user, user + "_b"}
		}
		arn, err := secret(fmt.Sprintf("%s/app%d", f.Prefix, i), fields)
		if err != nil {
			return f, err
		}
		f.SecretARNs = append(f.SecretARNs, arn)
	}
	return f, nil
}

// Cleanup drops the fleet's roles (clones included) and deletes its secrets.
func (f *Fleet) Cleanup(ctx context.Context) error {
	var first error
	for _, arn := range append(f.SecretARNs, f.AdminARN) {
		if arn == "" {
			continue
		}
		if _, err := f.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil && first == nil {
			first = err
		}
	}
	conn, err := f.pg.AdminConn(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for i := len(f.roles) - 1; i >= 0; i-- {
		if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{f.roles[i]}.Sanitize()); err != nil && first == nil {
			first = err
		}
	}
	return first
}
