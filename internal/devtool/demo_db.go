package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// The demo's PostgreSQL part: functions/dbrotate on single-user and
// alternating-user secrets, checked by logging in over TLS.

// dbCreds is the part of a database secret the checks read.
type dbCreds struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (d *demo) login(ctx context.Context, value []byte) error {
	var c dbCreds
	if err := json.Unmarshal(value, &c); err != nil {
		return err
	}
	return d.loginAs(ctx, c.Username, c.Password)
}

func (d *demo) loginAs(ctx context.Context, user, password string) error {
	return d.Postgres.LoginTLS(ctx, d.Postgres.Host, d.Postgres.Port, d.Postgres.ServerName, "postgres", user, password)
}

func (d *demo) admin(ctx context.Context, sql ...string) error {
	conn, err := d.Postgres.AdminConn(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", strings.SplitN(s, " PASSWORD", 2)[0], err)
		}
	}
	return nil
}

func (d *demo) dbDemo(ctx context.Context) error {
	d.section("PostgreSQL credentials (functions/dbrotate, TLS verify-full, SCRAM verifiers computed client-side)")
	if err := d.admin(ctx,
		"CREATE ROLE demo_admin LOGIN CREATEROLE PASSWORD 'demo-admin-initial-password-1'",
		"CREATE ROLE app_single LOGIN PASSWORD 'app-single-initial-password-1'",
		"CREATE ROLE app_user LOGIN PASSWORD 'app-user-initial-password-1'",
		"GRANT app_user TO demo_admin WITH ADMIN OPTION",
	); err != nil {
		return err
	}
	base := fmt.Sprintf(`"engine":"postgres","host":"localhost","port":%d,"dbname":"postgres"`, d.Postgres.Port)
	adminARN, err := d.CreateSecret(ctx, "/demo/dev/db/admin", fmt.Sprintf(`{%s,"username":"demo_admin","password":"demo-admin-initial-password-1"}`, base))
	if err != nil {
		return err
	}
	singleARN, err := d.CreateSecret(ctx, "/demo/dev/db/single", fmt.Sprintf(`{%s,"username":"app_single","password":"app-single-initial-password-1"}`, base))
	if err != nil {
		return err
	}
	altARN, err := d.CreateSecret(ctx, "/demo/dev/db/app", fmt.Sprintf(`{%s,"username":"app_user","password":"app-user-initial-password-1","masterarn":%q}`, base, adminARN))
	if err != nil {
		return err
	}
	caFile, err := os.CreateTemp("", "demo-ca-*.pem")
	if err != nil {
		return err
	}
	d.stopLater(func() { os.Remove(caFile.Name()) })
	_, _ = caFile.Write(d.Postgres.CACertPEM)
	caFile.Close()
	rie, err := d.startFunction("dbrotate", "DB_CA_BUNDLE_FILE="+caFile.Name(), "OUTGOING_USER_GRACE=1h")
	if err != nil {
		return err
	}

	// Single user.
	before, _ := d.SecretValue(ctx, singleARN, rotation.StageCurrent)
	d.check("single user: the current password logs in before the rotation", d.login(ctx, before))
	if !d.check("single user: rotation succeeds", d.rotate(ctx, rie, "/demo/dev/db/single (single user)", singleARN)) {
		return nil
	}
	after, _ := d.SecretValue(ctx, singleARN, rotation.StageCurrent)
	d.check("single user: the new AWSCURRENT password logs in", d.login(ctx, after))
	d.check("single user: the old password is refused", expectErr(d.login(ctx, before), "the old password still logs in"))

	// Alternating users: two rotations, so both roles have been switched to.
	for i := 1; i <= 2; i++ {
		prevVal, _ := d.SecretValue(ctx, altARN, rotation.StageCurrent)
		if !d.check(fmt.Sprintf("alternating users: rotation %d succeeds", i), d.rotate(ctx, rie, fmt.Sprintf("/demo/dev/db/app (alternating users, rotation %d)", i), altARN)) {
			return nil
		}
		cur, _ := d.SecretValue(ctx, altARN, rotation.StageCurrent)
		prev, _ := d.SecretValue(ctx, altARN, rotation.StagePrevious)
		var c, p dbCreds
		_ = json.Unmarshal(cur, &c)
		_ = json.Unmarshal(prev, &p)
		d.line("      AWSCURRENT user %s, AWSPREVIOUS user %s", c.Username, p.Username)
		d.check(fmt.Sprintf("alternating users: AWSCURRENT (%s) logs in", c.Username), d.login(ctx, cur))
		d.check(fmt.Sprintf("alternating users: AWSPREVIOUS (%s) still logs in during the grace period", p.Username), d.login(ctx, prev))
		d.check("alternating users: the secret switched users", func() error {
			var pv dbCreds
			_ = json.Unmarshal(prevVal, &pv)
			if pv.Username == c.Username {
				return fmt.Errorf("still %s", c.Username)
			}
			return nil
		}())
		d.check(fmt.Sprintf("alternating users: the outgoing role %s has VALID UNTIL set", p.Username), d.validUntilSet(ctx, p.Username))
	}
	d.check("the server log holds no generated password", d.serverLogClean(ctx, singleARN, altARN))
	return nil
}

func (d *demo) validUntilSet(ctx context.Context, role string) error {
	conn, err := d.Postgres.AdminConn(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var until *time.Time
	if err := conn.QueryRow(ctx, "SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1", role).Scan(&until); err != nil {
		return err
	}
	if until == nil || until.After(time.Now().Add(2*time.Hour)) {
		return fmt.Errorf("rolvaliduntil = %v", until)
	}
	d.line("      %s valid until %s", role, until.UTC().Format(time.RFC3339))
	return nil
}

func (d *demo) serverLogClean(ctx context.Context, arns ...string) error {
	log, err := d.Postgres.ServerLog()
	if err != nil {
		return err
	}
	for _, arn := range arns {
		for _, stage := range []string{rotation.StageCurrent, rotation.StagePrevious} {
			v, err := d.SecretValue(ctx, arn, stage)
			if err != nil {
				continue
			}
			var c dbCreds
			_ = json.Unmarshal(v, &c)
			// The seeded passwords were set in plaintext by the demo itself;
			// only the generated ones must never reach the server.
			if c.Password != "" && !strings.Contains(c.Password, "initial-password") && strings.Contains(string(log), c.Password) {
				return fmt.Errorf("a rotated password of %s is in the server log", c.Username)
			}
		}
	}
	return nil
}
