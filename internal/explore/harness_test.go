package explore

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func toyOptions() Options {
	return Options{Alphabet: Alphabet(1, []int{3, 6, 9, 12}), Depth: 2, Random: 500, Length: 10, Generate: Generator(1, 14), Seed: 1}
}

func TestToyExploration(t *testing.T) {
	st, fs := SearchAll(t, "toy", newToy, toyOptions())
	t.Logf("%+v", st)
	for _, f := range fs {
		t.Log(f.Error())
	}
}

// The explorer catches a strategy whose Set is not idempotent, and the
// sequence it prints replays the failure: at least one failure it finds
// with the broken Set does not happen with the correct one.
func TestNonIdempotentSetIsCaught(t *testing.T) {
	_, fs := SearchAll(t, "toy-broken-set", newBroken, toyOptions())
	for _, f := range fs {
		seq := f.Seq[:f.Index+1]
		again := Find(t, newBroken, nil, seq)
		if again == nil || InvariantOf(again.Err) != InvariantOf(f.Err) {
			t.Fatalf("the printed replay does not reproduce the failure %v: %v", f.Err, again)
		}
		if Find(t, newToy, nil, seq) == nil {
			t.Logf("caught:\n%s", f.Error())
			return
		}
	}
	t.Fatalf("the explorer did not catch a strategy whose Set is not idempotent (%d failures, all shared with the correct strategy)", len(fs))
}

// The old "finishSecret promotes anything" — AWSCURRENT moved to the newest
// token whatever it holds — is caught at once, before and after a
// createSecret.
func TestRogueFinishIsCaught(t *testing.T) {
	for _, seq := range [][]Action{
		{{Kind: Start}, {Kind: Rogue}},
		{{Kind: Start}, {Kind: Invoke, Step: "createSecret"}, {Kind: Rogue}},
	} {
		f := Find(t, newToy, nil, seq)
		if f == nil {
			t.Fatalf("%s: the rogue finish was not caught", Literal(seq))
		}
		if inv := InvariantOf(f.Err); inv != "current-has-value" && inv != "promoted-tested" {
			t.Fatalf("%s: caught as %v", Literal(seq), f.Err)
		}
	}
}

// The first `rotate unstick`, which removed a stuck AWSPENDING on age
// alone, strands a single-user password; the explorer finds that, and the
// operator tool of today does not.
func TestLegacyUnstickStrandingIsCaught(t *testing.T) {
	legacy := func(w *World) { w.LegacyUnstick = true }
	seq := []Action{{Kind: Start}, {Kind: Invoke, Step: "createSecret"}, {Kind: Invoke, Step: "setSecret"}, {Kind: Tick}, {Kind: Unstick, Mode: ModeDiscard}}
	f := Find(t, newToy, legacy, seq)
	if f == nil || InvariantOf(f.Err) != "current-works" {
		t.Fatalf("the stranding was not caught: %v", f)
	}
	if f := Find(t, newToy, nil, seq); f != nil {
		t.Fatalf("the operator tool strands the password:\n%s", f.Error())
	}
	// And the exploration finds it without being told the sequence.
	o := toyOptions()
	o.Setup = legacy
	_, fs := SearchAll(t, "toy-legacy-unstick", newToy, o)
	for _, f := range fs {
		if InvariantOf(f.Err) == "current-works" && Find(t, newToy, nil, f.Seq[:f.Index+1]) == nil {
			return
		}
	}
	t.Fatal("the exploration did not find the legacy unstick's stranding")
}

var arnSuffix = regexp.MustCompile(`(:secret:[A-Za-z0-9/_+=.@-]+)-[A-Za-z]{6}`)

// The same seed explores the same sequences with the same outcomes.
func TestExplorationIsDeterministic(t *testing.T) {
	run := func() []string {
		w, err := NewWorld(t.Context(), newToy())
		if err != nil {
			t.Fatal(err)
		}
		gen := Generator(1, 14)
		r := rand.New(rand.NewPCG(7, 3))
		var out []string
		for range 40 {
			a := gen(r)
			// The fake's ARNs end in a random suffix, as the service's do.
			out = append(out, arnSuffix.ReplaceAllString(a.String()+" → "+w.Apply(t.Context(), a), "$1"))
		}
		return out
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Fatalf("two runs of one seed differ:\n%s\n---\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
}
