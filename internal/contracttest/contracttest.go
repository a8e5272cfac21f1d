// Package contracttest is the rotation contract every strategy keeps, written
// once as named rules and run for every strategy: each rule is a short,
// fixed sequence of what Secrets Manager, a crash or an operator can do,
// played through the real engine over the real-rules Secrets Manager fake
// (internal/explore's World), with the explorer's invariants checked after
// every action and the rule's own expectation checked at the end.
//
// A strategy joins by giving an explore.Subject (its strategy over an
// in-memory target, and how the target tells whether it accepts a value);
// Run does the rest. The model-based exploration (explore.Explore) searches
// far more sequences at random; these rules are the ones a reader checks
// first, each named for what it proves, and they run in seconds.
//
// It owns the rules only: the world, the invariants and the alphabet are
// internal/explore's, the crash-point sweep is internal/crashtest's.
package contracttest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rotation-suite/rotation/internal/explore"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Rule is one clause of the contract.
type Rule struct {
	// Name says what the rule proves; it is the subtest's name.
	Name string
	// Actions are applied in order to secret 0 of a fresh world.
	Actions []explore.Action
	// Expect checks the rule's outcome; before is secret 0's AWSCURRENT
	// version id and value before the first action.
	Expect func(ctx context.Context, w *explore.World, before version) error
}

type version struct{ id, value string }

func step(s rotation.Step) explore.Action { return explore.Action{Kind: explore.Invoke, Step: s} }

func start() explore.Action { return explore.Action{Kind: explore.Start} }

// Rules is the contract, in the order a reader meets it.
var Rules = []Rule{
	{
		Name:    "a rotation promotes a new value that the target accepts",
		Actions: []explore.Action{{Kind: explore.Rotate}},
		Expect:  promotedNew,
	},
	{
		Name:    "a retried createSecret keeps the first value",
		Actions: []explore.Action{start(), step(rotation.StepCreate)},
		Expect: func(ctx context.Context, w *explore.World, _ version) error {
			id, first := w.Pending(ctx, 0)
			if first == "" {
				return fmt.Errorf("createSecret left no pending value")
			}
			w.Apply(ctx, step(rotation.StepCreate))
			if err := w.Check(ctx); err != nil {
				return err
			}
			if id2, again := w.Pending(ctx, 0); id2 != id || again != first {
				return fmt.Errorf("the retried createSecret changed the pending version")
			}
			return nil
		},
	},
	{
		Name: "every step run twice still converges on one promotion",
		Actions: []explore.Action{start(),
			step(rotation.StepCreate), step(rotation.StepCreate), step(rotation.StepSet), step(rotation.StepSet),
			step(rotation.StepTest), step(rotation.StepTest), step(rotation.StepFinish), step(rotation.StepFinish)},
		Expect: promotedNew,
	},
	{
		Name:    "finishSecret before testSecret is refused, changes nothing, and the retry promotes",
		Actions: []explore.Action{start(), step(rotation.StepCreate), step(rotation.StepSet), step(rotation.StepFinish)},
		Expect:  unchanged,
	},
	{
		Name:    "testSecret before setSecret promotes nothing, and the retry promotes",
		Actions: []explore.Action{start(), step(rotation.StepCreate), step(rotation.StepTest), step(rotation.StepFinish)},
		Expect:  unchanged,
	},
	{
		Name:    "the service's retry of a rotation that stopped after setSecret promotes it",
		Actions: []explore.Action{start(), step(rotation.StepCreate), step(rotation.StepSet), {Kind: explore.Service}},
		Expect:  promotedNew,
	},
	{
		Name:    "probeSecret proves the current value and moves nothing",
		Actions: []explore.Action{{Kind: explore.Probe}},
		Expect:  unchanged,
	},
	{
		Name: "late steps of a finished rotation's token change nothing the next rotation needs",
		Actions: []explore.Action{{Kind: explore.Rotate}, start(), step(rotation.StepCreate),
			{Kind: explore.Invoke, Step: rotation.StepSet, Stale: true}, {Kind: explore.Invoke, Step: rotation.StepTest, Stale: true},
			{Kind: explore.Invoke, Step: rotation.StepFinish, Stale: true}, {Kind: explore.Service}},
		Expect: promotedNew,
	},
	{
		Name:    "an operator's edit of AWSCURRENT between rotations is rotated from",
		Actions: []explore.Action{{Kind: explore.Rotate}, {Kind: explore.Put}, {Kind: explore.Rotate}},
		Expect:  promotedNew,
	},
	{
		Name:    "a stuck rotation resumed by the operator promotes and leaves no AWSPENDING",
		Actions: []explore.Action{start(), step(rotation.StepCreate), step(rotation.StepSet), {Kind: explore.Unstick, Mode: explore.ModeResume}},
		Expect:  promotedNew,
	},
	{
		Name:    "two rotations in a row each promote, and time passing between them breaks nothing",
		Actions: []explore.Action{{Kind: explore.Rotate}, {Kind: explore.Tick}, {Kind: explore.Rotate}, {Kind: explore.Tick}},
		Expect:  promotedNew,
	},
}

