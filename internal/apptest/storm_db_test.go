package apptest

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/internal/wirecount"
	"github.com/rotation-suite/rotation/pkg/pgpool"
	"github.com/rotation-suite/rotation/pkg/secretcache"
)

// scramVerifier is what PostgreSQL stores for password, so that the test's
// passwords stay out of the server's statement log.
func scramVerifier(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	salted, _ := pbkdf2.Key(sha256.New, password, salt, 4096, 32)
	mac := func(k []byte, s string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(s)); return h.Sum(nil) }
	stored := sha256.Sum256(mac(salted, "Client Key"))
	b := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$4096:%s$%s:%s", b(salt), b(stored[:]), b(mac(salted, "Server Key")))
}

// TestAStormOfRefusedDatabaseLoginsMakesAHandfulOfSecretsManagerReads: the
// database password changed behind the secret's back, and 400 requests at
// once find every login refused. pgpool heals each refusal with reads that
// started after it, rate-limited to one per interval per stage: the storm
// costs a handful of Secrets Manager reads on the wire, not one per login.
func TestAStormOfRefusedDatabaseLoginsMakesAHandfulOfSecretsManagerReads(t *testing.T) {
	s := newStack(t)
	pg := testenv.SharedPostgres(t)
	ctx := context.Background()
	b := make([]byte, 4)
	rand.Read(b)
	role := "storm_" + hex.EncodeToString(b)
	admin, err := pg.AdminConn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE ROLE %s WITH LOGIN PASSWORD '%s'", pgx.Identifier{role}.Sanitize(), scramVerifier(hex.EncodeToString(b)+"-changed"))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize()) })
	val, _ := json.Marshal(map[string]any{"engine": "postgres", "host": "127.0.0.1", "port": pg.Port, "username": role, "password": "not-the-password", "dbname": "postgres"})
	arn := s.secret(t, string(val))
	cache, err := secretcache.New(secretcache.Config{Client: s.sm}) // MinRefreshInterval 1 s
	if err != nil {
		t.Fatal(err)
	}
	base, _ := pgxpool.ParseConfig("pool_max_conns=8")
	p, err := pgpool.New(ctx, pgpool.Config{Cache: cache, SecretID: arn, Base: base, CABundlePEM: pg.CACertPEM})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := cache.Get(ctx, arn); err != nil {
		t.Fatal(err)
	}
	s.wire.Take()
	const logins = 400
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for range logins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := p.Ping(rctx); pgpool.IsAuthFailure(err) {
				mu.Lock()
				refused++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	counts := s.wire.Take()
	reads := wirecount.SumPrefix(counts, "secretsmanager:GetSecretValue")
	t.Logf("%d requests, %d refused logins reported in %v: %d Secrets Manager reads on the wire (%v); pool stats %+v",
		logins, refused, elapsed.Round(time.Millisecond), reads, counts, p.Stats())
	if refused != logins {
		t.Fatalf("%d of %d requests were refused; every login must be (the password is wrong everywhere)", refused, logins)
	}
	// AWSCURRENT and AWSPENDING (absent: one failed read each time) at most once per second each.
	if limit := 2 * (int(elapsed/time.Second) + 2); reads > limit {
		t.Fatalf("%d reads for %d refused logins in %v, want at most %d", reads, logins, elapsed, limit)
	}
}
