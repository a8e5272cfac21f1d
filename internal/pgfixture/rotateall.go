package pgfixture

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/rotation-suite/rotation/internal/driver"
)

// Stats summarises RotateAll.
type Stats struct {
	Rotations int
	Failed    int
	Wall      time.Duration
	P50, P95  time.Duration // per rotation
	Max       time.Duration
}

// RotateAll rotates every secret once through d with up to workers
// rotations at a time, and returns timing statistics and the first error.
// d must be safe for concurrent use (the engine is).
func RotateAll(ctx context.Context, d *driver.Driver, arns []string, workers int) (Stats, error) {
	if workers < 1 {
		workers = 1
	}
	start := time.Now()
	jobs := make(chan string)
	var mu sync.Mutex
	var durs []time.Duration
	var errs []error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for arn := range jobs {
				t0 := time.Now()
				_, err := d.Rotate(ctx, arn, "")
				mu.Lock()
				durs = append(durs, time.Since(t0))
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, a := range arns {
		jobs <- a
	}
	close(jobs)
	wg.Wait()
	slices.Sort(durs)
	st := Stats{Rotations: len(durs), Failed: len(errs), Wall: time.Since(start)}
	if len(durs) > 0 {
		st.P50 = durs[len(durs)/2]
		st.P95 = durs[(len(durs)*95)/100]
		st.Max = durs[len(durs)-1]
	}
	return st, errors.Join(errs...)
}