// promotedNew: AWSCURRENT is a new version, the target accepts it, and no
// rotation is left open.
func promotedNew(ctx context.Context, w *explore.World, before version) error {
	id, value := w.Current(ctx, 0)
	if id == before.id {
		return fmt.Errorf("AWSCURRENT did not move to a new version")
	}
	if err := w.Subject().Accepts(ctx, w, 0, []byte(value)); err != nil {
		return fmt.Errorf("the target refuses the new AWSCURRENT value: %w", err)
	}
	if pid, _ := w.Pending(ctx, 0); pid != "" {
		return fmt.Errorf("a rotation is still open on version %s", pid)
	}
	return nil
}

// unchanged: AWSCURRENT is where it was, with the same value; with no
// rotation open the target still accepts it (while one is open, a
// single-user target may already hold the pending value: the world's
// invariants say which credential must work then). Then the service's retry
// of the open rotation, or a new rotation when none is open, promotes.
func unchanged(ctx context.Context, w *explore.World, before version) error {
	id, value := w.Current(ctx, 0)
	if id != before.id || value != before.value {
		return fmt.Errorf("AWSCURRENT moved from %s to %s", before.id, id)
	}
	next := explore.Action{Kind: explore.Rotate}
	if pid, _ := w.Pending(ctx, 0); pid != "" {
		next = explore.Action{Kind: explore.Service}
	} else if err := w.Subject().Accepts(ctx, w, 0, []byte(value)); err != nil {
		return fmt.Errorf("the target no longer accepts AWSCURRENT: %w", err)
	}
	out := w.Apply(ctx, next)
	if err := w.Check(ctx); err != nil {
		return fmt.Errorf("after %s (%s): %w", next, out, err)
	}
	if err := promotedNew(ctx, w, before); err != nil {
		return fmt.Errorf("after %s (%s): %w", next, out, err)
	}
	return nil
}

// Run checks every rule against a fresh world of newSubject, and then that a
// crash right after any call that changes something leaves AWSCURRENT
// working and the service's retry promotes.
func Run(t *testing.T, newSubject func() explore.Subject) {
	t.Helper()
	ctx := context.Background()
	for _, r := range Rules {
		t.Run(r.Name, func(t *testing.T) {
			if err := Play(ctx, newSubject, r); err != nil {
				t.Fatal(err)
			}
		})
	}
	points, _, err := explore.KillPoints(ctx, newSubject)
	if err != nil {
		t.Fatal(err)
	}
	if len(points) == 0 {
		t.Fatal("a clean rotation made no call that changes anything: the strategy makes its calls outside rotation.Call")
	}
	for _, n := range points {
		for _, ph := range []rotation.Phase{rotation.Before, rotation.After} {
			r := Rule{
				Name:    fmt.Sprintf("a crash at call %d (%s) keeps AWSCURRENT working and the retry promotes", n, phase(ph)),
				Actions: []explore.Action{{Kind: explore.Kill, Fresh: true, N: n, Phase: ph}, {Kind: explore.Service}},
				Expect:  promotedNew,
			}
			t.Run(r.Name, func(t *testing.T) {
				if err := Play(ctx, newSubject, r); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func phase(p rotation.Phase) string {
	if p == rotation.After {
		return "after it took effect"
	}
	return "before it is made"
}

// Play applies r to a fresh world of newSubject and returns the first broken
// invariant or the rule's failed expectation, with the actions to replay.
// Run calls it for every rule; a test calls it alone to prove that a broken
// strategy is caught.
func Play(ctx context.Context, newSubject func() explore.Subject, r Rule) error {
	w, err := explore.NewWorld(ctx, newSubject())
	if err != nil {
		return err
	}
	id, value := w.Current(ctx, 0)
	before := version{id, value}
	for i, a := range r.Actions {
		out := w.Apply(ctx, a)
		if err := happened(a, out); err != nil {
			return fmt.Errorf("action %d (%s): %w; the rule would prove nothing", i+1, a, err)
		}
		if err := w.Check(ctx); err != nil {
			return fmt.Errorf("after action %d (%s → %s): %w", i+1, a, out, err)
		}
	}
	if err := r.Expect(ctx, w, before); err != nil {
		return fmt.Errorf("%w\nactions:\n%s", err, explore.Literal(r.Actions))
	}
	return nil
}

// happened refuses an action the world skipped (no such token or secret) or a
// Start the service refused: a rule built on it would pass without testing
// what its name says.
func happened(a explore.Action, out string) error {
	switch {
	case strings.HasSuffix(out, ": skipped"):
		return fmt.Errorf("the world skipped it (%s)", out)
	case a.Kind == explore.Start && !strings.HasPrefix(out, "RotateSecret: ok"):
		return fmt.Errorf("no rotation started (%s)", out)
	}
	return nil
}
