package apikeystrategy_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// BenchmarkRotation runs full rotations (the engine in-process, moto's Secrets
// Manager over HTTP, the local driver) and reports the external calls per
// rotation by kind, counted through rotation.Call.
func BenchmarkRotation(b *testing.B) {
	variants := []struct {
		name string
		o    fixtureOpts
	}{
		{"apikey-minimal", fixtureOpts{noPepper: true, noRegister: true, noTestURL: true}},
		{"apikey-pepper-register-testurl", fixtureOpts{}},
		{"webhook-register-testurl", fixtureOpts{kind: apikey.KindWebhook}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			f := newFixture(b, v.o)
			var counter rotation.CallCounter
			f.driver.Wrap = func(ctx context.Context, _ int, _ rotation.Step) context.Context {
				return rotation.WithCallObserver(ctx, counter.Observe)
			}
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// One rotation per overlap, as on a schedule (rotations
				// closer together pile up retiring keys up to the limit).
				f.clock.Add(f.cfg.Overlap)
				if _, err := f.driver.Rotate(ctx, f.callerID, ""); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			snap := counter.Snapshot()
			ops := make([]string, 0, len(snap))
			for op := range snap {
				ops = append(ops, op)
			}
			sort.Strings(ops)
			for _, op := range ops {
				unit := strings.TrimPrefix(strings.TrimPrefix(op, "secretsmanager:"), "http:") + "/op"
				if strings.HasPrefix(op, "http:") {
					unit = "http-" + unit
				}
				b.ReportMetric(float64(snap[op])/float64(b.N), unit)
			}
			b.ReportMetric(float64(counter.Count("secretsmanager:"))/float64(b.N), "sm-calls/op")
		})
	}
}
