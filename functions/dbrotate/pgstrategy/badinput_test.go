package pgstrategy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/functions/dbrotate/pgstrategy"
	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// TestBadInputChangesNothing: each bad secret or setting fails the rotation
// with a clear, classified error, and neither the database nor AWSCURRENT
// changes.
func TestBadInputChangesNothing(t *testing.T) {
	type setup struct {
		value string   // the secret's value
		roles []string // roles whose state must not change
		cfg   func(*pgstrategy.Config)
	}
	cases := []struct {
		name  string
		make  func(t *testing.T, s *stack) setup
		class rotation.Class
		want  string
	}{
		{"malformed JSON", func(t *testing.T, s *stack) setup {
			return setup{value: `{"engine":"postgres","host":`}
		}, rotation.ClassInput, "not a JSON object"},
		{"missing password", func(t *testing.T, s *stack) setup {
			u := uniq("bad")
			s.createRole(t, u, randomPassword(t), "")
			return setup{value: s.appSecret(u, "", map[string]any{"password": nil}), roles: []string{u}}
		}, rotation.ClassInput, `no "password" field`},
		{"missing host", func(t *testing.T, s *stack) setup {
			u := uniq("bad")
			s.createRole(t, u, randomPassword(t), "")
			return setup{value: s.appSecret(u, "x-password-1", map[string]any{"host": nil}), roles: []string{u}}
		}, rotation.ClassInput, `no "host" field`},
		{"wrong engine", func(t *testing.T, s *stack) setup {
			u, pw := uniq("bad"), randomPassword(t)
			s.createRole(t, u, pw, "")
			return setup{value: s.appSecret(u, pw, map[string]any{"engine": "mysql"}), roles: []string{u}}
		}, rotation.ClassInput, "PostgreSQL secrets"},
		{"port that is not a port", func(t *testing.T, s *stack) setup {
			u, pw := uniq("bad"), randomPassword(t)
			s.createRole(t, u, pw, "")
			return setup{value: s.appSecret(u, pw, map[string]any{"port": "54x2"}), roles: []string{u}}
		}, rotation.ClassInput, "not a TCP port"},
		{"user name with quotes and a statement", func(t *testing.T, s *stack) setup {
			return setup{value: s.appSecret(`app"; ALTER ROLE postgres PASSWORD 'x'; --`, "x-password-1", nil)}
		}, rotation.ClassInput, "may contain only"},
		{"user name with a semicolon", func(t *testing.T, s *stack) setup {
			return setup{value: s.appSecret(`app;x`, "x-password-1", nil)}
		}, rotation.ClassInput, "may contain only"},
		{"user name with a comment", func(t *testing.T, s *stack) setup {
			return setup{value: s.appSecret(`app--`, "x-password-1", nil)}
		}, rotation.ClassInput, "may contain only"},
		{"hostile name in the user pair", func(t *testing.T, s *stack) setup {
			u, pw := uniq("bad"), randomPassword(t)
			s.createRole(t, u, pw, "")
			m, _ := s.adminSecret(t, false)
			return setup{value: s.appSecret(u, pw, map[string]any{"masterarn": m, "userpair": []string{u, "x'; DROP ROLE y; --"}}), roles: []string{u}}
		}, rotation.ClassInput, "may contain only"},
		{"admin secret on another host", func(t *testing.T, s *stack) setup {
			u, pw := uniq("bad"), randomPassword(t)
			s.createRole(t, u, pw, "")
			_, admRole := s.adminSecret(t, false)
			other := s.createSecret(t, uniq("master"), s.appSecret(admRole, "whatever-pw-1", map[string]any{"host": "db.elsewhere.example"}))
			return setup{value: s.appSecret(u, pw, map[string]any{"masterarn": other}), roles: []string{u, u + "_clone", admRole}}
		}, rotation.ClassConfiguration, "is for host db.elsewhere.example"},
		{"admin secret on another port", func(t *testing.T, s *stack) setup {
			u, pw := uniq("bad"), randomPassword(t)
			s.createRole(t, u, pw, "")
			other := s.createSecret(t, uniq("master"), `{"username":"someadmin","password":"whatever-pw-1","port":1}`)
			return setup{value: s.appSecret(u, pw, map[string]any{"masterarn": other}), roles: []string{u, u + "_clone"}}
		}, rotation.ClassConfiguration, "is for port 1"},
		{"admin secret missing", func(t *testing.T, s *stack) setup {
			u, pw := uniq("bad"), randomPassword(t)
			s.createRole(t, u, pw, "")
			return setup{value: s.appSecret(u, pw, map[string]any{"masterarn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"}), roles: []string{u, u + "_clone"}}
		}, rotation.ClassConfiguration, "does not exist"},
		{"admin secret unreadable (not JSON)", func(t *testing.T, s *stack) setup {
			u, pw := uniq("bad"), randomPassword(t)
			s.createRole(t, u, pw, "")
			m := s.createSecret(t, uniq("master"), `master-password-in-plain-text`)
			return setup{value: s.appSecret(u, pw, map[string]any{"masterarn": m}), roles: []string{u, u + "_clone"}}
		}, rotation.ClassInput, "admin secret"},
		{"admin secret unreadable (scheduled for deletion)", func(t *testing.T, s *stack) setup {
			u, pw := uniq("bad"), randomPassword(t)
			s.createRole(t, u, pw, "")
			m, admRole := s.adminSecret(t, true)
			if _, err := s.sm.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(m), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
				t.Fatal(err)
			}
			return setup{value: s.appSecret(u, pw, map[string]any{"masterarn": m}), roles: []string{u, u + "_clone", admRole}}
		}, "", "reading the admin secret"},
		{"confused deputy: the current credentials do not log in", func(t *testing.T, s *stack) setup {
			u := uniq("bad")
			s.createRole(t, u, randomPassword(t), "")
			m, admRole := s.adminSecret(t, false)
			return setup{value: s.appSecret(u, "not-the-real-password-1", map[string]any{"masterarn": m}), roles: []string{u, u + "_clone", admRole}}
		}, rotation.ClassAuthentication, "confused-deputy check failed"},
		{"pre-created pair with a missing role", func(t *testing.T, s *stack) setup {
			u, pw := uniq("bad"), randomPassword(t)
			s.createRole(t, u, pw, "")
			m, admRole := s.adminSecret(t, false)
			return setup{value: s.appSecret(u, pw, map[string]any{"masterarn": m, "userpair": []string{u, u + "_other"}}), roles: []string{u, u + "_other", admRole}}
		}, rotation.ClassConfiguration, "this function creates nothing"},
		{"pair partner with an attribute the current role lacks", func(t *testing.T, s *stack) setup {
			u, pw := uniq("bad"), randomPassword(t)
			s.createRole(t, u, pw, "")
			s.createRole(t, u+"_b", randomPassword(t), "CREATEDB")
			m, admRole := s.adminSecret(t, false)
			return setup{value: s.appSecret(u, pw, map[string]any{"masterarn": m, "userpair": []string{u, u + "_b"}}), roles: []string{u, u + "_b", admRole}}
		}, rotation.ClassConfiguration, "it has CREATEDB"},
		{"pair partner in a role the current role is not in", func(t *testing.T, s *stack) setup {
			u, pw := uniq("bad"), randomPassword(t)
			s.createRole(t, u, pw, "")
			s.createRole(t, u+"_b", randomPassword(t), "IN ROLE pg_read_all_data")
			m, admRole := s.adminSecret(t, false)
			return setup{value: s.appSecret(u, pw, map[string]any{"masterarn": m, "userpair": []string{u, u + "_b"}}), roles: []string{u, u + "_b", admRole}}
		}, rotation.ClassConfiguration, "member of pg_read_all_data"},
		{"existing clone that is not a member of the original", func(t *testing.T, s *stack) setup {
			u, pw := uniq("bad"), randomPassword(t)
			s.createRole(t, u, pw, "")
			s.createRole(t, u+"_clone", randomPassword(t), "")
			m, admRole := s.adminSecret(t, false)
			return setup{value: s.appSecret(u, pw, map[string]any{"masterarn": m}), roles: []string{u, u + "_clone", admRole}}
		}, rotation.ClassConfiguration, "are not related"},
		{"pending role is the admin itself", func(t *testing.T, s *stack) setup {
			u, pw := uniq("bad"), randomPassword(t)
			s.createRole(t, u, pw, "")
			m, admRole := s.adminSecret(t, false)
			return setup{value: s.appSecret(u, pw, map[string]any{"masterarn": m, "userpair": []string{u, admRole}}), roles: []string{u, admRole}}
		}, rotation.ClassConfiguration, "admin user itself"},
		{"single user whose password the database does not know", func(t *testing.T, s *stack) setup {
			u := uniq("bad")
			s.createRole(t, u, randomPassword(t), "")
			return setup{value: s.appSecret(u, "not-the-real-password-1", nil), roles: []string{u}}
		}, rotation.ClassAuthentication, "changed outside rotation"},
		{"plaintext without the opt-in", func(t *testing.T, s *stack) setup {
			u, pw := uniq("bad"), randomPassword(t)
			s.createRole(t, u, pw, "")
			return setup{value: s.appSecret(u, pw, map[string]any{"sslmode": "disable"}), roles: []string{u}}
		}, rotation.ClassConfiguration, pgstrategy.EnvAllowPlaintext},
		{"database that does not exist", func(t *testing.T, s *stack) setup {
			u, pw := uniq("bad"), randomPassword(t)
			s.createRole(t, u, pw, "")
			return setup{value: s.appSecret(u, pw, map[string]any{"dbname": "nosuchdb"}), roles: []string{u}}
		}, rotation.ClassConfiguration, "3D000"},
		{"nothing listening on the port", func(t *testing.T, s *stack) setup {
			u, pw := uniq("bad"), randomPassword(t)
			s.createRole(t, u, pw, "")
			return setup{value: s.appSecret(u, pw, map[string]any{"port": 1}), roles: []string{u}}
		}, rotation.ClassNetwork, "could not be reached"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStack(t)
			st := c.make(t, s)
			cfg := testConfig(s)
			if st.cfg != nil {
				st.cfg(&cfg)
			}
			arn := s.createSecret(t, uniq("badsecret"), st.value)
			before := map[string]string{}
			for _, r := range st.roles {
				before[r] = s.roleState(t, r)
			}
			eng, _ := s.engine(t, cfg)
			d := s.driver(eng)
			d.Attempts = 1
			_, err := d.Rotate(context.Background(), arn, "")
			if err == nil {
				t.Fatal("the rotation succeeded")
			}
			if !errors.Is(err, driver.ErrFailed) {
				t.Fatalf("the rotation did not start: %v", err)
			}
			if c.class != "" && rotation.ClassOf(err) != c.class {
				t.Errorf("class %s, want %s: %v", rotation.ClassOf(err), c.class, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error does not say %q: %v", c.want, err)
			}
			for _, leak := range []string{"x-password-1", "not-the-real-password-1", "whatever-pw-1", "master-password-in-plain-text"} {
				if strings.Contains(err.Error(), leak) || strings.Contains(s.logs.String(), leak) {
					t.Errorf("a password reached the error or the log: %v", err)
				}
			}
			cur, _ := s.value(t, arn, rotation.StageCurrent)
			if cur != st.value {
				t.Error("AWSCURRENT changed")
			}
			for r, b := range before {
				if a := s.roleState(t, r); a != b {
					t.Errorf("role %s changed in the database", r)
				}
			}
			t.Logf("%v", err)
		})
	}
	_ = fmt.Sprint
}
