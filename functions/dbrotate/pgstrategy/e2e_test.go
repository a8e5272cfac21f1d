package pgstrategy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// startFunction builds ./functions/dbrotate as Lambda builds it and runs it
// under the runtime interface emulator, pointed at moto.
func startFunction(t *testing.T, s *stack, env ...string) *testenv.RIE {
	t.Helper()
	bin, err := testenv.BuildBootstrap("./functions/dbrotate")
	testenv.Require(t, err)
	env = append(append(s.moto.Env(), "DB_CA_BUNDLE_FILE="+s.pg.CACertPath, "OUTGOING_USER_GRACE=1h", "AWS_LAMBDA_FUNCTION_NAME=dbrotate"), env...)
	rie, err := testenv.StartRIE(bin, env)
	testenv.Require(t, err)
	t.Cleanup(rie.Stop)
	return rie
}

// TestEndToEndUnderTheRuntimeEmulator drives the built bootstrap with the
// local driver: the real binary, the real SDK against moto, real PostgreSQL.
func TestEndToEndUnderTheRuntimeEmulator(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	rie := startFunction(t, s)
	d := s.driver(rie)

	altARN, _, _ := alternating(t, s, false, false)
	user, pw := uniq("e2e"), randomPassword(t)
	s.createRole(t, user, pw, "")
	singleARN := s.createSecret(t, uniq("e2e"), s.appSecret(user, pw, nil))

	for i := range 3 {
		for _, arn := range []string{altARN, singleARN} {
			if _, err := d.Rotate(ctx, arn, ""); err != nil {
				t.Fatalf("rotation %d of %s: %v\nfunction log:\n%s", i+1, arn, err, rie.Logs())
			}
			cur, _ := s.value(t, arn, rotation.StageCurrent)
			if err := s.login(ctx, cur); err != nil {
				t.Fatalf("rotation %d: AWSCURRENT does not log in: %v", i+1, err)
			}
		}
		prev, _ := s.value(t, altARN, rotation.StagePrevious)
		if err := s.login(ctx, prev); err != nil {
			t.Fatalf("alternating AWSPREVIOUS does not log in: %v", err)
		}
	}
	logs := rie.Logs()
	if !strings.Contains(logs, `"outgoingValidUntil"`) {
		t.Fatal("the function's log does not show the outgoing role's expiry")
	}
	var pws []string
	for _, arn := range []string{altARN, singleARN} {
		pws = append(pws, passwordsOf(t, s.allValues(t, arn))...)
	}
	s.assertPasswordsNotLogged(t, pws, logs)
}

// TestConfigurationErrorUnderTheRuntimeEmulator: an invalid environment is
// reported at start-up, once, and every invocation fails with it.
func TestConfigurationErrorUnderTheRuntimeEmulator(t *testing.T) {
	s := newStack(t)
	rie := startFunction(t, s, "PASSWORD_LENGTH=lots", "OUTGOING_USER_GRACE=soon")
	user, pw := uniq("e2e"), randomPassword(t)
	s.createRole(t, user, pw, "")
	arn := s.createSecret(t, uniq("e2e"), s.appSecret(user, pw, nil))
	d := s.driver(rie)
	d.Attempts = 2
	_, err := d.Rotate(context.Background(), arn, "")
	if err == nil {
		t.Fatal("the rotation succeeded with an invalid environment")
	}
	for _, want := range []string{"configuration error", "PASSWORD_LENGTH", "OUTGOING_USER_GRACE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if n := strings.Count(rie.Logs(), "configuration error: every rotation will fail"); n != 1 {
		t.Errorf("the configuration error was logged %d times, want once at start-up", n)
	}
	cur, _ := s.value(t, arn, rotation.StageCurrent)
	if cur != s.appSecret(user, pw, nil) {
		t.Error("AWSCURRENT changed")
	}
}
