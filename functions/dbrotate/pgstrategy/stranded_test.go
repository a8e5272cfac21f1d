package pgstrategy_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// downDuringTest runs testSecret while every database connection fails as
// if PostgreSQL were down.
func downDuringTest(t *testing.T, eng *rotation.Engine, arn, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = rotation.WithFaultHook(ctx, func(op string, ph rotation.Phase) error {
		if op == "postgres:connect" && ph == rotation.Before {
			return &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
		}
		return nil
	})
	if err := eng.Handle(ctx, rotation.Event{Step: rotation.StepTest, SecretID: arn, ClientRequestToken: token}); err == nil {
		t.Fatal("testSecret passed with the database down")
	}
}

// removePending is what an operator's clean-up of a stuck rotation does.
func (s *stack) removePending(t *testing.T, arn, token string) {
	t.Helper()
	if _, err := s.sm.UpdateSecretVersionStage(context.Background(), &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(arn), VersionStage: aws.String(rotation.StagePending), RemoveFromVersionId: aws.String(token),
	}); err != nil {
		t.Fatal(err)
	}
}

// TestRotationHealsAPasswordNoLabelPointsAt is the stranded single-user
// password: createSecret and setSecret succeed, PostgreSQL is down during
// testSecret, an operator removes the stale AWSPENDING. The database then
// holds the password of a version no label points at; the next rotation
// finds it among the stored versions, and AWSCURRENT works again.
func TestRotationHealsAPasswordNoLabelPointsAt(t *testing.T) {
	ctx := context.Background()
	s := newStack(t)
	user, pw := uniq("strand"), randomPassword(t)
	s.createRole(t, user, pw, "")
	arn := s.createSecret(t, uniq("strand"), s.appSecret(user, pw, nil))
	eng, _ := s.engine(t, testConfig(s))

	tok := s.begin(t, arn)
	runSteps(t, eng, arn, tok, rotation.StepCreate, rotation.StepSet)
	downDuringTest(t, eng, arn, tok)
	s.removePending(t, arn, tok)
	cur, _ := s.value(t, arn, rotation.StageCurrent)
	if err := s.login(ctx, cur); err == nil {
		t.Fatal("setup: AWSCURRENT still logs in; the password was not stranded")
	}

	for i := range 2 {
		if _, err := s.driver(eng).Rotate(ctx, arn, ""); err != nil {
			t.Fatalf("rotation %d after the stranding: %v", i+1, err)
		}
		cur, _ = s.value(t, arn, rotation.StageCurrent)
		if err := s.login(ctx, cur); err != nil {
			t.Fatalf("AWSCURRENT does not log in after rotation %d: %v", i+1, err)
		}
	}
	logs := s.logs.String()
	if !strings.Contains(logs, "which no label points at any more") || !strings.Contains(logs, tok) {
		t.Fatalf("setSecret did not report which version it recovered from")
	}
	if strings.Contains(logs, "changed outside rotation") {
		t.Fatal("an error claimed an outside change for a change the rotation made")
	}
	s.assertPasswordsNotLogged(t, passwordsOf(t, s.allValues(t, arn)))
}

// TestAnUnknownPasswordErrorNamesEveryVersionTried: when no stored version's
// password is accepted, the error lists the versions tried by id, never a
// password, and changes nothing.
func TestAnUnknownPasswordErrorNamesEveryVersionTried(t *testing.T) {
	ctx := context.Background()
	s := newStack(t)
	user, pw := uniq("unk"), randomPassword(t)
	s.createRole(t, user, pw, "")
	arn := s.createSecret(t, uniq("unk"), s.appSecret(user, pw, nil))
	eng, _ := s.engine(t, testConfig(s))
	if _, err := s.driver(eng).Rotate(ctx, arn, ""); err != nil {
		t.Fatal(err)
	}
	outside := randomPassword(t)
	s.setRolePassword(t, user, outside)
	tok := s.begin(t, arn)
	runSteps(t, eng, arn, tok, rotation.StepCreate)
	err := step(eng, arn, tok, rotation.StepSet)
	if rotation.ClassOf(err) != rotation.ClassAuthentication {
		t.Fatalf("want an authentication error, got %v", err)
	}
	msg := err.Error()
	prev, _ := s.value(t, arn, rotation.StagePrevious)
	for _, want := range []string{"AWSCURRENT (", "AWSPENDING (" + tok + ")", "changed outside rotation"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q: %s", want, msg)
		}
	}
	if !strings.Contains(msg, "stored versions") {
		t.Errorf("the error does not list the other stored versions tried: %s", msg)
	}
	for _, p := range append(passwordsOf(t, s.allValues(t, arn)), outside, parseCred(t, prev).Password) {
		if strings.Contains(msg, p) {
			t.Fatal("the error quotes a password")
		}
	}
	if err := s.loginAs(ctx, user, outside); err != nil {
		t.Fatalf("the failed setSecret changed the database: %v", err)
	}
}

// TestAlternatingRotationHealsARefusedAWSCURRENTWithAnotherStoredVersion:
// the current role's password was changed behind the function's back, so
// the confused-deputy login with AWSCURRENT is refused; the previous
// version (the other role, still within its grace) logs in, which proves the
// secret just as well, and the rotation moves AWSCURRENT to a working role.
func TestAlternatingRotationHealsARefusedAWSCURRENTWithAnotherStoredVersion(t *testing.T) {
	ctx := context.Background()
	s := newStack(t)
	arn, _, _ := alternating(t, s, true, false)
	eng, _ := s.engine(t, testConfig(s))
	if _, err := s.driver(eng).Rotate(ctx, arn, ""); err != nil {
		t.Fatal(err)
	}
	cur, _ := s.value(t, arn, rotation.StageCurrent)
	s.setRolePassword(t, parseCred(t, cur).Username, randomPassword(t))
	if _, err := s.driver(eng).Rotate(ctx, arn, ""); err != nil {
		t.Fatalf("rotation with AWSCURRENT refused: %v", err)
	}
	cur, _ = s.value(t, arn, rotation.StageCurrent)
	if err := s.login(ctx, cur); err != nil {
		t.Fatalf("AWSCURRENT does not log in after the rotation: %v", err)
	}
	if !strings.Contains(s.logs.String(), "currentRefused") {
		t.Fatal("setSecret did not report that AWSCURRENT was refused")
	}
}
