// Command rotbench measures the rotation functions on the local stack (moto
// for the AWS APIs, a throwaway PostgreSQL cluster, the functions' real
// bootstraps) and writes the results, beside the suite's performance goals
// and with the machine they ran on, into docs/BENCHMARKS.md between its
// "BEGIN rotbench" and "END rotbench" markers. `make bench` runs it through
// scripts/bench.sh.
//
// What it measures, per function configuration (dbrotate single user,
// dbrotate alternating users, jwtrotate, apikeyrotate):
//
//   - a warm series: the function's strategy and the shared engine built
//     in-process as the function's main builds them, reused for warm-up
//     plus N full rotations through the local driver; per rotation the wall
//     time, and the Secrets Manager, KMS and database calls counted three
//     ways — every rotation.Call the engine and strategy make (through
//     driver.Wrap and rotation.WithCallObserver), every HTTP request on the
//     wire to the AWS APIs (a counting reverse proxy in front of moto), and
//     the sessions and failed password logins in PostgreSQL's own log;
//   - cold start: the bootstrap built for this machine exec'd against a fake
//     Lambda Runtime API; ready = its first GET …/runtime/invocation/next;
//   - peak memory: a fresh bootstrap serving the four events of a rotation
//     through the fake runtime API, then VmHWM from /proc/<pid>/status;
//   - the stripped linux/arm64 binary size;
//   - scale: many alternating-user database secrets rotated concurrently by
//     the local driver around one in-process engine, with the database's
//     connection peak from pg_stat_activity and a login with every
//     AWSCURRENT credential afterwards.
//
// It starts and stops everything itself and exits non-zero when a
// measurement could not be taken (a goal that is measured but missed is
// reported, not an error).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

type options struct {
	out         string
	microFile   string
	microExit   int
	benchtime   string
	rotations   int
	warmup      int
	coldStarts  int
	scale       int
	concurrency int
}

func main() {
	var o options
	flag.StringVar(&o.out, "out", "docs/BENCHMARKS.md", "the document to write the results into (between its rotbench markers)")
	flag.StringVar(&o.microFile, "micro", "", "output of the micro-benchmarks (go test -bench) to include")
	flag.IntVar(&o.microExit, "micro-exit", 0, "exit status of the micro-benchmark run (non-zero: they did not complete)")
	flag.StringVar(&o.benchtime, "micro-benchtime", "", "the -benchtime the micro-benchmarks ran with (empty: go test's default, 1s)")
	flag.IntVar(&o.rotations, "rotations", 20, "measured rotations per function, after the warm-up")
	flag.IntVar(&o.warmup, "warmup", 3, "warm-up rotations per function, not measured")
	flag.IntVar(&o.coldStarts, "cold-starts", 10, "cold starts per function")
	flag.IntVar(&o.scale, "scale", 1000, "database secrets in the scale run (0: skip it, which counts as a missing measurement)")
	flag.IntVar(&o.concurrency, "concurrency", 8, "concurrent rotations in the scale run")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o)
	if res != nil {
		doc := res.markdown()
		if werr := writeResults(o.out, doc); werr != nil {
			fmt.Fprintln(os.Stderr, "rotbench:", werr)
			os.Exit(1)
		}
		fmt.Print(res.summary())
		fmt.Printf("\nresults written to %s\n", o.out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rotbench:", err)
		os.Exit(1)
	}
	if len(res.missing) > 0 {
		fmt.Fprintf(os.Stderr, "rotbench: %d measurement(s) could not be taken:\n  %s\n", len(res.missing), strings.Join(res.missing, "\n  "))
		os.Exit(1)
	}
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// run takes every measurement it can. A failure of one part is recorded in
// results.missing and the others still run; err is for failures that leave
// nothing to report.
func run(ctx context.Context, o options) (*results, error) {
	res := &results{opts: o, machine: machine(), start: time.Now()}
	if o.microFile != "" {
		b, err := os.ReadFile(o.microFile)
		if err != nil {
			res.miss("micro-benchmarks: %v", err)
		}
		res.micro = string(b)
		if o.microExit != 0 {
			res.miss("micro-benchmarks: go test -bench exited with status %d", o.microExit)
		}
	} else {
		res.miss("micro-benchmarks: not run (pass -micro; scripts/bench.sh does)")
	}

	logf("starting moto and PostgreSQL, building the bootstraps for this machine and for linux/arm64 (load average %s)", res.machine.loadStart)
	scratch, err := os.MkdirTemp("", "rotbench-arm64-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	var wg sync.WaitGroup
	var sizeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		res.sizes, sizeErr = buildLambdaBinaries(scratch)
	}()
	s, err := startStack(ctx, logf)
	wg.Wait()
	if sizeErr != nil {
		res.miss("binary size: %v", sizeErr)
	}
	if err != nil {
		res.miss("local stack: %v", err)
		res.end = time.Now()
		return res, err
	}
	defer s.stop()
	res.machine.versions(s)

	subjects, err := s.seedSubjects(ctx)
	if err != nil {
		res.miss("seeding: %v", err)
		res.end = time.Now()
		return res, err
	}
	for _, sub := range subjects {
		logf("%s: %d warm-up + %d measured rotations, in-process", sub.label, o.warmup, o.rotations)
		ser, err := s.runSeries(ctx, sub, o.warmup, o.rotations)
		if err != nil {
			res.miss("warm rotations of %s: %v", sub.label, err)
			continue
		}
		res.series = append(res.series, ser)
	}
	for _, sub := range subjects {
		logf("%s: a fresh bootstrap process serving two rotations (peak memory)", sub.label)
		c, err := s.runCold(ctx, sub)
		if err != nil {
			res.miss("peak memory of %s: %v", sub.label, err)
			continue
		}
		res.cold = append(res.cold, c)
	}
	seen := map[string]bool{}
	for _, sub := range append(subjects, &subject{function: baselineName}) {
		if seen[sub.function] {
			continue
		}
		seen[sub.function] = true
		logf("%s: %d cold starts", sub.function, o.coldStarts)
		cs, err := s.coldStarts(sub.function, sub.env, o.coldStarts)
		if err != nil {
			res.miss("cold start of %s: %v", sub.function, err)
			continue
		}
		res.coldStarts = append(res.coldStarts, cs)
	}
	if o.scale > 0 {
		logf("scale: %d alternating-user database secrets, concurrency %d", o.scale, o.concurrency)
		sc, err := s.runScale(ctx, o.scale, o.concurrency, logf)
		if err != nil {
			res.miss("scale: %v", err)
		} else {
			res.scale = sc
		}
		if o.scale < goalScaleSecrets {
			res.miss("scale: run with %d secrets; the goal is about %d", o.scale, goalScaleSecrets)
		}
	} else {
		res.miss("scale: skipped (-scale 0)")
	}
	res.end = time.Now()
	res.machine.loadEnd = loadAverage()
	return res, nil
}
