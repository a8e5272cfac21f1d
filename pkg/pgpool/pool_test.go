package pgpool_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotation-suite/rotation/internal/smfake"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/pgpool"
)

func whoami(t *testing.T, p *pgpool.Pool) string {
	t.Helper()
	var user string
	var ssl bool
	err := p.QueryRow(context.Background(), "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&user, &ssl)
	if err != nil {
		t.Fatal(err)
	}
	if !ssl {
		t.Fatal("the connection is not encrypted")
	}
	return user
}

func TestConnectionsTakeTheSecretsCredentialsOverVerifiedTLS(t *testing.T) {
	e, _ := newEnv(t, time.Minute)
	p := e.pool(t)
	if u := whoami(t, p); u != e.role {
		t.Fatalf("connected as %s", u)
	}
}

func TestTheSecretsTLSFieldsAreHonouredAsDbrotateDoes(t *testing.T) {
	for _, c := range []struct {
		name    string
		extra   map[string]any
		plain   bool
		wantErr string
	}{
		{"a wrong sslservername fails verify-full", map[string]any{"sslservername": "db.example.com"}, false, "certificate"},
		{"verify-ca ignores the name", map[string]any{"sslmode": "verify-ca", "sslservername": "db.example.com"}, false, ""},
		{"sslmode=disable is refused without AllowPlaintext", map[string]any{"sslmode": "disable"}, false, "AllowPlaintext"},
		{"an unknown sslmode is refused", map[string]any{"sslmode": "prefer"}, false, "sslmode"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, pw := newEnv(t, time.Minute)
			e.put(t, e.value(pw, c.extra), "AWSCURRENT")
			p := e.pool(t, func(cfg *pgpool.Config) { cfg.AllowPlaintext = c.plain })
			err := p.Ping(context.Background())
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got %v, want an error about %s", err, c.wantErr)
			}
			if strings.Contains(err.Error(), pw) {
				t.Fatal("the password is in the error")
			}
		})
	}
}

// TestAPinnedCAIsTheOnlyTrustAnchor: with "sslrootcertonly", the secret's
// sslrootcertpem alone is trusted, as in dbrotate; Config.CABundlePEM (here
// the cluster's CA) no longer is.
func TestAPinnedCAIsTheOnlyTrustAnchor(t *testing.T) {
	other, err := testenv.NewCA("some other CA")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		pem     []byte
		wantErr bool
	}{{"the cluster's CA pinned", nil, false}, {"another CA pinned", other.CertPEM, true}} {
		t.Run(c.name, func(t *testing.T) {
			e, pw := newEnv(t, time.Minute)
			pem := c.pem
			if pem == nil {
				pem = e.pg.CACertPEM
			}
			e.put(t, e.value(pw, map[string]any{"sslrootcertpem": string(pem), "sslrootcertonly": true}), "AWSCURRENT")
			err := e.pool(t).Ping(context.Background())
			if c.wantErr != (err != nil) {
				t.Fatalf("got %v, want an error: %v", err, c.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("got %v, want a certificate error", err)
			}
		})
	}
}

func TestARefusedPasswordHealsWithOneForcedReadAndOneRetry(t *testing.T) {
	e, _ := newEnv(t, time.Hour) // the cache would keep the old value for an hour
	p := e.pool(t)
	if err := p.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	pw2 := randHex(16)
	e.setPassword(t, pw2)
	v2 := e.put(t, e.value(pw2, nil), "AWSCURRENT")
	p.Reset() // every new query needs a new connection
	if _, err := p.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Fatalf("the query after the rotation failed: %v", err)
	}
	if st := p.Stats(); st.AuthRetries != 1 || st.PendingUsed != 0 {
		t.Fatalf("stats %+v, want one retry", st)
	}
	if vs := p.ConnVersions(); vs[v2] != 1 || len(vs) != 1 {
		t.Fatalf("connections by version %v", vs)
	}
}

