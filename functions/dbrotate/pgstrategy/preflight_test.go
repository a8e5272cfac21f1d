package pgstrategy_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rotation-suite/rotation/functions/dbrotate/pgstrategy"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// recorder keeps every notification the engine publishes.
type recorder struct {
	mu sync.Mutex
	ns []rotation.Notification
}

func (r *recorder) Notify(_ context.Context, n rotation.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ns = append(r.ns, n)
	return nil
}

func (r *recorder) warnings(step string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var w []string
	for _, n := range r.ns {
		if n.Step == step {
			w = append(w, n.Warnings...)
		}
	}
	return w
}

func (s *stack) engineWithNotifier(t *testing.T, cfg pgstrategy.Config) (*rotation.Engine, *recorder) {
	t.Helper()
	st := newStrategy(t, cfg)
	t.Cleanup(st.Close)
	rec := &recorder{}
	eng, err := rotation.New(rotation.Config{Secrets: s.sm, Strategy: st, Notifier: rec, Logger: slog.New(slog.NewJSONHandler(s.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return eng, rec
}

func TestPreflightWarnsInLogAndNotification(t *testing.T) {
	ctx := context.Background()
	t.Run("pair whose roles own objects and differ", func(t *testing.T) {
		s := newStack(t)
		arn, a, b := alternating(t, s, true, false)
		table := uniq("tbl")
		s.super(t, "CREATE TABLE "+pgx.Identifier{table}.Sanitize()+" (id int)")
		t.Cleanup(func() { s.super(t, "DROP TABLE IF EXISTS "+pgx.Identifier{table}.Sanitize()) })
		s.super(t, "ALTER TABLE "+pgx.Identifier{table}.Sanitize()+" OWNER TO "+pgx.Identifier{a}.Sanitize())
		s.super(t, "GRANT pg_monitor TO "+pgx.Identifier{a}.Sanitize())
		s.super(t, "ALTER ROLE "+pgx.Identifier{b}.Sanitize()+" SET work_mem = '8MB'")
		eng, rec := s.engineWithNotifier(t, testConfig(s))
		if _, err := s.driver(eng).Rotate(ctx, arn, ""); err != nil {
			t.Fatal(err)
		}
		ws := strings.Join(rec.warnings(string(rotation.StepTest)), "\n")
		for _, want := range []string{"owns 1 database objects", "role memberships", "role settings"} {
			if !strings.Contains(ws, want) {
				t.Errorf("the testSecret notification does not warn %q; warnings:\n%s", want, ws)
			}
		}
		if !strings.Contains(s.logs.String(), "owns 1 database objects") {
			t.Error("the warning is not in the log")
		}
	})
	t.Run("clone whose original owns objects: the expected layout, no warning", func(t *testing.T) {
		s := newStack(t)
		arn, a, _ := alternating(t, s, false, false)
		table := uniq("tbl")
		s.super(t, "CREATE TABLE "+pgx.Identifier{table}.Sanitize()+" (id int)")
		t.Cleanup(func() { s.super(t, "DROP TABLE IF EXISTS "+pgx.Identifier{table}.Sanitize()) })
		s.super(t, "ALTER TABLE "+pgx.Identifier{table}.Sanitize()+" OWNER TO "+pgx.Identifier{a}.Sanitize())
		eng, rec := s.engineWithNotifier(t, testConfig(s))
		for range 2 {
			if _, err := s.driver(eng).Rotate(ctx, arn, ""); err != nil {
				t.Fatal(err)
			}
		}
		if ws := rec.warnings(string(rotation.StepTest)); len(ws) != 0 {
			t.Fatalf("unexpected warnings: %v", ws)
		}
	})
}

func TestOutgoingGraceZeroDisablesTheExpiry(t *testing.T) {
	s := newStack(t)
	arn, a, _ := alternating(t, s, true, false)
	cfg := testConfig(s)
	cfg.OutgoingGrace = 0
	eng, _ := s.engine(t, cfg)
	if _, err := s.driver(eng).Rotate(context.Background(), arn, ""); err != nil {
		t.Fatal(err)
	}
	if v := s.validUntil(t, a); v != "null" {
		t.Fatalf("the outgoing role got VALID UNTIL %s with the expiry disabled", v)
	}
	if !strings.Contains(s.logs.String(), `"outgoingExpiry":"disabled"`) {
		t.Fatal("the finish step does not say the expiry is disabled")
	}
}
