package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/internal/wirecount"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// opCounter counts the calls one rotation makes through rotation.Call, by
// op, and the failed database logins among them.
type opCounter struct {
	mu            sync.Mutex
	ops           map[string]int
	failedConnect int                      // postgres:connect returned an error
	authFailed    int                      // … with SQLSTATE 28P01
	time          map[string]time.Duration // by service: secretsmanager, kms, postgres, …
}

func newOpCounter() *opCounter {
	return &opCounter{ops: map[string]int{}, time: map[string]time.Duration{}}
}

func (c *opCounter) observe(op string, d time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops[op]++
	svc, _, _ := strings.Cut(op, ":")
	c.time[svc] += d
	if op == "postgres:connect" && err != nil {
		c.failedConnect++
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "28P01" {
			c.authFailed++
		}
	}
}

// counts is what an opCounter saw since it was last taken.
type counts struct {
	ops           map[string]int
	failedConnect int
	authFailed    int
	time          map[string]time.Duration
}

func (c *opCounter) take() counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := counts{c.ops, c.failedConnect, c.authFailed, c.time}
	c.ops, c.failedConnect, c.authFailed, c.time = map[string]int{}, 0, 0, map[string]time.Duration{}
	return out
}

// sample is what one rotation cost.
type sample struct {
	wall       time.Duration // driver.Rotate: RotateSecret, four steps, AWSPENDING clean-up
	inFunction time.Duration // the four step invocations alone
	ops        map[string]int
	callTime   map[string]time.Duration // time inside the counted calls, by service
	wire       map[string]int           // HTTP requests through the counting proxy
	sdk        map[string]int           // attempts seen by the SDK middleware (in-process only)
	failedConn int
	authFailed int
	log        logFacts
}

func (x sample) smCalls() int      { return wirecount.SumPrefix(x.ops, "secretsmanager:") }
func (x sample) kmsCalls() int     { return wirecount.SumPrefix(x.ops, "kms:") }
func (x sample) dbConnects() int   { return x.ops["postgres:connect"] }
func (x sample) dbCalls() int      { return wirecount.SumPrefix(x.ops, "postgres:") }
func (x sample) wireSM() int       { return wirecount.SumPrefix(x.wire, "secretsmanager:") }
func (x sample) wireKMS() int      { return wirecount.SumPrefix(x.wire, "kms:") }
func (x sample) sdkSM() int        { return wirecount.SumPrefix(x.sdk, "secretsmanager:") }
func (x sample) failedLogins() int { return max(x.failedConn, x.log.failedLogins) }

// rotateOnce runs one rotation of arn through inv and returns its sample.
func (s *stack) rotateOnce(ctx context.Context, inv driver.Invoker, arn string, counter *opCounter) (sample, error) {
	drv := &driver.Driver{SM: s.SM, Invoke: inv, LambdaARN: s.lambda, Attempts: 1, StepTimeout: 30 * time.Second,
		Wrap: func(ctx context.Context, _ int, _ rotation.Step) context.Context {
			return rotation.WithCallObserver(ctx, counter.observe)
		}}
	counter.take()
	s.wire.Take()
	s.sdk.take()
	off := s.logOffset()
	res, err := drv.Rotate(ctx, arn, "")
	var x sample
	c := counter.take()
	x.ops, x.failedConn, x.authFailed, x.callTime = c.ops, c.failedConnect, c.authFailed, c.time
	x.wire = s.wire.Take()
	x.sdk = s.sdk.take()
	text, _, lerr := s.serverLog(off)
	if lerr != nil && err == nil {
		err = lerr
	}
	x.log = parseLog(text)
	if res != nil {
		x.wall = res.Duration
		for _, st := range res.Steps {
			x.inFunction += st.Duration
		}
	}
	return x, err
}

// series is the warm, in-process measurement of one subject.
type series struct {
	sub     *subject
	warmup  int
	samples []sample
}

