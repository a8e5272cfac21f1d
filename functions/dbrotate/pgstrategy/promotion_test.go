package pgstrategy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotation-suite/rotation/functions/dbrotate/pgstrategy"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// TestTheOutgoingUsersGraceStartsAtThePromotion: with alternating users, a
// rotation whose finishSecret comes two hours after its createSecret gives
// the outgoing role VALID UNTIL = finish time + OUTGOING_USER_GRACE.
func TestTheOutgoingUsersGraceStartsAtThePromotion(t *testing.T) {
	ctx := context.Background()
	s := newStack(t)
	arn, userA, _ := alternating(t, s, true, false)
	now := time.Now().UTC().Truncate(time.Second)
	clock := func() time.Time { return now }
	st := newStrategy(t, testConfig(s))
	t.Cleanup(st.Close)
	eng, err := rotation.New(rotation.Config{Secrets: s.sm, Strategy: st, Logger: slog.New(slog.NewJSONHandler(s.logs, nil)), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	tok := s.begin(t, arn)
	runSteps(t, eng, arn, tok, rotation.StepCreate)
	now = now.Add(2 * time.Hour)
	runSteps(t, eng, arn, tok, rotation.StepSet, rotation.StepTest, rotation.StepFinish)
	c, err := s.pg.AdminConn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var until time.Time
	if err := c.QueryRow(ctx, `SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1`, userA).Scan(&until); err != nil {
		t.Fatal(err)
	}
	if want := now.Add(testConfig(s).OutgoingGrace); !until.Equal(want) {
		t.Fatalf("the outgoing role %s is valid until %s, want finish time + grace = %s", userA, until.UTC(), want)
	}
}

// TestALateFinishHookNeverExpiresTheRoleThatIsCurrentAgain: rotation R1's
// environment stalls right after its promotion; meanwhile a whole rotation
// R2 makes R1's outgoing role current again (with a new password). When
// R1's after-finish hook finally runs, it must not expire that role.
func TestALateFinishHookNeverExpiresTheRoleThatIsCurrentAgain(t *testing.T) {
	ctx := context.Background()
	s := newStack(t)
	arn, userA, _ := alternating(t, s, true, false)
	eng1, _ := s.engine(t, testConfig(s))
	eng2, _ := s.engine(t, testConfig(s))
	tok := s.begin(t, arn)
	runSteps(t, eng1, arn, tok, rotation.StepCreate, rotation.StepSet, rotation.StepTest)
	raced := false
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	fctx = rotation.WithFaultHook(fctx, func(op string, ph rotation.Phase) error {
		if op == "secretsmanager:UpdateSecretVersionStage" && ph == rotation.After && !raced {
			raced = true
			// moto refuses RotateSecret while AWSPENDING is still on the
			// promoted version (the real service allows it); take it off
			// first, as the service does when a rotation ends.
			s.removePending(t, arn, tok)
			if _, err := s.driver(eng2).Rotate(ctx, arn, ""); err != nil {
				t.Errorf("the rotation during the stall: %v", err)
			}
		}
		return nil
	})
	// R1's finishSecret: the promotion, the stall (R2), then its hook.
	if err := eng1.Handle(fctx, rotation.Event{Step: rotation.StepFinish, SecretID: arn, ClientRequestToken: tok}); err != nil {
		t.Fatal(err)
	}
	if !raced {
		t.Fatal("setup: no rotation ran during the stall")
	}
	cur, _ := s.value(t, arn, rotation.StageCurrent)
	if parseCred(t, cur).Username != userA {
		t.Fatalf("setup: AWSCURRENT names %s, want %s again", parseCred(t, cur).Username, userA)
	}
	if v := s.validUntil(t, userA); v != "infinity" {
		t.Fatalf("the late hook expired %s, which is AWSCURRENT: VALID UNTIL %s", userA, v)
	}
	if err := s.login(ctx, cur); err != nil {
		t.Fatal(err)
	}
}

// TestATakeoverWaitsForALateFinishHookThatPassedItsCheck: rotation R1's
// after-finish hook stalls right after its check login with the AWSPREVIOUS
// password succeeded; meanwhile rotation R2 gives that same role a new
// password and makes it AWSCURRENT again. R2's setSecret must wait for the
// hook's expiry to commit (the role lock), so its VALID UNTIL 'infinity'
// comes last and AWSCURRENT keeps logging in.
func TestATakeoverWaitsForALateFinishHookThatPassedItsCheck(t *testing.T) {
	ctx := context.Background()
	s := newStack(t)
	arn, userA, _ := alternating(t, s, true, false)
	eng1, _ := s.engine(t, testConfig(s))
	eng2, _ := s.engine(t, testConfig(s))
	tok := s.begin(t, arn)
	runSteps(t, eng1, arn, tok, rotation.StepCreate, rotation.StepSet, rotation.StepTest)
	admin, err := s.pg.AdminConn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	key := pgstrategy.RoleLockKey(userA)
	var r2 chan error
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	fctx = rotation.WithFaultHook(fctx, func(op string, ph rotation.Phase) error {
		if op != "postgres:connect" || ph != rotation.After || r2 != nil {
			return nil
		}
		// The hook's check login as the outgoing role has just succeeded.
		s.removePending(t, arn, tok) // as the service does when a rotation ends (moto needs it for RotateSecret)
		r2 = make(chan error, 1)
		go func() { _, err := s.driver(eng2).Rotate(ctx, arn, ""); r2 <- err }()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case err := <-r2:
				r2 <- err
				return nil // R2 ran to its end during the stall: the hook will expire its role
			default:
			}
			var waiting bool
			err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
				AND ((classid::bigint << 32) | objid::bigint) = $1 AND objsubid = 1)`, key).Scan(&waiting)
			if err != nil {
				t.Errorf("reading pg_locks: %v", err)
				return nil
			}
			if waiting {
				return nil // R2's setSecret waits for the role's lock: let the hook go on
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Error("R2 neither finished nor waited for the role's lock within 30 s")
		return nil
	})
	if err := eng1.Handle(fctx, rotation.Event{Step: rotation.StepFinish, SecretID: arn, ClientRequestToken: tok}); err != nil {
		t.Fatal(err)
	}
	if r2 == nil {
		t.Fatal("setup: the hook made no check login")
	}
	if err := <-r2; err != nil {
		t.Fatalf("R2: %v", err)
	}
	cur, _ := s.value(t, arn, rotation.StageCurrent)
	if parseCred(t, cur).Username != userA {
		t.Fatalf("setup: AWSCURRENT names %s, want %s again", parseCred(t, cur).Username, userA)
	}
	if v := s.validUntil(t, userA); v != "infinity" {
		t.Fatalf("the late hook expired %s, which is AWSCURRENT: VALID UNTIL %s", userA, v)
	}
	if err := s.login(ctx, cur); err != nil {
		t.Fatal(err)
	}
}

// TestTheRoleLockIsBoundedAndDiesWithItsSession, on PostgreSQL through the
// pgx seam: a second session waiting for a role's lock gets 55P03 within the
// time its context leaves, and is left without a transaction; a commit or
// a closed session (what a crashed Lambda leaves) releases the lock.
func TestTheRoleLockIsBoundedAndDiesWithItsSession(t *testing.T) {
	ctx := context.Background()
	s := newStack(t)
	role, pw := uniq("adm"), randomPassword(t)
	s.createRole(t, role, pw, "CREATEROLE")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.pg.CACertPEM)
	tgt := pgstrategy.Target{Host: "127.0.0.1", Port: s.pg.Port, Database: "postgres",
		TLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	db := pgstrategy.NewPGX()
	open := func() pgstrategy.Session {
		c, err := db.Connect(ctx, tgt, pgstrategy.Login{User: role, Password: pw, Admin: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	locked := uniq("app")
	a, b := open(), open()
	if err := a.LockRole(ctx, locked); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	err := b.LockRole(wctx, locked)
	cancel()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "55P03" {
		t.Fatalf("a second session's LockRole while the first holds the lock: %v, want SQLSTATE 55P03", err)
	}
	if !b.Alive() {
		t.Fatal("the waiter's session died; it should only have rolled back")
	}
	if err := a.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.LockRole(ctx, locked); err != nil {
		t.Fatalf("after the holder's commit, with no transaction left from the timeout: %v", err)
	}
	b.Close() // as a crashed Lambda's connection ends
	c := open()
	wctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.LockRole(wctx, locked); err != nil {
		t.Fatalf("the lock of a closed session was not released: %v", err)
	}
	if err := c.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}
