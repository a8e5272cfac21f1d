package pgstrategy_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// BenchmarkRotation runs full rotations on the local stack (the engine and
// strategy in-process, the real SDK against moto over HTTP, real PostgreSQL
// with TLS verify-full and SCRAM) in a warm environment — the engine and
// strategy reused across rotations, as a warm Lambda execution environment
// reuses them — and reports per rotation: Secrets Manager calls made by the
// function, database connections opened, and failed logins.
func BenchmarkRotation(b *testing.B) {
	for _, mode := range []string{"single", "alternating-clone", "alternating-pair"} {
		b.Run(mode, func(b *testing.B) {
			s := newStack(b)
			ctx := context.Background()
			var arn string
			switch mode {
			case "single":
				user, pw := uniq("bn"), randomPassword(b)
				s.createRole(b, user, pw, "")
				arn = s.createSecret(b, uniq("bench"), s.appSecret(user, pw, nil))
			default:
				m, _ := s.adminSecret(b, false)
				user, pw := uniq("bn"), randomPassword(b)
				s.createRole(b, user, pw, "")
				extra := map[string]any{"masterarn": m}
				if mode == "alternating-pair" {
					s.createRole(b, user+"_b", randomPassword(b), "")
					extra["userpair"] = []string{user, user + "_b"}
				} else {
					s.dropLater(b, user+"_clone")
				}
				arn = s.createSecret(b, uniq("bench"), s.appSecret(user, pw, extra))
			}
			eng, _ := s.engine(b, testConfig(s))
			d := s.driver(eng)
			var counter rotation.CallCounter
			var failedLogins, smMicros, dbMicros atomic.Int64
			observe := func(op string, dur time.Duration, err error) {
				counter.Observe(op, dur, err)
				if strings.HasPrefix(op, "postgres:") {
					dbMicros.Add(dur.Microseconds())
				} else {
					smMicros.Add(dur.Microseconds())
				}
				if op == "postgres:connect" && err != nil {
					failedLogins.Add(1)
				}
			}
			d.Wrap = func(ctx context.Context, _ int, _ rotation.Step) context.Context {
				return rotation.WithCallObserver(ctx, observe)
			}
			// Warm up: the first rotation creates the clone and fills the
			// engine's version cache, as earlier rotations would have.
			for range 2 {
				if _, err := d.Rotate(ctx, arn, ""); err != nil {
					b.Fatal(err)
				}
			}
			counter.Reset()
			failedLogins.Store(0)
			smMicros.Store(0)
			dbMicros.Store(0)
			n := 0
			var inFunction time.Duration
			b.ResetTimer()
			for b.Loop() {
				res, err := d.Rotate(ctx, arn, "")
				if err != nil {
					b.Fatal(err)
				}
				for _, st := range res.Steps {
					inFunction += st.Duration
				}
				n++
			}
			b.StopTimer()
			sm := counter.Count("secretsmanager:")
			b.ReportMetric(float64(sm)/float64(n), "sm-calls/op")
			b.ReportMetric(float64(counter.Count("postgres:connect"))/float64(n), "db-conns/op")
			b.ReportMetric(float64(failedLogins.Load())/float64(n), "failed-logins/op")
			b.ReportMetric(float64(inFunction.Microseconds())/1000/float64(n), "steps-ms/op")
			b.ReportMetric(float64(smMicros.Load())/1000/float64(n), "sm-ms/op")
			b.ReportMetric(float64(dbMicros.Load())/1000/float64(n), "db-ms/op")
			var ops []string
			for op, c := range counter.Snapshot() {
				ops = append(ops, op+"="+itoa(c))
			}
			b.Logf("%s: %d rotations; calls: %s", mode, n, strings.Join(ops, " "))
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}