// runSeries rotates the subject's warm secret warmup+n times with one
// engine (a warm execution environment) and keeps the last n samples.
func (s *stack) runSeries(ctx context.Context, sub *subject, warmup, n int) (*series, error) {
	clk := &clock{}
	eng, closer, err := s.engineFor(ctx, sub.function, sub.env, clk)
	if err != nil {
		return nil, err
	}
	defer closer()
	out := &series{sub: sub, warmup: warmup}
	counter := newOpCounter()
	for i := 0; i < warmup+n; i++ {
		x, err := s.rotateOnce(ctx, eng, sub.warm, counter)
		if err != nil {
			return nil, fmt.Errorf("%s: rotation %d: %w", sub.label, i+1, err)
		}
		if i >= warmup {
			out.samples = append(out.samples, x)
		}
		if sub.advance > 0 {
			clk.add(sub.advance)
		}
	}
	return out, nil
}

// coldRun is one fresh bootstrap process serving rotations.
type coldRun struct {
	sub        *subject
	ready      time.Duration // exec → first poll
	first      sample        // the first rotation, in the fresh process
	hwmFirst   int64         // VmHWM after the first rotation
	second     sample        // a second rotation in the same (now warm) process
	hwmSecond  int64
	rssSecond  int64
	sampledRSS int64 // the largest VmRSS seen by sampling every millisecond during both rotations
	processLog string
}

// runCold rotates the subject's cold secret once in-process (so it is past
// its first rotation), then twice through a fresh bootstrap process on the
// fake runtime API, and reads the process's peak resident memory.
func (s *stack) runCold(ctx context.Context, sub *subject) (*coldRun, error) {
	env := sub.coldEnvironment()
	eng, closer, err := s.engineFor(ctx, sub.function, env, nil)
	if err != nil {
		return nil, err
	}
	counter := newOpCounter()
	_, err = s.rotateOnce(ctx, eng, sub.cold, counter)
	closer()
	if err != nil {
		return nil, fmt.Errorf("%s: preparing the cold secret: %w", sub.label, err)
	}

	rt, err := startFakeRuntime(sub.function)
	if err != nil {
		return nil, err
	}
	defer rt.stop()
	p, err := startBootstrap(s.bootstraps[sub.function], rt, lambdaEnv(rt, sub.function, append(s.awsEnv(), env...)))
	if err != nil {
		return nil, err
	}
	killed := false
	defer func() {
		if !killed {
			p.kill()
		}
	}()
	out := &coldRun{sub: sub}
	if out.ready, err = p.ready(30 * time.Second); err != nil {
		return nil, fmt.Errorf("%s bootstrap: %w", sub.function, err)
	}
	// VmHWM is the kernel's own peak; sampling VmRSS is a second opinion
	// that does not depend on when the kernel updates its high-water mark.
	stopSampling := make(chan struct{})
	sampled := make(chan int64, 1)
	go func() {
		var peak int64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := p.status("VmRSS"); err == nil {
				peak = max(peak, v)
			}
			select {
			case <-stopSampling:
				sampled <- peak
				return
			case <-tick.C:
			}
		}
	}()
	defer func() {
		select {
		case <-stopSampling:
		default:
			close(stopSampling)
		}
	}()
	for i, dst := range []*sample{&out.first, &out.second} {
		x, err := s.rotateOnce(ctx, rt, sub.cold, counter)
		if err != nil {
			return nil, fmt.Errorf("%s: rotation %d through the bootstrap: %w; function output: %s", sub.label, i+1, err, lastLines(p.out.String(), 5))
		}
		// x.ops is empty: the process's calls are counted on the wire.
		*dst = x
		if err := rt.waitIdle(10 * time.Second); err != nil {
			return nil, err
		}
		hwm, err := p.status("VmHWM")
		if err != nil {
			return nil, err
		}
		if i == 0 {
			out.hwmFirst = hwm
		} else {
			out.hwmSecond = hwm
			if out.rssSecond, err = p.status("VmRSS"); err != nil {
				return nil, err
			}
		}
	}
	close(stopSampling)
	out.sampledRSS = <-sampled
	p.kill()
	killed = true
	out.processLog = p.out.String()
	return out, nil
}

