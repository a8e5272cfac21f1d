package explore

// The actions to explore: the standard alphabet, the random generator,
// and the call numbers a kill can land on.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Alphabet returns the standard alphabet for worlds with the given number
// of rotated secrets: for each secret Start, Rotate, Service, the four
// steps with the open token, finishSecret and setSecret with the stale one,
// Put of AWSCURRENT and of AWSPENDING, both Unstick modes, Probe;
// a fresh rotation killed right after each of the given call numbers; and
// Tick. Concurrent pairings are the caller's to add.
func Alphabet(secrets int, killPoints []int) []Action {
	var out []Action
	for i := range secrets {
		out = append(out, Action{Kind: Start, Secret: i}, Action{Kind: Rotate, Secret: i}, Action{Kind: Service, Secret: i})
		for _, s := range rotation.Steps {
			out = append(out, Action{Kind: Invoke, Secret: i, Step: s})
		}
		out = append(out, Action{Kind: Invoke, Secret: i, Step: rotation.StepFinish, Stale: true},
			Action{Kind: Invoke, Secret: i, Step: rotation.StepSet, Stale: true})
		out = append(out, Action{Kind: Put, Secret: i}, Action{Kind: Put, Secret: i, Mode: ModePending},
			Action{Kind: Unstick, Secret: i, Mode: ModeResume}, Action{Kind: Unstick, Secret: i, Mode: ModeDiscard},
			Action{Kind: Probe, Secret: i})
		for _, n := range killPoints {
			out = append(out, Action{Kind: Kill, Secret: i, Fresh: true, N: n, Phase: rotation.After})
		}
	}
	out = append(out, Action{Kind: Tick})
	return out
}

// Generator returns a random action drawer over the whole alphabet for
// worlds with the given number of secrets: any step with either token, a
// kill at any call up to maxCall in either phase, any Concurrent pairing.
// Service-level actions are drawn more often than stray steps.
func Generator(secrets, maxCall int) func(r *rand.Rand) Action {
	steps := rotation.Steps
	side := func(r *rand.Rand) Side {
		s := Side{Secret: r.IntN(secrets)}
		switch r.IntN(3) {
		case 0:
			s.Step = steps[r.IntN(len(steps))]
		case 1:
			s.Fresh = true
		}
		return s
	}
	return func(r *rand.Rand) Action {
		i := r.IntN(secrets)
		ph := rotation.Phase(r.IntN(2))
		switch k := r.IntN(100); {
		case k < 10:
			return Action{Kind: Start, Secret: i}
		case k < 22:
			return Action{Kind: Rotate, Secret: i}
		case k < 32:
			return Action{Kind: Service, Secret: i}
		case k < 52:
			return Action{Kind: Invoke, Secret: i, Step: steps[r.IntN(len(steps))], Stale: r.IntN(4) == 0}
		case k < 64:
			return Action{Kind: Kill, Secret: i, Fresh: r.IntN(2) == 0, N: 1 + r.IntN(maxCall), Phase: ph}
		case k < 74:
			return Action{Kind: Concurrent, N: 1 + r.IntN(maxCall), Phase: ph, A: side(r), B: side(r)}
		case k < 80:
			return Action{Kind: Unstick, Secret: i, Mode: []string{ModeResume, ModeDiscard}[r.IntN(2)]}
		case k < 83:
			return Action{Kind: Put, Secret: i}
		case k < 85:
			return Action{Kind: Put, Secret: i, Mode: ModePending}
		case k < 89:
			return Action{Kind: Probe, Secret: i}
		default:
			return Action{Kind: Tick}
		}
	}
}

// Calls runs one clean rotation of rotated secret 0 on a fresh world and
// returns the external calls it made, in order.
func Calls(ctx context.Context, newSubject func() Subject) ([]string, error) {
	w, err := NewWorld(ctx, newSubject())
	if err != nil {
		return nil, err
	}
	var ops []string
	hook := rotation.FaultHook(func(op string, ph rotation.Phase) error {
		if ph == rotation.Before {
			ops = append(ops, op)
		}
		return nil
	})
	tok, out := w.start(ctx, 0)
	if tok == "" {
		return nil, errors.New(out)
	}
	out = w.service(rotation.WithFaultHook(ctx, hook), w.envs[0], 0, tok)
	if err := w.Check(ctx); err != nil {
		return nil, fmt.Errorf("a clean rotation breaks an invariant: %w (%s)", err, out)
	}
	return ops, nil
}

// KillPoints returns the 1-based numbers of the calls of a clean rotation
// that change something (every call but DescribeSecret, GetSecretValue,
// connects and queries): killing the process right after one of them is
// where a half-done rotation is left behind.
func KillPoints(ctx context.Context, newSubject func() Subject) ([]int, int, error) {
	ops, err := Calls(ctx, newSubject)
	if err != nil {
		return nil, 0, err
	}
	var out []int
	for i, op := range ops {
		switch {
		case strings.HasSuffix(op, "DescribeSecret"), strings.HasSuffix(op, "GetSecretValue"),
			strings.HasSuffix(op, ":connect"), strings.HasSuffix(op, ":query"), strings.HasSuffix(op, ":login"):
		default:
			out = append(out, i+1)
		}
	}
	return out, len(ops), nil
}
