package explore

import (
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
