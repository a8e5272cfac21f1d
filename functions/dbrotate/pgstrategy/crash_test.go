package pgstrategy_test

import (
	"context"
	"sync"
	"testing"

	"github.com/rotation-suite/rotation/internal/crashtest"
	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// TestCrashPoints fails every counted call (Secrets Manager and database)
// before and after it takes effect, lets the service's retry run, and
// checks the harness's invariants plus the database ones:
//
//   - alternating users: the credential that was AWSCURRENT before the
//     rotation keeps logging in at every point (it is never touched before
//     it is AWSPREVIOUS, and then only expires after the grace period);
//   - single user: the database password is always either AWSCURRENT's or
//     AWSPENDING's (the window between setSecret and finishSecret in which
//     only the pending password works is inherent to single-user rotation;
//     it is closed by the retry).
func TestCrashPoints(t *testing.T) {
	for _, mode := range []string{"single", "clone", "pair"} {
		t.Run(mode, func(t *testing.T) {
			s := newStack(t)
			var mu sync.Mutex
			initial := map[string]string{} // secret ARN → its AWSCURRENT before the rotation
			check := func(ctx context.Context, id string, value []byte) error {
				err := s.login(ctx, string(value))
				if err == nil || mode != "single" || !isAuthErr(err) {
					return err
				}
				pend, ok := s.value(t, id, rotation.StagePending)
				if !ok || pend == string(value) {
					return err
				}
				if perr := s.login(ctx, pend); perr != nil {
					return err
				}
				return nil // the database is at AWSPENDING: single-user's window
			}
			h := crashtest.Harness{
				SM:    s.sm,
				Check: check,
				Setup: func(t *testing.T) (string, *driver.Driver) {
					var arn string
					switch mode {
					case "single":
						user, pw := uniq("cr"), randomPassword(t)
						s.createRole(t, user, pw, "")
						arn = s.createSecret(t, uniq("crash"), s.appSecret(user, pw, nil))
					case "clone":
						arn, _, _ = alternating(t, s, false, false)
					default:
						arn, _, _ = alternating(t, s, true, true)
					}
					cur, _ := s.value(t, arn, rotation.StageCurrent)
					mu.Lock()
					initial[arn] = cur
					mu.Unlock()
					eng, _ := s.engine(t, testConfig(s))
					return arn, s.driver(eng)
				},
				During: func(ctx context.Context, t *testing.T, id string, current []byte) {
					mu.Lock()
					before := initial[id]
					mu.Unlock()
					if mode == "single" {
						if err := check(ctx, id, []byte(before)); err != nil && string(current) == before {
							t.Fatalf("neither the old nor the pending credential logs in while the old one is AWSCURRENT: %v", err)
						}
						return
					}
					if err := s.login(ctx, before); err != nil {
						t.Fatalf("the credential that was AWSCURRENT before the rotation stopped working: %v", err)
					}
				},
			}
			points := crashtest.Run(t, h)
			db := 0
			for _, p := range points {
				if len(p.Op) > 9 && p.Op[:9] == "postgres:" {
					db++
				}
			}
			if db == 0 {
				t.Fatal("no database call was a failure point")
			}
			t.Logf("%s: %d failure points, %d of them database calls", mode, len(points), db)
		})
	}
}
