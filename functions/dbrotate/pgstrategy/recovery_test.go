package pgstrategy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

func runSteps(t *testing.T, eng *rotation.Engine, arn, token string, steps ...rotation.Step) {
	t.Helper()
	for _, st := range steps {
		if err := step(eng, arn, token, st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
}

func TestRecovery(t *testing.T) {
	ctx := context.Background()

	t.Run("single user: the database already has the pending password", func(t *testing.T) {
		s := newStack(t)
		user, pw := uniq("su"), randomPassword(t)
		s.createRole(t, user, pw, "")
		arn := s.createSecret(t, uniq("rec"), s.appSecret(user, pw, nil))
		eng, _ := s.engine(t, testConfig(s))
		tok := s.begin(t, arn)
		runSteps(t, eng, arn, tok, rotation.StepCreate)
		pend, _ := s.value(t, arn, rotation.StagePending)
		s.setRolePassword(t, user, parseCred(t, pend).Password)
		runSteps(t, eng, arn, tok, rotation.StepSet, rotation.StepTest, rotation.StepFinish)
		cur, _ := s.value(t, arn, rotation.StageCurrent)
		if err := s.login(ctx, cur); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(s.logs.String(), "already has the AWSPENDING password") {
			t.Fatal("setSecret did not report the recovery")
		}
	})

	t.Run("single user: the database is still at the previous password", func(t *testing.T) {
		s := newStack(t)
		user, pw := uniq("su"), randomPassword(t)
		s.createRole(t, user, pw, "")
		arn := s.createSecret(t, uniq("rec"), s.appSecret(user, pw, nil))
		eng, _ := s.engine(t, testConfig(s))
		if _, err := s.driver(eng).Rotate(ctx, arn, ""); err != nil {
			t.Fatal(err)
		}
		s.setRolePassword(t, user, pw) // back to what is now AWSPREVIOUS
		if _, err := s.driver(eng).Rotate(ctx, arn, ""); err != nil {
			t.Fatal(err)
		}
		cur, _ := s.value(t, arn, rotation.StageCurrent)
		if err := s.login(ctx, cur); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(s.logs.String(), "still at the AWSPREVIOUS password") {
			t.Fatal("setSecret did not report the recovery")
		}
	})

	t.Run("single user: a retried setSecret after the password was set", func(t *testing.T) {
		s := newStack(t)
		user, pw := uniq("su"), randomPassword(t)
		s.createRole(t, user, pw, "")
		arn := s.createSecret(t, uniq("rec"), s.appSecret(user, pw, nil))
		eng, _ := s.engine(t, testConfig(s))
		tok := s.begin(t, arn)
		runSteps(t, eng, arn, tok, rotation.StepCreate, rotation.StepSet, rotation.StepSet, rotation.StepTest, rotation.StepSet, rotation.StepFinish)
		cur, _ := s.value(t, arn, rotation.StageCurrent)
		if err := s.login(ctx, cur); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("alternating: a retried setSecret after the password was set", func(t *testing.T) {
		s := newStack(t)
		arn, _, _ := alternating(t, s, false, false)
		eng, _ := s.engine(t, testConfig(s))
		tok := s.begin(t, arn)
		runSteps(t, eng, arn, tok, rotation.StepCreate, rotation.StepSet, rotation.StepSet, rotation.StepTest, rotation.StepSet, rotation.StepTest, rotation.StepFinish)
		cur, _ := s.value(t, arn, rotation.StageCurrent)
		prev, _ := s.value(t, arn, rotation.StagePrevious)
		if err := s.login(ctx, cur); err != nil {
			t.Fatal(err)
		}
		if err := s.login(ctx, prev); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("alternating: the clone already exists", func(t *testing.T) {
		s := newStack(t)
		arn, userA, clone := alternating(t, s, false, true)
		s.createRole(t, clone, randomPassword(t), "IN ROLE "+userA)
		eng, _ := s.engine(t, testConfig(s))
		if _, err := s.driver(eng).Rotate(ctx, arn, ""); err != nil {
			t.Fatal(err)
		}
		cur, _ := s.value(t, arn, rotation.StageCurrent)
		if parseCred(t, cur).Username != clone {
			t.Fatal("the secret did not switch to the clone")
		}
		if err := s.login(ctx, cur); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(s.logs.String(), "created the clone role") {
			t.Fatal("the existing clone was created again")
		}
	})

	t.Run("alternating: an abandoned rotation leaves the pending role usable by the next", func(t *testing.T) {
		s := newStack(t)
		arn, _, _ := alternating(t, s, true, false)
		eng, _ := s.engine(t, testConfig(s))
		tok := s.begin(t, arn)
		runSteps(t, eng, arn, tok, rotation.StepCreate, rotation.StepSet)
		// The service gives up; a new rotation with a new token follows.
		d := s.driver(eng)
		if _, err := d.Resume(ctx, arn, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Rotate(ctx, arn, ""); err != nil {
			t.Fatal(err)
		}
		cur, _ := s.value(t, arn, rotation.StageCurrent)
		if err := s.login(ctx, cur); err != nil {
			t.Fatal(err)
		}
	})
}
