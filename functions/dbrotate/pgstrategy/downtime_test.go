package pgstrategy_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotation-suite/rotation/pkg/pgpool"
	"github.com/rotation-suite/rotation/pkg/rotation"
	"github.com/rotation-suite/rotation/pkg/secretcache"
	"github.com/rotation-suite/rotation/pkg/secretcache/sqsinvalidate"
)

// loginLoad is a pool of application clients that log in every 10 ms with
// the AWSCURRENT value, re-reading the secret after an authentication
// failure and trying once more. (A client that caches a value across two
// alternating rotations fails by design: the role of AWSPREVIOUS is the
// next pending one and gets a new password. Applications refresh their
// cached secret well within one rotation interval.)
//
// A refusal counts against the rotation only if no newer rotation started
// between the client's read and its login: then the value it holds is
// AWSCURRENT or AWSPREVIOUS and must work. On a loaded machine a client can
// stall past the start of the next back-to-back rotation, whose setSecret
// legitimately re-passwords the role the client still holds; those
// refusals are counted apart (stale) and only reported.
type loginLoad struct {
	logins, firstTryRefused, failed, otherErrors, stale atomic.Int64 // counts
	started                                             atomic.Int64 // rotations started
}

func (l *loginLoad) run(ctx context.Context, s *stack, arn string, clients int) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				l.logins.Add(1)
				gen := l.started.Load()
				cached, err := s.read(arn, rotation.StageCurrent)
				if err != nil {
					l.otherErrors.Add(1)
					continue
				}
				err = s.login(ctx, cached)
				if err == nil || ctx.Err() != nil {
					continue
				}
				if !isAuthErr(err) {
					l.otherErrors.Add(1)
					continue
				}
				if l.started.Load() != gen {
					l.stale.Add(1)
					continue
				}
				l.firstTryRefused.Add(1)
				gen = l.started.Load()
				cached, _ = s.read(arn, rotation.StageCurrent)
				if err := s.login(ctx, cached); err != nil && ctx.Err() == nil && l.started.Load() == gen {
					l.failed.Add(1)
				}
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// appLoad is the application's view: goroutines doing real queries through
// a pgpool.Pool, counting every failed one. A failure is counted apart
// (stale) only when two rotations started during the query: pgpool
// guarantees calls that overlap at most one rotation (see its package doc),
// and back-to-back rotations 100 ms apart are a test's pace, not
// production's.
type appLoad struct {
	queries, failed, stale atomic.Int64
	started                *atomic.Int64
	mu                     sync.Mutex
	firstErr               error
}

func (l *appLoad) run(ctx context.Context, p *pgpool.Pool, workers int) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				gen := l.started.Load()
				qctx, qcancel := context.WithTimeout(ctx, 10*time.Second)
				var one int
				err := p.QueryRow(qctx, "SELECT 1").Scan(&one)
				qcancel()
				if ctx.Err() != nil {
					return
				}
				l.queries.Add(1)
				if err == nil {
					continue
				}
				if l.started.Load()-gen >= 2 {
					l.stale.Add(1)
					continue
				}
				l.failed.Add(1)
				l.mu.Lock()
				if l.firstErr == nil {
					l.firstErr = err
				}
				l.mu.Unlock()
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// notes wires the engine's notifications as in production — SNS, with an
// SQS queue subscribed — and records when each rotation.succeeded was
// published.
type notes struct {
	queueURL string
	sqs      *sqs.Client
	mu       sync.Mutex
	success  map[string]time.Time // version id → publish time
}

func newNotes(t *testing.T, s *stack) (*notes, rotation.Notifier) {
	t.Helper()
	ctx := context.Background()
	cfg, err := s.moto.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sn, sq := sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	topic, err := sn.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(uniq("rotation-notes"))})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(uniq("app-invalidations"))})
	if err != nil {
		t.Fatal(err)
	}
	qa, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(qa.Attributes["QueueArn"])}); err != nil {
		t.Fatal(err)
	}
	n := &notes{queueURL: aws.ToString(q.QueueUrl), sqs: sq, success: map[string]time.Time{}}
	pub := &rotation.SNSNotifier{Client: sn, TopicARN: aws.ToString(topic.TopicArn)}
	return n, rotation.NotifierFunc(func(ctx context.Context, m rotation.Notification) error {
		err := pub.Notify(ctx, m)
		if m.Event == rotation.EventSucceeded {
			n.mu.Lock()
			n.success[m.VersionID] = time.Now()
			n.mu.Unlock()
		}
		return err
	})
}

func (n *notes) succeededAt(version string) (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	at, ok := n.success[version]
	return at, ok
}

