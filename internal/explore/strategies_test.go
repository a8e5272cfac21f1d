package explore_test

import (
	"context"
	"testing"

	"github.com/rotation-suite/rotation/internal/explore"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// budget is one subject's share of the exploration in `make test`.
type budget struct {
	depth, random, length int
}

func options(t *testing.T, secrets int, newSubject func() explore.Subject, b budget) explore.Options {
	t.Helper()
	points, calls, err := explore.KillPoints(context.Background(), newSubject)
	if err != nil {
		t.Fatal(err)
	}
	alphabet := explore.Alphabet(secrets, points)
	if secrets > 1 {
		for _, n := range points {
			alphabet = append(alphabet, explore.Action{Kind: explore.Concurrent, N: n, Phase: rotation.After,
				A: explore.Side{Secret: 0, Fresh: true}, B: explore.Side{Secret: 1, Fresh: true}})
		}
	} else {
		alphabet = append(alphabet,
			explore.Action{Kind: explore.Concurrent, N: 1, A: explore.Side{Step: rotation.StepFinish}, B: explore.Side{Step: rotation.StepFinish}},
			explore.Action{Kind: explore.Concurrent, N: points[len(points)-1], Phase: rotation.After, A: explore.Side{}, B: explore.Side{}})
	}
	t.Logf("%d calls in a clean rotation; kill points %v; alphabet of %d", calls, points, len(alphabet))
	return explore.Options{Alphabet: alphabet, Depth: b.depth, Random: b.random, Length: b.length,
		Generate: explore.Generator(secrets, calls+2), Seed: 1}
}

// The budgets of `make test`: at least 10,000 sequences per subject (the
// exhaustive part plus the random one). -explore.n, -explore.len and
// -explore.depth raise them.

func TestExploreJWT(t *testing.T) {
	t.Parallel()
	o := options(t, 1, newJWT, budget{depth: 2, random: 9600, length: 6})
	explore.Explore(t, "jwt", newJWT, o)
}

func TestExploreAPIKey(t *testing.T) {
	t.Parallel()
	o := options(t, 2, newAPIKey, budget{depth: 2, random: 8300, length: 6})
	explore.Explore(t, "apikey", newAPIKey, o)
}

func TestExploreWebhook(t *testing.T) {
	t.Parallel()
	o := options(t, 2, newWebhook, budget{depth: 2, random: 8300, length: 6})
	explore.Explore(t, "webhook", newWebhook, o)
}

func TestExplorePostgresSingle(t *testing.T) {
	t.Parallel()
	o := options(t, 1, newPGSingle, budget{depth: 2, random: 9600, length: 6})
	explore.Explore(t, "postgres-single", newPGSingle, o)
}

func TestExplorePostgresAlternating(t *testing.T) {
	t.Parallel()
	o := options(t, 1, newPGAlternating, budget{depth: 2, random: 9600, length: 6})
	explore.Explore(t, "postgres-alternating", newPGAlternating, o)
}
