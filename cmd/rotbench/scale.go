package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// scaleResult is the outcome of rotating many database secrets at once.
type scaleResult struct {
	secrets, concurrency int
	seedTime             time.Duration
	wall                 time.Duration
	durations            []time.Duration // successful rotations
	succeeded            int
	retried              int // succeeded, but only after the driver retried
	errors               []string
	ops                  map[string]int
	callTime             map[string]time.Duration
	wire                 map[string]int
	sdk                  map[string]int
	failedConn           int
	log                  logFacts
	peakConns            int // client sessions in pg_stat_activity (all)
	peakFnConns          int // … of the rotation function
	polls                int
	loginsOK             int
	loginErrors          []string
	verifyTime           time.Duration
}

// runScale creates n alternating-user database secrets on the one cluster
// (one admin secret for all, clone mode) and rotates each once with the
// local driver around one in-process engine, concurrency at a time, while
// polling pg_stat_activity. Then every AWSCURRENT credential logs in.
func (s *stack) runScale(ctx context.Context, n, concurrency int, logf func(string, ...any)) (*scaleResult, error) {
	r := &scaleResult{secrets: n, concurrency: concurrency}
	t0 := time.Now()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("scale_%04d", i)
	}
	roles, err := s.newRoles(ctx, "", names...)
	if err != nil {
		return nil, err
	}
	admins, err := s.newRoles(ctx, "CREATEROLE", "scale_admin")
	if err != nil {
		return nil, err
	}
	master, err := s.CreateSecret(ctx, "/rotbench/scale/admin", s.dbSecret(admins[0], ""))
	if err != nil {
		return nil, err
	}
	arns := make([]string, n)
	if err := parallel(n, concurrency, func(i int) error {
		arn, err := s.CreateSecret(ctx, "/rotbench/scale/"+roles[i].name, s.dbSecret(roles[i], master))
		arns[i] = arn
		return err
	}); err != nil {
		return nil, err
	}
	r.seedTime = time.Since(t0)
	logf("scale: %d roles and secrets created in %s", n, r.seedTime.Round(time.Millisecond))

	eng, closer, err := s.engineFor(ctx, "dbrotate", []string{"DB_CA_BUNDLE_FILE=" + s.caPEM, "OUTGOING_USER_GRACE=24h"}, nil)
	if err != nil {
		return nil, err
	}
	defer closer()
	counter := newOpCounter()
	drv := &driver.Driver{SM: s.SM, Invoke: eng, LambdaARN: s.lambda, StepTimeout: 30 * time.Second,
		Wrap: func(ctx context.Context, _ int, _ rotation.Step) context.Context {
			return rotation.WithCallObserver(ctx, counter.observe)
		}}

	pollCtx, stopPoll := context.WithCancel(ctx)
	pollDone := make(chan error, 1)
	go func() { pollDone <- s.pollConnections(pollCtx, r) }()

	s.wire.Take()
	s.sdk.take()
	counter.take()
	off := s.logOffset()
	var mu sync.Mutex
	var done atomic.Int64
	start := time.Now()
	_ = parallel(n, concurrency, func(i int) error {
		res, err := drv.Rotate(ctx, arns[i], "")
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if len(r.errors) < 5 {
				r.errors = append(r.errors, fmt.Sprintf("%s: %v", names[i], err))
			}
		} else {
			r.succeeded++
			r.durations = append(r.durations, res.Duration)
			if res.Attempts > 1 {
				r.retried++
			}
		}
		if k := done.Add(1); k%250 == 0 {
			logf("scale: %d of %d rotations done (%s)", k, n, time.Since(start).Round(time.Millisecond))
		}
		return nil
	})
	r.wall = time.Since(start)
	stopPoll()
	if err := <-pollDone; err != nil {
		return nil, fmt.Errorf("polling pg_stat_activity: %w", err)
	}
	c := counter.take()
	r.ops, r.failedConn, r.callTime = c.ops, c.failedConnect, c.time
	r.wire = s.wire.Take()
	r.sdk = s.sdk.take()
	text, _, err := s.serverLog(off)
	if err != nil {
		return nil, err
	}
	r.log = parseLog(text)
	sort.Slice(r.durations, func(i, j int) bool { return r.durations[i] < r.durations[j] })

	t1 := time.Now()
	var ok atomic.Int64
	_ = parallel(n, concurrency, func(i int) error {
		v, err := s.SecretValue(ctx, arns[i], rotation.StageCurrent)
		if err == nil {
			err = s.login(ctx, v)
		}
		if err == nil {
			ok.Add(1)
			return nil
		}
		mu.Lock()
		if len(r.loginErrors) < 5 {
			r.loginErrors = append(r.loginErrors, fmt.Sprintf("%s: %v", names[i], err))
		}
		mu.Unlock()
		return nil
	})
	r.loginsOK = int(ok.Load())
	r.verifyTime = time.Since(t1)
	return r, nil
}

// pollConnections samples pg_stat_activity every 5 ms until ctx ends and
// keeps the peaks in r.
func (s *stack) pollConnections(ctx context.Context, r *scaleResult) error {
	conn, err := s.Postgres.AdminConn(context.Background(), "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var all, fn int
		err := conn.QueryRow(context.Background(), `SELECT count(*),
			count(*) FILTER (WHERE application_name = 'secrets-manager-rotation')
			FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`).Scan(&all, &fn)
		if err != nil {
			return err
		}
		r.polls++
		r.peakConns = max(r.peakConns, all)
		r.peakFnConns = max(r.peakFnConns, fn)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// parallel runs f(0..n-1) on k workers and returns the first error.
func parallel(n, k int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	wg.Wait()
	return first
}
