package apikey

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// memSource serves secret values from memory and counts reads; fail makes reads fail.
type memSource struct {
	mu    sync.Mutex
	vals  map[string]string
	reads int
	fail  bool
}

func (m *memSource) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.fail {
		return nil, errors.New("service unavailable")
	}
	v, ok := m.vals[aws.ToString(in.SecretId)]
	if !ok {
		return nil, errors.New("not found")
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(v)}, nil
}

func (m *memSource) set(id, v string) { m.mu.Lock(); m.vals[id] = v; m.mu.Unlock() }
func (m *memSource) setFail(f bool)   { m.mu.Lock(); m.fail = f; m.mu.Unlock() }
func (m *memSource) count() int       { m.mu.Lock(); defer m.mu.Unlock(); return m.reads }

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func encodeDoc(t *testing.T, recs ...*CallerSecret) string {
	doc, _ := apiDoc(t, AlgHMACSHA256, pepper, recs...)
	b, err := doc.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAVerifierPicksUpAKeyIssuedAfterItsLastLoadOnFirstSight(t *testing.T) {
	clk := &fakeClock{t: t0}
	k1 := caller(t, KindAPIKey, "sk", t0)
	src := &memSource{vals: map[string]string{"v": encodeDoc(t, k1), "p": string(pepper)}}
	v, err := NewVerifier(context.Background(), VerifierConfig{Source: src, SecretID: "v", PepperSecretID: "p", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	k2 := caller(t, KindAPIKey, "sk", t0)
	src.set("v", encodeDoc(t, k1, k2))
	clk.Add(9 * time.Second)
	if _, err := v.Verify(context.Background(), k2.Key.Reveal()); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("within MissRefresh of the last load: %v (want no reload yet)", err)
	}
	clk.Add(2 * time.Second)
	if id, err := v.Verify(context.Background(), k2.Key.Reveal()); err != nil || id != k2.KeyID {
		t.Fatalf("new key after MissRefresh: %q %v", id, err)
	}
}

func TestAVerifierKeepsItsRecordsWhenReloadsFailAndDoesNotHammerTheSource(t *testing.T) {
	clk := &fakeClock{t: t0}
	k1 := caller(t, KindAPIKey, "sk", t0)
	src := &memSource{vals: map[string]string{"v": encodeDoc(t, k1), "p": string(pepper)}}
	v, err := NewVerifier(context.Background(), VerifierConfig{Source: src, SecretID: "v", PepperSecretID: "p", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	src.setFail(true)
	clk.Add(10 * time.Minute) // past the TTL, within MaxStale: served while re-read
	for i := 0; i < 100; i++ {
		if _, err := v.Verify(context.Background(), k1.Key.Reveal()); err != nil {
			t.Fatalf("a failed reload dropped the records: %v", err)
		}
	}
	waitFor(t, "the failed reload is reported", func() bool { return v.LastError() != nil })
	if n := src.count(); n > 4 {
		t.Fatalf("%d reads of a failing source for 100 requests within the back-off", n)
	}
	src.setFail(false)
	clk.Add(11 * time.Second)
	if _, err := v.Verify(context.Background(), k1.Key.Reveal()); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	waitFor(t, "the recovery is reported", func() bool { return v.LastError() == nil })
	// Past MaxStale (3 × Refresh) with a failing source, the records are no
	// longer used: the Verifier fails closed.
	src.setFail(true)
	clk.Add(16 * time.Minute)
	if _, err := v.Verify(context.Background(), k1.Key.Reveal()); !errors.Is(err, ErrNoKeyring) {
		t.Fatalf("records past MaxStale: %v, want ErrNoKeyring", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}

func TestCredentialsRefreshRereadsAfterARefusalAtMostOncePerInterval(t *testing.T) {
	clk := &fakeClock{t: t0}
	k1, k2 := caller(t, KindAPIKey, "sk", t0), caller(t, KindAPIKey, "sk", t0)
	b1, _ := k1.Encode()
	b2, _ := k2.Encode()
	src := &memSource{vals: map[string]string{"c": string(b1)}}
	c := &Credentials{Source: src, SecretID: "c", Now: clk.Now}
	if got, err := c.Current(context.Background()); err != nil || got.KeyID != k1.KeyID {
		t.Fatal(got, err)
	}
	src.set("c", string(b2))
	clk.Add(2 * time.Second)
	got, changed, err := c.Refresh(context.Background())
	if err != nil || !changed || got.KeyID != k2.KeyID {
		t.Fatalf("refresh after a refusal: %v %t %v", got, changed, err)
	}
	reads := src.count()
	for range 1000 {
		if _, changed, _ := c.Refresh(context.Background()); changed {
			t.Fatal("changed without a new version")
		}
	}
	if n := src.count() - reads; n != 0 {
		t.Fatalf("%d reads for 1000 refusals within the interval", n)
	}
}

func TestCredentialsRereadTheCallerSecretAfterTheTTLAndKeepTheOldOneOnFailure(t *testing.T) {
	clk := &fakeClock{t: t0}
	k1, k2 := caller(t, KindAPIKey, "sk", t0), caller(t, KindAPIKey, "sk", t0)
	b1, _ := k1.Encode()
	b2, _ := k2.Encode()
	src := &memSource{vals: map[string]string{"c": string(b1)}}
	c := &Credentials{Source: src, SecretID: "c", Now: clk.Now}
	got, err := c.Current(context.Background())
	if err != nil || got.KeyID != k1.KeyID {
		t.Fatal(got, err)
	}
	src.set("c", string(b2))
	clk.Add(59 * time.Minute)
	if got, _ := c.Current(context.Background()); got.KeyID != k1.KeyID {
		t.Fatal("re-read before the TTL")
	}
	clk.Add(time.Minute)
	if got, _ := c.Current(context.Background()); got.KeyID != k2.KeyID {
		t.Fatal("not re-read after the TTL")
	}
	src.setFail(true)
	clk.Add(time.Hour)
	if got, err := c.Current(context.Background()); err != nil || got.KeyID != k2.KeyID || c.LastError() == nil {
		t.Fatalf("failure: %v %v", got, err)
	}
}
