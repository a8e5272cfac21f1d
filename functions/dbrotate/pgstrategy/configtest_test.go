package pgstrategy_test

import (
	"strings"
	"testing"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// TestConfigurationTestMode: with RotateImmediately=false the service runs
// testSecret against an empty pending version; the function then proves the
// current configuration reaches the database (and, with alternating users,
// that the admin secret is usable) and changes nothing.
func TestConfigurationTestMode(t *testing.T) {
	for _, mode := range []string{"single", "alternating"} {
		t.Run(mode, func(t *testing.T) {
			s := newStack(t)
			var arn string
			var roles []string
			if mode == "single" {
				user, pw := uniq("ct"), randomPassword(t)
				s.createRole(t, user, pw, "")
				arn = s.createSecret(t, uniq("ct"), s.appSecret(user, pw, nil))
				roles = []string{user}
			} else {
				var a, b string
				arn, a, b = alternating(t, s, true, false)
				roles = []string{a, b}
			}
			before := map[string]string{}
			for _, r := range roles {
				before[r] = s.roleState(t, r)
			}
			eng, _ := s.engine(t, testConfig(s))
			tok := s.begin(t, arn)
			if err := step(eng, arn, tok, rotation.StepTest); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(s.logs.String(), `"configTest":true`) {
				t.Fatal("the engine did not run a configuration test")
			}
			for _, r := range roles {
				if s.roleState(t, r) != before[r] {
					t.Fatalf("role %s changed", r)
				}
			}

			// A broken configuration fails the test.
			bad := s.createSecret(t, uniq("ct"), s.appSecret(roles[0], "not-the-password-1", nil))
			tok = s.begin(t, bad)
			if err := step(eng, bad, tok, rotation.StepTest); rotation.ClassOf(err) != rotation.ClassAuthentication {
				t.Fatalf("want an authentication error, got %v", err)
			}
		})
	}
}
