package explore

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// Flags of every test binary that links the explorer.
var (
	flagSeed   = flag.Uint64("explore.seed", 0, "seed of the random sequences (0: derived from the clock and printed)")
	flagN      = flag.Int("explore.n", 0, "random sequences per subject (0: the test's default)")
	flagDepth  = flag.Int("explore.depth", 0, "exhaustive depth (0: the test's default; -1: no exhaustive part)")
	flagLength = flag.Int("explore.len", 0, "length of a random sequence (0: the test's default)")
	flagAll    = flag.Bool("explore.all", false, "do not stop at the first broken invariant: report the first failure of each")
)

// Options bound one exploration.
type Options struct {
	// Alphabet is what the exhaustive part combines; Random draws from
	// Generate.
	Alphabet []Action
	// Depth: every sequence of exactly this many actions over Alphabet.
	Depth int
	// Random sequences of Length actions drawn by Generate.
	Random, Length int
	// Generate draws one random action; nil: uniform over Alphabet.
	Generate func(r *rand.Rand) Action
	// Seed of the random part; 0: from the clock (printed, and replayable
	// with -explore.seed).
	Seed uint64
	// Setup, if set, adjusts each new World (times, unstick model).
	Setup func(w *World)
	// KeepGoing: do not stop at the first broken invariant; collect the
	// first (shrunk) failure of each invariant instead.
	KeepGoing bool
	collect   func(*Failure)
}

// Stats counts what an exploration did.
type Stats struct {
	Sequences, Actions int
	Elapsed            time.Duration
}

// Failure is a sequence that broke an invariant.
type Failure struct {
	Seq   []Action
	Index int // the action after which the invariant broke (0-based)
	Err   error
	Trace []string
}

func (f *Failure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "after action %d of %d: %v\n", f.Index+1, len(f.Seq), f.Err)
	b.WriteString("trace:\n")
	for i, t := range f.Trace {
		fmt.Fprintf(&b, "  %2d. %s\n       → %s\n", i+1, f.Seq[i], t)
	}
	b.WriteString("replay (paste into a regression test):\n\texplore.Replay(t, newSubject, ")
	b.WriteString(strings.ReplaceAll(Literal(f.Seq[:f.Index+1]), "\n", "\n\t"))
	b.WriteString(")\n")
	return b.String()
}

// Run replays seq on a fresh world of subject and returns the first broken
// invariant, with the sequence's trace. actions counts the actions taken.
func Run(ctx context.Context, newSubject func() Subject, setup func(*World), seq []Action) (actions int, fail *Failure, err error) {
	w, err := NewWorld(ctx, newSubject())
	if err != nil {
		return 0, nil, err
	}
	if setup != nil {
		setup(w)
	}
	trace := make([]string, 0, len(seq))
	for i, a := range seq {
		trace = append(trace, w.Apply(ctx, a))
		actions++
		if cerr := w.Check(ctx); cerr != nil {
			var v *Violation
			if !errors.As(cerr, &v) {
				return actions, nil, fmt.Errorf("checking after %s: %w", a, cerr)
			}
			return actions, &Failure{Seq: seq, Index: i, Err: cerr, Trace: trace}, nil
		}
	}
	return actions, nil, nil
}

// Shrink removes actions from a failing sequence while it still breaks the
// same invariant, and returns the shortest found.
func Shrink(ctx context.Context, newSubject func() Subject, setup func(*World), f *Failure) *Failure {
	best := f
	var want *Violation
	errors.As(f.Err, &want)
	for changed := true; changed; {
		changed = false
		seq := best.Seq[:best.Index+1]
		for i := len(seq) - 1; i >= 0 && len(seq) > 1; i-- {
			try := append(append([]Action{}, seq[:i]...), seq[i+1:]...)
			_, g, err := Run(ctx, newSubject, setup, try)
			var v *Violation
			if err == nil && g != nil && errors.As(g.Err, &v) && v.Invariant == want.Invariant {
				best, seq, changed = g, g.Seq[:g.Index+1], true
			}
		}
	}
	return best
}

// Replay runs seq as a regression test: it fails t with the trace if an
// invariant breaks.
func Replay(t testing.TB, newSubject func() Subject, seq []Action) {
	t.Helper()
	_, f, err := Run(context.Background(), newSubject, nil, seq)
	if err != nil {
		t.Fatal(err)
	}
	if f != nil {
		t.Fatal(f.Error())
	}
}