func TestInTheSingleUserWindowTheRetryUsesAWSPENDING(t *testing.T) {
	e, _ := newEnv(t, time.Hour)
	p := e.pool(t)
	if err := p.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	// setSecret has run (the role has the pending password), finishSecret not yet.
	pw2 := randHex(16)
	pending := e.put(t, e.value(pw2, nil), "AWSPENDING")
	e.setPassword(t, pw2)
	p.Reset()
	for range 3 {
		if _, err := p.Exec(context.Background(), "SELECT 1"); err != nil {
			t.Fatalf("a query in the single-user window failed: %v", err)
		}
	}
	if st := p.Stats(); st.AuthRetries != 1 || st.PendingUsed != 1 {
		t.Fatalf("stats %+v, want one retry on AWSPENDING, then AWSPENDING used directly", st)
	}
	if vs := p.ConnVersions(); vs[pending] == 0 {
		t.Fatalf("connections by version %v", vs)
	}
}

func TestAWrongPasswordEverywhereFailsAfterOneRetry(t *testing.T) {
	e, _ := newEnv(t, time.Hour)
	p := e.pool(t)
	e.setPassword(t, randHex(16)) // behind everyone's back
	err := p.Ping(context.Background())
	if !pgpool.IsAuthFailure(err) {
		t.Fatalf("got %v, want the 28P01 refusal", err)
	}
	if st := p.Stats(); st.AuthRetries != 0 {
		t.Fatalf("stats %+v: nothing new to retry with", st)
	}
}

func TestIdleConnectionsAreRecycledOnceTheCacheHasTheNewVersion(t *testing.T) {
	e, _ := newEnv(t, time.Hour)
	p := e.pool(t, func(c *pgpool.Config) {
		c.Base, _ = pgxpool.ParseConfig("pool_max_conns=4")
	})
	ctx := context.Background()
	var conns []*pgxpool.Conn
	for range 3 {
		c, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	busy := conns[2]
	for _, c := range conns[:2] {
		c.Release()
	}
	pw2 := randHex(16)
	e.setPassword(t, pw2) // alternating-style: old sessions stay open
	v2 := e.put(t, e.value(pw2, nil), "AWSCURRENT")
	e.cache.Invalidate(e.arn) // what the notification poller does
	eventually(t, "the idle connections of the old version are closed", func() bool {
		vs := p.ConnVersions()
		return len(vs) == 1+boolInt(vs[v2] == 0) && vs[v2] == 0 || (len(vs) == 1 && vs[v2] == 0)
	})
	busy.Release() // a busy one goes when released
	eventually(t, "no connection of the old version is left", func() bool {
		vs := p.ConnVersions()
		return len(vs) == 0 || (len(vs) == 1 && vs[v2] > 0)
	})
	if _, err := p.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if vs := p.ConnVersions(); len(vs) != 1 || vs[v2] == 0 {
		t.Fatalf("connections by version %v", vs)
	}
	if st := p.Stats(); st.Recycled < 1 || st.AuthRetries != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestARefusalHealsWhenFinishSecretRunsBetweenTheHealsReads(t *testing.T) {
	e, _ := newEnv(t, time.Hour)
	p := e.pool(t)
	ctx := context.Background()
	if err := p.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	old := e.currentVersion(t)
	// setSecret has run: the database has the pending password.
	pw2 := randHex(16)
	pending := e.put(t, e.value(pw2, nil), smfake.StagePending)
	e.setPassword(t, pw2)
	// finishSecret (and the service removing AWSPENDING) lands just as the
	// heal, having found AWSCURRENT refused, reads AWSPENDING.
	var once sync.Once
	e.sm.Intercept = func(_ context.Context, op string, in any) error {
		if g, ok := in.(*secretsmanager.GetSecretValueInput); ok && op == "GetSecretValue" && aws.ToString(g.VersionStage) == smfake.StagePending {
			once.Do(func() {
				if _, err := e.sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
					SecretId: aws.String(e.arn), VersionStage: aws.String("AWSCURRENT"),
					MoveToVersionId: aws.String(pending), RemoveFromVersionId: aws.String(old),
				}); err != nil {
					t.Error(err)
				}
				if err := e.sm.RemovePending(e.arn); err != nil {
					t.Error(err)
				}
			})
		}
		return nil
	}
	p.Reset()
	if _, err := p.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("the query failed: %v", err)
	}
	if vs := p.ConnVersions(); vs[pending] != 1 || len(vs) != 1 {
		t.Fatalf("connections by version %v, want the new AWSCURRENT %s", vs, pending)
	}
}
