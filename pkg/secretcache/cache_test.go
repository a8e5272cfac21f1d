package secretcache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/internal/smfake"
	"github.com/rotation-suite/rotation/pkg/secretcache"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// source is smfake (Secrets Manager's rules) with a count of reads, an
// optional gate every read waits on, and an optional failure.
type source struct {
	*smfake.Fake
	reads atomic.Int64
	gate  atomic.Pointer[chan struct{}]
	fail  atomic.Pointer[error]
}

func newSource() *source {
	s := &source{Fake: smfake.New()}
	s.Intercept = func(ctx context.Context, op string, _ any) error {
		if op != "GetSecretValue" {
			return nil
		}
		s.reads.Add(1)
		if g := s.gate.Load(); g != nil {
			select {
			case <-*g:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if e := s.fail.Load(); e != nil {
			return *e
		}
		return nil
	}
	return s
}

func (s *source) create(t testing.TB, name, value string) string {
	t.Helper()
	out, err := s.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

// rotate stores value as the new AWSCURRENT.
func (s *source) rotate(t testing.TB, id, value string) string {
	t.Helper()
	out, err := s.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(value)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.VersionId)
}

func (s *source) block() (release func()) {
	ch := make(chan struct{})
	s.gate.Store(&ch)
	var once sync.Once
	return func() { once.Do(func() { s.gate.Store(nil); close(ch) }) }
}

func newCache(t testing.TB, src *source, clk *clock, mod ...func(*secretcache.Config)) *secretcache.Cache {
	t.Helper()
	cfg := secretcache.Config{Client: src, TTL: time.Minute, MaxStale: 10 * time.Minute, MinRefreshInterval: time.Second}
	if clk != nil {
		cfg.Now = clk.Now
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := secretcache.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually polls cond for up to 10 s (the background read's goroutine).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}

func TestAValueIsReadOnceAndServedFromMemoryUntilItsTTL(t *testing.T) {
	src, clk := newSource(), &clock{t: time.Unix(1e9, 0)}
	arn := src.create(t, "app/one", "v1")
	c := newCache(t, src, clk)
	for range 100 {
		v, err := c.Get(context.Background(), arn)
		if err != nil || v.Text() != "v1" {
			t.Fatalf("%v %v", v, err)
		}
	}
	if n := src.reads.Load(); n != 1 {
		t.Fatalf("%d reads for 100 gets inside the TTL, want 1", n)
	}
}

func TestAnExpiredValueIsServedAtOnceWhileOneBackgroundReadReplacesIt(t *testing.T) {
	src, clk := newSource(), &clock{t: time.Unix(1e9, 0)}
	arn := src.create(t, "app/swr", "v1")
	c := newCache(t, src, clk)
	if _, err := c.Get(context.Background(), arn); err != nil {
		t.Fatal(err)
	}
	src.rotate(t, arn, "v2")
	clk.Add(2 * time.Minute) // past TTL, inside MaxStale
	release := src.block()
	defer release()
	for range 50 { // the read is held: every Get must still answer, with v1
		v, err := c.Get(context.Background(), arn)
		if err != nil || v.Text() != "v1" {
			t.Fatalf("while the refresh is in flight: %v %v", v, err)
		}
	}
	eventually(t, "one background read starts", func() bool { return src.reads.Load() == 2 })
	release()
	eventually(t, "the background read lands", func() bool { v, _ := c.Get(context.Background(), arn); return v.Text() == "v2" })
	if n := src.reads.Load(); n != 2 {
		t.Fatalf("%d reads, want 1 + one background read for 50 stale gets", n)
	}
}

func TestPastMaxStaleTheCacheFailsClosedAndDoesNotHammerAFailingSource(t *testing.T) {
	src, clk := newSource(), &clock{t: time.Unix(1e9, 0)}
	arn := src.create(t, "app/down", "v1")
	c := newCache(t, src, clk)
	if _, err := c.Get(context.Background(), arn); err != nil {
		t.Fatal(err)
	}
	down := errors.New("service unavailable")
	src.fail.Store(&down)
	clk.Add(5 * time.Minute) // stale: still served, one background read fails
	if v, err := c.Get(context.Background(), arn); err != nil || v.Text() != "v1" {
		t.Fatalf("stale inside MaxStale: %v %v", v, err)
	}
	eventually(t, "the background read fails", func() bool { return src.reads.Load() == 2 })
	clk.Add(6 * time.Minute) // past MaxStale
	_, err := c.Get(context.Background(), arn)
	if !errors.Is(err, secretcache.ErrUnavailable) || !errors.Is(err, down) {
		t.Fatalf("past MaxStale with a failing source: %v, want ErrUnavailable wrapping the cause", err)
	}
	reads := src.reads.Load()
	for range 100 {
		if _, err := c.Get(context.Background(), arn); !errors.Is(err, secretcache.ErrUnavailable) {
			t.Fatalf("got %v", err)
		}
	}
	if n := src.reads.Load() - reads; n != 0 {
		t.Fatalf("%d more reads within the retry pause", n)
	}
	src.fail.Store(nil)
	clk.Add(time.Minute) // past the retry pause
	if v, err := c.Get(context.Background(), arn); err != nil || v.Text() != "v1" {
		t.Fatalf("after the source recovered: %v %v", v, err)
	}
}

func TestConcurrentColdReadersShareOneRead(t *testing.T) {
	src := newSource()
	arn := src.create(t, "app/cold", "v1")
	c := newCache(t, src, nil)
	release := src.block()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.Get(context.Background(), arn)
			if err == nil && v.Text() != "v1" {
				err = fmt.Errorf("value %q", v.Text())
			}
			errs <- err
		}()
	}
	eventually(t, "the read starts", func() bool { return src.reads.Load() == 1 })
	time.Sleep(20 * time.Millisecond)
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := src.reads.Load(); n != 1 {
		t.Fatalf("%d reads for 64 cold readers, want 1", n)
	}
}

func TestAReaderThatGivesUpDoesNotCancelTheSharedRead(t *testing.T) {
	src := newSource()
	arn := src.create(t, "app/deadline", "v1")
	c := newCache(t, src, nil)
	release := src.block()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, arn); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, secretcache.ErrUnavailable) {
		t.Fatalf("a reader past its deadline: %v", err)
	}
	release()
	eventually(t, "the read completes for the next caller", func() bool { _, ok := c.Peek(arn); return ok })
	if n := src.reads.Load(); n != 1 {
		t.Fatalf("%d reads, want the one that outlived its first caller", n)
	}
}

func TestRefreshReadsNowButAtMostOncePerIntervalPerSecret(t *testing.T) {
	src, clk := newSource(), &clock{t: time.Unix(1e9, 0)}
	arn := src.create(t, "app/storm", "v1")
	other := src.create(t, "app/other", "o1")
	c := newCache(t, src, clk)
	if _, err := c.Get(context.Background(), arn); err != nil {
		t.Fatal(err)
	}
	v2 := src.rotate(t, arn, "v2")
	clk.Add(time.Second)
	v, err := c.Refresh(context.Background(), arn)
	if err != nil || v.VersionID != v2 {
		t.Fatalf("a refresh after a refusal must read the new version: %v %v", v, err)
	}
	src.rotate(t, arn, "v3")
	for range 10000 {
		if v, err := c.Refresh(context.Background(), arn); err != nil || v.VersionID != v2 {
			t.Fatalf("inside the interval: %v %v", v, err)
		}
	}
	if n := src.reads.Load(); n != 2 {
		t.Fatalf("%d reads for 1 get and 10,001 refreshes in one interval, want 2", n)
	}
	if v, err := c.Refresh(context.Background(), other); err != nil || v.Text() != "o1" {
		t.Fatalf("another secret has its own allowance: %v %v", v, err)
	}
	clk.Add(time.Second)
	if v, _ := c.Refresh(context.Background(), arn); v.Text() != "v3" {
		t.Fatalf("after the interval: %v", v)
	}
}

func TestInvalidateRereadsAtOnceAndAgainAfterAReadAlreadyInFlight(t *testing.T) {
	src, clk := newSource(), &clock{t: time.Unix(1e9, 0)}
	arn := src.create(t, "app/inval", "v1")
	c := newCache(t, src, clk)
	if _, err := c.Get(context.Background(), "app/inval"); err != nil { // asked by name
		t.Fatal(err)
	}
	release := src.block()
	c.Invalidate(arn) // by ARN, as notifications name it
	eventually(t, "the invalidation read starts", func() bool { return src.reads.Load() == 2 })
	src.rotate(t, arn, "v2") // the rotation ends while that read is in flight
	c.Invalidate(arn)
	if v, _ := c.Get(context.Background(), "app/inval"); v.Text() != "v1" {
		t.Fatalf("the old value stays in use during the read: %v", v)
	}
	release()
	eventually(t, "the second read lands", func() bool { v, _ := c.Get(context.Background(), "app/inval"); return v.Text() == "v2" })
	if n := src.reads.Load(); n != 3 {
		t.Fatalf("%d reads, want 1 + 2 invalidation reads", n)
	}
}

func TestSubscribersLearnThatAStageMovedToANewVersion(t *testing.T) {
	src, clk := newSource(), &clock{t: time.Unix(1e9, 0)}
	arn := src.create(t, "app/sub", "v1")
	c := newCache(t, src, clk)
	var mu sync.Mutex
	var changes []secretcache.Change
	stop := c.Subscribe(func(ch secretcache.Change) { mu.Lock(); changes = append(changes, ch); mu.Unlock() })
	v1, _ := c.Get(context.Background(), arn)
	v2 := src.rotate(t, arn, "v2")
	clk.Add(time.Second)
	c.Refresh(context.Background(), arn)
	clk.Add(time.Second)
	c.Refresh(context.Background(), arn) // same version: no change
	stop()
	src.rotate(t, arn, "v3")
	clk.Add(time.Second)
	c.Refresh(context.Background(), arn)
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 2 || changes[0].NewVersionID != v1.VersionID || changes[1].OldVersionID != v1.VersionID || changes[1].NewVersionID != v2 || changes[1].ARN != arn {
		t.Fatalf("changes %+v", changes)
	}
}

func TestAVersionIsReadOnceAndAStageReadFillsItsVersion(t *testing.T) {
	src := newSource()
	arn := src.create(t, "app/ver", "v1")
	c := newCache(t, src, nil)
	v, err := c.Get(context.Background(), arn)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		got, err := c.GetVersion(context.Background(), arn, v.VersionID)
		if err != nil || got.Text() != "v1" {
			t.Fatalf("%v %v", got, err)
		}
	}
	if _, err := c.GetStage(context.Background(), arn, "AWSPENDING"); err == nil {
		t.Fatal("a stage no version carries must fail")
	}
	if n := src.reads.Load(); n != 2 {
		t.Fatalf("%d reads, want the AWSCURRENT one and the failed AWSPENDING one", n)
	}
}

func TestAValueNeverPrintsItsSecret(t *testing.T) {
	src := newSource()
	arn := src.create(t, "app/print", "hunter2-secret")
	c := newCache(t, src, nil)
	v, err := c.Get(context.Background(), arn)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "value", v)
	out := fmt.Sprintf("%v %+v %#v %s %q %x", v, v, v, v, v, v) + fmt.Sprint(v) + logs.String()
	if strings.Contains(out, "hunter2") || !strings.Contains(out, v.VersionID) {
		t.Fatalf("printed: %s", out)
	}
}