// coldStartSet is the cold starts of one function.
type coldStartSet struct {
	function string
	times    []time.Duration
	// initMS is the package initialisation time GODEBUG=inittrace=1
	// reports (the sum of its "ms clock" figures, one extra start), and
	// initTop the packages that took longest.
	initMS  float64
	initTop []string
	// initEnd is when the last package init ended, in ms since the Go
	// runtime started (inittrace's "@" clock), in that same traced start;
	// traceReady is exec → ready in that start.
	initEnd    float64
	traceReady time.Duration
	// runnable is the number of runnable tasks on the machine (from
	// /proc/loadavg, rotbench's own included) just before each measured
	// start: how contended the CPUs were while it was measured.
	runnable []float64
}

// coldStarts execs the function's bootstrap n+1 times (the first, not
// counted, loads the binary into the page cache) and returns the times from
// exec to its first GET …/invocation/next, then starts it once more with
// GODEBUG=inittrace=1 to see where package initialisation spends its time.
func (s *stack) coldStarts(function string, env []string, n int) (*coldStartSet, error) {
	out := &coldStartSet{function: function}
	for i := 0; i <= n+1; i++ {
		trace := i == n+1
		e := append(s.awsEnv(), env...)
		if trace {
			e = append(e, "GODEBUG=inittrace=1")
		}
		rt, err := startFakeRuntime(function)
		if err != nil {
			return nil, err
		}
		running := runnableTasks()
		p, err := startBootstrap(s.bootstraps[function], rt, lambdaEnv(rt, function, e))
		if err != nil {
			rt.stop()
			return nil, err
		}
		d, err := p.ready(30 * time.Second)
		p.kill()
		rt.stop()
		if err != nil {
			return nil, fmt.Errorf("%s cold start: %w", function, err)
		}
		switch {
		case trace:
			out.initMS, out.initEnd, out.initTop = parseInitTrace(p.out.String(), 3)
			out.traceReady = d
		case i > 0:
			out.times = append(out.times, d)
			out.runnable = append(out.runnable, running)
		}
	}
	return out, nil
}

// parseInitTrace sums the "init <pkg> @S ms, N ms clock, …" lines, finds
// when the last one ended (S+N, ms since the runtime started) and names the
// top packages by clock time.
func parseInitTrace(out string, top int) (total, end float64, names []string) {
	type pkgTime struct {
		pkg string
		ms  float64
	}
	var all []pkgTime
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 7 || f[0] != "init" || !strings.HasPrefix(f[2], "@") || f[5] != "ms" || f[6] != "clock," {
			continue
		}
		at, err1 := strconv.ParseFloat(f[2][1:], 64)
		v, err2 := strconv.ParseFloat(f[4], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		total += v
		end = max(end, at+v)
		all = append(all, pkgTime{f[1], v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ms > all[j].ms })
	for _, p := range all[:min(top, len(all))] {
		names = append(names, fmt.Sprintf("%s %.2f ms", p.pkg, p.ms))
	}
	return total, end, names
}

// binarySize is one function built for Lambda on arm64.
type binarySize struct {
	function  string
	bytes     int64
	zipBytes  int64
	buildTime time.Duration
}

// buildLambdaBinaries builds every function for linux/arm64 exactly as the
// Makefile's build targets do and measures the stripped binary and its zip.
func buildLambdaBinaries(dir string) ([]binarySize, error) {
	var out []binarySize
	for _, f := range functionNames {
		bin := filepath.Join(dir, "arm64-"+f, "bootstrap")
		t0 := time.Now()
		if err := testenv.BuildLambda("./functions/"+f, "linux", "arm64", bin); err != nil {
			return nil, err
		}
		took := time.Since(t0)
		data, err := os.ReadFile(bin)
		if err != nil {
			return nil, err
		}
		z, err := testenv.DeploymentZip(data)
		if err != nil {
			return nil, err
		}
		out = append(out, binarySize{function: f, bytes: int64(len(data)), zipBytes: int64(len(z)), buildTime: took})
	}
	return out, nil
}