// Find runs seq and returns the broken invariant, or nil (for tests that
// prove the harness catches a defect).
func Find(t testing.TB, newSubject func() Subject, setup func(*World), seq []Action) *Failure {
	t.Helper()
	_, f, err := Run(context.Background(), newSubject, setup, seq)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Explore runs the exhaustive part and the random part and fails t at the
// first broken invariant, printing the shrunk sequence as a replayable test
// case, the seed, and the counts.
func Explore(t testing.TB, name string, newSubject func() Subject, o Options) (Stats, *Failure) {
	t.Helper()
	if *flagAll {
		st, all := SearchAll(t, name, newSubject, o)
		for _, f := range all {
			t.Errorf("%s: an invariant broke\n%s", name, f.Error())
		}
		if len(all) > 0 {
			return st, all[0]
		}
		return st, nil
	}
	f, st, err := explore(t, name, newSubject, o)
	if err != nil {
		t.Fatal(err)
	}
	if f != nil {
		t.Errorf("%s: an invariant broke\n%s", name, f.Error())
	}
	return st, f
}

// Search is Explore without failing t: it returns the first failure (for
// tests that prove the explorer finds a planted defect).
func Search(t testing.TB, name string, newSubject func() Subject, o Options) (Stats, *Failure) {
	t.Helper()
	f, st, err := explore(t, name, newSubject, o)
	if err != nil {
		t.Fatal(err)
	}
	return st, f
}

// SearchAll explores everything the options allow and returns the first
// (shrunk) failure of each invariant that broke.
func SearchAll(t testing.TB, name string, newSubject func() Subject, o Options) (Stats, []*Failure) {
	t.Helper()
	var all []*Failure
	o.KeepGoing = true
	o.collect = func(f *Failure) { all = append(all, f) }
	_, st, err := explore(t, name, newSubject, o)
	if err != nil {
		t.Fatal(err)
	}
	return st, all
}

func explore(t testing.TB, name string, newSubject func() Subject, o Options) (*Failure, Stats, error) {
	ctx := context.Background()
	if *flagDepth != 0 {
		o.Depth = max(*flagDepth, 0)
	}
	if *flagN != 0 {
		o.Random = *flagN
	}
	if *flagLength != 0 {
		o.Length = *flagLength
	}
	if *flagSeed != 0 {
		o.Seed = *flagSeed
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	gen := o.Generate
	if gen == nil {
		gen = func(r *rand.Rand) Action { return o.Alphabet[r.IntN(len(o.Alphabet))] }
	}
	var st Stats
	start := time.Now()
	defer func() {
		st.Elapsed = time.Since(start)
		t.Logf("explore %s: %d sequences, %d actions in %s (exhaustive depth %d over %d actions; %d random sequences of %d; seed %d — replay with -explore.seed=%d -explore.n=%d -explore.len=%d)",
			name, st.Sequences, st.Actions, st.Elapsed.Round(time.Millisecond), o.Depth, len(o.Alphabet), o.Random, o.Length, o.Seed, o.Seed, o.Random, o.Length)
	}()
	seen := map[string]bool{}
	// stop reports whether the exploration ends at failure f.
	stop := func(f *Failure) bool {
		var v *Violation
		errors.As(f.Err, &v)
		if o.KeepGoing {
			if !seen[v.Invariant] {
				seen[v.Invariant] = true
				o.collect(Shrink(ctx, newSubject, o.Setup, f))
			}
			return false
		}
		return true
	}
	if o.Depth > 0 && len(o.Alphabet) > 0 {
		idx := make([]int, o.Depth)
		seq := make([]Action, o.Depth)
		for {
			for i, k := range idx {
				seq[i] = o.Alphabet[k]
			}
			n, f, err := Run(ctx, newSubject, o.Setup, append([]Action(nil), seq...))
			st.Sequences++
			st.Actions += n
			if err != nil {
				return nil, st, err
			}
			if f != nil && stop(f) {
				return Shrink(ctx, newSubject, o.Setup, f), st, nil
			}
			k := o.Depth - 1
			for k >= 0 {
				idx[k]++
				if idx[k] < len(o.Alphabet) {
					break
				}
				idx[k] = 0
				k--
			}
			if k < 0 {
				break
			}
		}
	}
	for s := range o.Random {
		r := rand.New(rand.NewPCG(o.Seed, uint64(s)))
		seq := make([]Action, o.Length)
		for i := range seq {
			seq[i] = gen(r)
		}
		n, f, err := Run(ctx, newSubject, o.Setup, seq)
		st.Sequences++
		st.Actions += n
		if err != nil {
			return nil, st, err
		}
		if f != nil && stop(f) {
			t.Logf("explore %s: random sequence %d of seed %d broke an invariant", name, s, o.Seed)
			return Shrink(ctx, newSubject, o.Setup, f), st, nil
		}
	}
	return nil, st, nil
}
