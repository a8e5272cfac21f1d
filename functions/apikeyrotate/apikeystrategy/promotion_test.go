package apikeystrategy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// TestThePreviousKeysOverlapStartsAtThePromotion: a rotation whose
// finishSecret comes two hours after its createSecret gives the previous key
// notAfter = finish time + overlap, not createSecret time + overlap.
func TestThePreviousKeysOverlapStartsAtThePromotion(t *testing.T) {
	f := newFixture(t, fixtureOpts{noRegister: true, noTestURL: true})
	ctx := context.Background()
	paused := false
	f.driver.OnStep = func(sr driver.StepResult) {
		if sr.Step == rotation.StepCreate && sr.Err == nil && !paused {
			paused = true
			f.clock.Add(2 * time.Hour)
		}
	}
	f.rotate(t)
	finished := f.clock.Now().UTC().Truncate(time.Second)
	r := f.currentVerifierDoc(t).Find(f.initial.KeyID)
	if r == nil || r.Status != apikey.StatusRetiring {
		t.Fatalf("the previous key's record is not retiring: %+v", r)
	}
	if want := finished.Add(f.cfg.Overlap); !r.NotAfter.Equal(want) {
		t.Fatalf("notAfter %s, want finish time + overlap = %s", r.NotAfter, want)
	}
	v := f.verifier(t)
	f.clock.Add(f.cfg.Overlap - time.Second)
	if err := verifyCaller(ctx, v, f.initial, f.clock.Now()); err != nil {
		t.Fatalf("the previous key is refused a second before the overlap ends: %v", err)
	}
	f.clock.Add(2 * time.Second)
	if err := verifyCaller(ctx, v, f.initial, f.clock.Now()); err == nil || !errors.Is(err, apikey.ErrExpired) && !errors.Is(err, apikey.ErrRevoked) {
		t.Fatalf("the previous key after the overlap: %v", err)
	}
}
