package explore_test

import (
	"testing"

	"github.com/rotation-suite/rotation/internal/explore"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Sequences the explorer found, kept as regression tests. Where the defect
// sits at one interleaving point whose call number moves when a strategy
// makes one call more or less, the test tries every point.

type named struct {
	name string
	new  func() explore.Subject
}

var subjects = []named{
	{"jwt", newJWT}, {"apikey", newAPIKey}, {"webhook", newWebhook}, {"postgres-single", newPGSingle}, {"postgres-alternating", newPGAlternating},
}

func replayAll(t *testing.T, seq []explore.Action) {
	for _, s := range subjects {
		t.Run(s.name, func(t *testing.T) { explore.Replay(t, s.new, seq) })
	}
}

// everyPoint replays build(n, phase) for every call number of a rotation
// and both phases, and fails on the first broken invariant.
func everyPoint(t *testing.T, newSubject func() explore.Subject, build func(n int, ph rotation.Phase) []explore.Action) {
	t.Helper()
	for n := 1; n <= 40; n++ {
		for _, ph := range []rotation.Phase{rotation.Before, rotation.After} {
			if f := explore.Find(t, newSubject, nil, build(n, ph)); f != nil {
				t.Fatal(f.Error())
			}
		}
	}
}

func TestFinishRightAfterRotateSecretPromotesNothing(t *testing.T) {
	replayAll(t, []explore.Action{{Kind: explore.Start}, {Kind: explore.Invoke, Step: rotation.StepFinish}})
}

func TestFinishAfterCreateAlonePromotesNothing(t *testing.T) {
	replayAll(t, []explore.Action{
		{Kind: explore.Start}, {Kind: explore.Invoke, Step: rotation.StepCreate}, {Kind: explore.Invoke, Step: rotation.StepFinish},
	})
}

func TestFinishAfterSetWithoutTestPromotesNothing(t *testing.T) {
	replayAll(t, []explore.Action{
		{Kind: explore.Start}, {Kind: explore.Invoke, Step: rotation.StepCreate}, {Kind: explore.Invoke, Step: rotation.StepSet},
		{Kind: explore.Invoke, Step: rotation.StepFinish},
	})
}

// A retried finishSecret (the version AWSCURRENT, AWSPENDING still on it)
// publishes no second rotation.succeeded, whether the operator repeats the
// step or the service retries the whole rotation.
func TestRetriedFinishPublishesNoSecondSuccess(t *testing.T) {
	steps := []explore.Action{{Kind: explore.Start}}
	for _, s := range rotation.Steps {
		steps = append(steps, explore.Action{Kind: explore.Invoke, Step: s})
	}
	t.Run("step again", func(t *testing.T) {
		replayAll(t, append(append([]explore.Action{}, steps...), explore.Action{Kind: explore.Invoke, Step: rotation.StepFinish}))
	})
	t.Run("service retry", func(t *testing.T) {
		replayAll(t, append(append([]explore.Action{}, steps...), explore.Action{Kind: explore.Service}))
	})
}

// Single user: setSecret changed the password, the rotation then failed;
// neither unstick mode may leave the database at a password no label
// points at.
func TestUnstickNeverStrandsTheLivePassword(t *testing.T) {
	for _, mode := range []string{explore.ModeDiscard, explore.ModeResume} {
		t.Run(mode, func(t *testing.T) {
			explore.Replay(t, newPGSingle, []explore.Action{
				{Kind: explore.Start}, {Kind: explore.Invoke, Step: rotation.StepCreate}, {Kind: explore.Invoke, Step: rotation.StepSet},
				{Kind: explore.Tick}, {Kind: explore.Unstick, Mode: mode}, {Kind: explore.Rotate},
			})
		})
	}
}

// A rotation whose finishSecret comes late (well after its createSecret),
// followed at once by another rotation, keeps the key it retired until the
// tokens that key signed up to the promotion have expired.
func TestRetiredJWTKeyIsTimedFromItsPromotion(t *testing.T) {
	explore.Replay(t, newJWT, []explore.Action{
		{Kind: explore.Start}, {Kind: explore.Invoke, Step: rotation.StepCreate}, {Kind: explore.Service}, {Kind: explore.Rotate},
	})
}

// Two caller secrets share one verifier secret: whatever point one
// rotation's run is paused at while the other caller's rotation runs, no
// record of either is lost.
func TestSharedVerifierLosesNoRecordAtAnyInterleaving(t *testing.T) {
	everyPoint(t, newAPIKey, func(n int, ph rotation.Phase) []explore.Action {
		return []explore.Action{
			{Kind: explore.Start, Secret: 1},
			{Kind: explore.Concurrent, N: n, Phase: ph, A: explore.Side{Fresh: true}, B: explore.Side{Secret: 1}},
		}
	})
}

// Alternating users: a finishSecret whose after-finish hook runs late, after
// another rotation made the outgoing role current again, does not expire
// that role.
func TestLateAfterFinishSparesTheCurrentRole(t *testing.T) {
	everyPoint(t, newPGAlternating, func(n int, ph rotation.Phase) []explore.Action {
		return []explore.Action{
			{Kind: explore.Start},
			{Kind: explore.Concurrent, N: n, Phase: ph, A: explore.Side{}, B: explore.Side{Fresh: true}},
			{Kind: explore.Tick},
		}
	})
}

// Two execution environments finishing the same rotation publish one
// rotation.succeeded between them.
func TestConcurrentFinishesPublishOneSuccess(t *testing.T) {
	for _, s := range subjects {
		t.Run(s.name, func(t *testing.T) {
			everyPoint(t, s.new, func(n int, ph rotation.Phase) []explore.Action {
				return []explore.Action{{Kind: explore.Concurrent, N: n, Phase: ph, A: explore.Side{Fresh: true}, B: explore.Side{}}}
			})
		})
	}
}

// Rotations 40 s apart, within one overlap (2 min): each replaced key keeps
// verifying until its own notAfter, the key from two rotations ago too.
func TestEveryReplacedKeyVerifiesThroughItsOverlap(t *testing.T) {
	explore.Replay(t, newAPIKey, []explore.Action{{Kind: explore.Rotate}, {Kind: explore.Rotate}, {Kind: explore.Rotate}, {Kind: explore.Rotate, Secret: 1}, {Kind: explore.Rotate}})
}
