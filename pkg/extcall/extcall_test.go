package extcall_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/pkg/extcall"
)

func TestWithoutABudgetACallRunsUnderTheCallersDeadlineAsGiven(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	want, _ := ctx.Deadline()
	ran := false
	err := extcall.Do(ctx, "kms:Decrypt", func(cctx context.Context) error {
		ran = true
		got, ok := cctx.Deadline()
		if !ok || !got.Equal(want) {
			t.Errorf("call deadline %v, want the caller's %v", got, want)
		}
		return nil
	})
	if err != nil || !ran {
		t.Fatalf("a call with 500 ms left and no budget: ran %t, %v", ran, err)
	}
}

func TestUnderABudgetACallWithTooLittleTimeLeftIsNotStarted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 550*time.Millisecond)
	defer cancel()
	ctx = extcall.WithBudget(ctx, extcall.Budget{MaxCall: 10 * time.Second, Reserve: 500 * time.Millisecond, MinCall: 100 * time.Millisecond})
	err := extcall.Do(ctx, "kms:Decrypt", func(context.Context) error { t.Fatal("started"); return nil })
	var ee *extcall.Error
	if !errors.As(err, &ee) || ee.Class != extcall.ClassTimeout || ee.Op != "kms:Decrypt" || !ee.Retryable || !errors.Is(err, extcall.ErrBudgetExhausted) {
		t.Fatalf("want a retryable timeout naming the call, got %v", err)
	}
}

func TestUnderABudgetTheCallDeadlineKeepsTheReserve(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dl, _ := ctx.Deadline()
	ctx = extcall.WithBudget(ctx, extcall.Budget{MaxCall: time.Minute, Reserve: time.Second})
	_ = extcall.Do(ctx, "op", func(cctx context.Context) error {
		got, _ := cctx.Deadline()
		if got.After(dl.Add(-900 * time.Millisecond)) { // 1 s reserve, less the time Do took to compute it
			t.Errorf("call deadline %v leaves less than the reserve before %v", got, dl)
		}
		return nil
	})
	ctx = extcall.WithBudget(context.Background(), extcall.Budget{MaxCall: 20 * time.Millisecond})
	err := extcall.Do(ctx, "slow", func(cctx context.Context) error { <-cctx.Done(); return cctx.Err() })
	if c, _ := extcall.ClassOf(err); c != extcall.ClassTimeout {
		t.Fatalf("a call over MaxCall: %v", err)
	}
}

func TestFaultHooksAndObserversSeeEveryCallByNameAndPhase(t *testing.T) {
	var seen []string
	boom := errors.New("injected")
	ctx := extcall.WithFaultHook(context.Background(), func(op string, ph extcall.Phase) error {
		seen = append(seen, op+map[extcall.Phase]string{extcall.Before: "/before", extcall.After: "/after"}[ph])
		if op == "b" && ph == extcall.After {
			return boom
		}
		return nil
	})
	var c extcall.Counter
	ctx = extcall.WithObserver(ctx, c.Observe)
	calls := 0
	fn := func(context.Context) error { calls++; return nil }
	if err := extcall.Do(ctx, "kms:a", fn); err != nil {
		t.Fatal(err)
	}
	if err := extcall.Do(ctx, "b", fn); !errors.Is(err, boom) {
		t.Fatalf("after-fault: %v", err)
	}
	if calls != 2 || len(seen) != 4 || seen[3] != "b/after" {
		t.Fatalf("calls %d, hook saw %v", calls, seen)
	}
	if c.Count("kms:") != 1 || c.Count("") != 2 || c.Snapshot()["b"] != 1 {
		t.Fatalf("counts %v", c.Snapshot())
	}
	c.Reset()
	if c.Count("") != 0 {
		t.Fatal("reset kept counts")
	}
}
