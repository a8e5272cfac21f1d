package pgrotate_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/functions/dbrotate/pgrotate"
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
	st := pgrotate.New(testConfig(s), nil)
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