// appPool is an application's pool over its own cache; with a queue, its
// cache is invalidated by the notification poller.
func appPool(t *testing.T, s *stack, arn string, n *notes, ttl time.Duration) *pgpool.Pool {
	t.Helper()
	cache, err := secretcache.New(secretcache.Config{Client: s.sm, TTL: ttl, MinRefreshInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	base, err := pgxpool.ParseConfig("pool_max_conns=4 pool_min_conns=2")
	if err != nil {
		t.Fatal(err)
	}
	p, err := pgpool.New(context.Background(), pgpool.Config{Cache: cache, SecretID: arn, Base: base, CABundlePEM: s.pg.CACertPEM, RecycleCheck: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if n != nil {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		poller := &sqsinvalidate.Poller{Client: n.sqs, QueueURL: n.queueURL, Cache: cache, WaitTime: time.Second}
		go func() { defer close(done); _ = poller.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	if err := p.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

// converged waits until every open connection of p uses version and
// returns how long after since that was first seen.
func converged(p *pgpool.Pool, version string, since time.Time, limit time.Duration) (time.Duration, bool) {
	for time.Since(since) < limit {
		vs := p.ConnVersions()
		if len(vs) == 1 && vs[version] > 0 {
			return time.Since(since), true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return limit, false
}

// TestZeroDowntime: while 50 alternating and 50 single-user rotations run,
// applications querying through pkg/pgpool never see a failed query, and
// the old assertions hold: clients logging in every 10 ms with a re-read of
// the secret never fail in alternating mode (single-user first-try refusals
// are by design and reported: the window between setSecret and finishSecret
// in which only the pending password works, which pgpool absorbs). After the
// last rotation, the time from rotation.succeeded to every pool connection
// using the new credentials is reported with and without the notification
// poller.
func TestZeroDowntime(t *testing.T) {
	if testing.Short() {
		t.Skip("50 rotations under load")
	}
	for _, mode := range []string{"alternating", "single"} {
		t.Run(mode, func(t *testing.T) {
			s := newStack(t)
			ctx := context.Background()
			var arn string
			if mode == "alternating" {
				arn, _, _ = alternating(t, s, true, false)
			} else {
				user, pw := uniq("zd"), randomPassword(t)
				s.createRole(t, user, pw, "")
				arn = s.createSecret(t, uniq("zd"), s.appSecret(user, pw, nil))
			}
			n, notifier := newNotes(t, s)
			st := newStrategy(t, testConfig(s))
			t.Cleanup(st.Close)
			eng, err := rotation.New(rotation.Config{Secrets: s.sm, Strategy: st, Notifier: notifier, Logger: slog.New(slog.NewJSONHandler(s.logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			d := s.driver(eng)
			var load loginLoad
			const ttl = 2 * time.Second
			polled := appPool(t, s, arn, n, time.Hour) // picks rotations up from the notifications only
			ttlOnly := appPool(t, s, arn, nil, ttl)    // picks them up from its cache's TTL only
			apps := []*appLoad{{started: &load.started}, {started: &load.started}}
			stopLogins := load.run(ctx, s, arn, 2)
			stopApps := []func(){apps[0].run(ctx, polled, 3), apps[1].run(ctx, ttlOnly, 3)}
			start := time.Now()
			for i := range 50 {
				load.started.Add(1)
				if _, err := d.Rotate(ctx, arn, ""); err != nil {
					stopLogins()
					t.Fatalf("rotation %d: %v", i+1, err)
				}
			}
			elapsed := time.Since(start)
			// The reported figure: one more rotation after a quiet second.
			time.Sleep(time.Second)
			load.started.Add(1)
			res, err := d.Rotate(ctx, arn, "")
			if err != nil {
				t.Fatal(err)
			}
			last := res.Token
			at, ok := n.succeededAt(last)
			if !ok {
				t.Fatal("no rotation.succeeded notification for the last rotation")
			}
			withPoller, okP := converged(polled, last, at, 30*time.Second)
			withoutPoller, okT := converged(ttlOnly, last, at, 30*time.Second)
			time.Sleep(50 * time.Millisecond)
			stopLogins()
			for _, stop := range stopApps {
				stop()
			}
			t.Logf("%s: 51 rotations (50 in %v); logins: %d, %d refused at the first try, %d still refused after re-reading the secret, %d other errors, %d refused with a value held into the next rotation (stalled client, not counted)",
				mode, elapsed.Round(time.Millisecond), load.logins.Load(), load.firstTryRefused.Load(), load.failed.Load(), load.otherErrors.Load(), load.stale.Load())
			for i, name := range []string{"with the notification poller", "with a 2 s cache TTL and no poller"} {
				a := apps[i]
				st := []*pgpool.Pool{polled, ttlOnly}[i].Stats()
				t.Logf("%s: application queries through pgpool %s: %d, %d failed, %d failed across two rotations (not counted); %d connections retried after 28P01 (%d on AWSPENDING), %d recycled",
					mode, name, a.queries.Load(), a.failed.Load(), a.stale.Load(), st.AuthRetries, st.PendingUsed, st.Recycled)
				if a.failed.Load() != 0 {
					t.Errorf("%s: %d application queries failed %s; first: %v", mode, a.failed.Load(), name, a.firstErr)
				}
				if a.queries.Load() == 0 {
					t.Errorf("%s: no application query ran %s", mode, name)
				}
			}
			t.Logf("%s: rotation.succeeded → every pool connection on the new credentials: %v with the notification poller (converged: %t), %v with a %v TTL and no poller (converged: %t)",
				mode, withPoller.Round(time.Millisecond), okP, withoutPoller.Round(time.Millisecond), ttl, okT)
			if !okP || !okT {
				t.Errorf("%s: the pools did not all move to the new credentials within 30 s (poller %t, TTL %t)", mode, okP, okT)
			}
			if load.otherErrors.Load() != 0 {
				t.Errorf("%d logins failed for a reason other than the password", load.otherErrors.Load())
			}
			if mode == "alternating" && (load.failed.Load() != 0 || load.firstTryRefused.Load() != 0) {
				t.Fatalf("alternating rotation refused %d logins (%d after re-reading)", load.firstTryRefused.Load(), load.failed.Load())
			}
			s.assertPasswordsNotLogged(t, passwordsOf(t, s.allValues(t, arn)))
		})
	}
}
