package pgpool_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotation-suite/rotation/internal/smfake"
	"github.com/rotation-suite/rotation/pkg/pgpool"
)

// rotations is how many rotations each mode of the concurrency test runs;
// PGPOOL_ROTATIONS raises it to hunt for rare interleavings.
func rotations(t *testing.T) int {
	if s := os.Getenv("PGPOOL_ROTATIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("PGPOOL_ROTATIONS=%q: %v", s, err)
		}
		return n
	}
	return 8
}

// rotate performs one rotation the way Secrets Manager drives dbrotate:
// createSecret (AWSPENDING), setSecret (the database takes the pending
// password), a pause for testSecret (the single-user window), finishSecret
// (AWSCURRENT moves), and the service removing AWSPENDING at the end.
func (e *env) rotate(t *testing.T, current, user string) string {
	t.Helper()
	pw := randHex(16)
	pending := e.put(t, e.value(pw, map[string]any{"username": user}), smfake.StagePending)
	e.super(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", pgx.Identifier{user}.Sanitize(), scramVerifier(pw)))
	time.Sleep(20 * time.Millisecond)
	if _, err := e.sm.UpdateSecretVersionStage(context.Background(), &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(e.arn), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(pending), RemoveFromVersionId: aws.String(current),
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.sm.RemovePending(e.arn); err != nil {
		t.Fatal(err)
	}
	return pending
}

func (e *env) currentVersion(t *testing.T) string {
	t.Helper()
	out, err := e.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(e.arn)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.VersionId)
}

// TestNoQueryFailsWhileRotationsRunBackToBack runs queries from several
// goroutines while rotations follow each other 100 ms apart (an operator
// running "rotate now" again and again) and every connection is made to
// reconnect all the time: not one application query may fail, in either
// mode, however a connection attempt interleaves with the rotation steps.
//
// What it models of real rotations: one application call never spans two
// rotations. A rotation is four Lambda invocations and cannot start before
// the previous one finished, while a call takes milliseconds; under -race
// on a loaded machine a single connection attempt here can take longer than
// a whole rotation, so the next rotation waits until every worker finished
// a query it started after the last one (the pool's guarantee, in its
// package doc, is stated in the same terms).
func TestNoQueryFailsWhileRotationsRunBackToBack(t *testing.T) {
	for _, mode := range []string{"single-user", "alternating"} {
		t.Run(mode, func(t *testing.T) {
			e, _ := newEnv(t, time.Hour) // caches stay stale unless a refusal forces a read
			users := []string{e.role}
			if mode == "alternating" {
				clone := e.role + "_clone"
				e.super(t, fmt.Sprintf("CREATE ROLE %s WITH LOGIN PASSWORD '%s'", pgx.Identifier{clone}.Sanitize(), scramVerifier(randHex(16))))
				t.Cleanup(func() { e.super(t, "DROP ROLE IF EXISTS "+pgx.Identifier{clone}.Sanitize()) })
				users = append(users, clone)
			}
			p := e.pool(t, func(c *pgpool.Config) { c.Base, _ = pgxpool.ParseConfig("pool_max_conns=6") })
			ctx := context.Background()
			if err := p.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			const workers = 6
			var queries, failed, finished atomic.Int64
			var doneSince [workers]atomic.Int64 // per worker: rotations finished before its last completed query started
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						gen := finished.Load()
						qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
						_, err := p.Exec(qctx, "SELECT 1")
						cancel()
						doneSince[w].Store(gen)
						queries.Add(1)
						if err != nil {
							if failed.Add(1) <= 3 {
								t.Errorf("query failed: %v", err)
							}
						}
					}
				}()
			}
			wg.Add(1)
			go func() { // every connection reconnects, over and over
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					case <-time.After(2 * time.Millisecond):
						p.Reset()
					}
				}
			}()
			cur := e.currentVersion(t)
			for i := range rotations(t) {
				cur = e.rotate(t, cur, users[(i+1)%len(users)])
				n := finished.Add(1)
				time.Sleep(100 * time.Millisecond)
				for w := range workers { // no call spans two rotations
					for doneSince[w].Load() < n {
						time.Sleep(time.Millisecond)
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
			close(stop)
			wg.Wait()
			st := p.Stats()
			t.Logf("%s: %d queries, %d failed; %d retries, %d with AWSPENDING; %d Secrets Manager reads",
				mode, queries.Load(), failed.Load(), st.AuthRetries, st.PendingUsed, e.sm.Calls("GetSecretValue"))
			if failed.Load() != 0 {
				t.Fatalf("%d of %d application queries failed", failed.Load(), queries.Load())
			}
		})
	}
}
