package pgstrategy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// parseValidUntil reads PostgreSQL's text form of a timestamptz.
func parseValidUntil(t testing.TB, s string) time.Time {
	t.Helper()
	for _, layout := range []string{"2006-01-02 15:04:05-07", "2006-01-02 15:04:05.999999-07"} {
		if v, err := time.Parse(layout, s); err == nil {
			return v
		}
	}
	t.Fatalf("VALID UNTIL %q is not a timestamp", s)
	return time.Time{}
}

func TestSingleUserTenRotations(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	user, pw := uniq("su"), randomPassword(t)
	s.createRole(t, user, pw, "")
	// The port as a string, as some AWS templates write it.
	arn := s.createSecret(t, uniq("single"), s.appSecret(user, pw, map[string]any{"port": fmt.Sprint(s.pg.Port), "note": "kept"}))
	eng, _ := s.engine(t, testConfig(s))
	d := s.driver(eng)
	old := pw
	for i := range 10 {
		res, err := d.Rotate(ctx, arn, "")
		if err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
		if res.Attempts != 1 {
			t.Errorf("rotation %d needed %d attempts", i+1, res.Attempts)
		}
		cur, _ := s.value(t, arn, rotation.StageCurrent)
		if err := s.login(ctx, cur); err != nil {
			t.Fatalf("rotation %d: AWSCURRENT does not log in: %v", i+1, err)
		}
		if err := s.loginAs(ctx, user, old); !isAuthErr(err) {
			t.Fatalf("rotation %d: the old password still logs in (or another error): %v", i+1, err)
		}
		c := parseCred(t, cur)
		if c.Username != user || c.Password == old || len(c.Password) != 32 {
			t.Fatalf("rotation %d: unexpected new value (user %s, password length %d)", i+1, c.Username, len(c.Password))
		}
		if string(c.Port) != fmt.Sprintf("%q", fmt.Sprint(s.pg.Port)) {
			t.Fatalf("the port's string form was not kept: %s", c.Port)
		}
		old = c.Password
	}
	cur, _ := s.value(t, arn, rotation.StageCurrent)
	if !jsonHas(cur, "note", "kept") {
		t.Fatal("an unknown field was lost")
	}
	s.assertPasswordsNotLogged(t, passwordsOf(t, s.allValues(t, arn)))
}

func jsonHas(v, k, want string) bool {
	m := map[string]any{}
	_ = jsonUnmarshal(v, &m)
	return m[k] == want
}

// alternating sets up an alternating-users secret: clone mode when pair is
// false (the clone does not exist yet), pre-created pair otherwise.
func alternating(t *testing.T, s *stack, pair, fullAdmin bool) (arn, userA, userB string) {
	t.Helper()
	masterARN, _ := s.adminSecret(t, fullAdmin)
	userA = uniq("app")
	pw := randomPassword(t)
	s.createRole(t, userA, pw, "")
	extra := map[string]any{"masterarn": masterARN}
	if pair {
		userB = userA + "_b"
		s.createRole(t, userB, randomPassword(t), "")
		extra["userpair"] = []string{userA, userB}
	} else {
		userB = userA + "_clone"
		s.dropLater(t, userB)
	}
	arn = s.createSecret(t, uniq("alt"), s.appSecret(userA, pw, extra))
	return arn, userA, userB
}

func TestAlternatingTenRotations(t *testing.T) {
	for _, mode := range []struct {
		name            string
		pair, fullAdmin bool
	}{{"clone with an RDS-shaped admin secret", false, false}, {"pre-created pair with a full admin secret", true, true}} {
		t.Run(mode.name, func(t *testing.T) {
			s := newStack(t)
			ctx := context.Background()
			arn, userA, userB := alternating(t, s, mode.pair, mode.fullAdmin)
			eng, _ := s.engine(t, testConfig(s))
			d := s.driver(eng)
			before := s.roleState(t, userB)
			for i := range 10 {
				prevVal, _ := s.value(t, arn, rotation.StageCurrent)
				start := time.Now()
				if _, err := d.Rotate(ctx, arn, ""); err != nil {
					t.Fatalf("rotation %d: %v", i+1, err)
				}
				cur, _ := s.value(t, arn, rotation.StageCurrent)
				prev, ok := s.value(t, arn, rotation.StagePrevious)
				if !ok || prev != prevVal {
					t.Fatalf("rotation %d: AWSPREVIOUS is not the value that was current", i+1)
				}
				if err := s.login(ctx, cur); err != nil {
					t.Fatalf("rotation %d: AWSCURRENT does not log in: %v", i+1, err)
				}
				if err := s.login(ctx, prev); err != nil {
					t.Fatalf("rotation %d: AWSPREVIOUS no longer logs in: %v", i+1, err)
				}
				cu, pu := parseCred(t, cur).Username, parseCred(t, prev).Username
				want := map[bool]string{true: userB, false: userA}[i%2 == 0]
				if cu != want || pu == cu {
					t.Fatalf("rotation %d: current user %s, previous %s; want current %s", i+1, cu, pu, want)
				}
				if v := s.validUntil(t, cu); v != "infinity" {
					t.Fatalf("rotation %d: the current role %s has VALID UNTIL %s, want infinity", i+1, cu, v)
				}
				until := parseValidUntil(t, s.validUntil(t, pu))
				if until.Before(start.Add(time.Hour-time.Minute)) || until.After(time.Now().Add(time.Hour+time.Minute)) {
					t.Fatalf("rotation %d: the outgoing role's VALID UNTIL is %v, want about an hour from now", i+1, until)
				}
				if mode.pair && i == 0 && s.roleState(t, userB) == before {
					t.Fatal("the pair's second role was not changed")
				}
			}
			if !mode.pair {
				if got := s.memberOf(t, userB); got != userA {
					t.Fatalf("the clone's memberships are %q, want %q", got, userA)
				}
			}
			s.assertPasswordsNotLogged(t, passwordsOf(t, s.allValues(t, arn)))
		})
	}
}
