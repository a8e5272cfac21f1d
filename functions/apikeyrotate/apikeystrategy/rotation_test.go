package apikeystrategy_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotation-suite/rotation/functions/apikeyrotate/apikeystrategy"
	"github.com/rotation-suite/rotation/internal/crashtest"
	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestAfterARotationBothKeysVerifyAndAfterTheOverlapOnlyTheNewOne(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ctx := context.Background()
	f.rotate(t)
	finished := f.clock.Now()

	cur, prev := f.caller(t, "AWSCURRENT"), f.caller(t, "AWSPREVIOUS")
	if prev.KeyID != f.initial.KeyID || prev.Key.Reveal() != f.initial.Key.Reveal() {
		t.Fatal("AWSPREVIOUS does not hold the previous key")
	}
	if cur.KeyID == prev.KeyID || !strings.HasPrefix(cur.Key.Reveal(), "sk_") {
		t.Fatalf("AWSCURRENT does not hold a new key: %v", cur.Key)
	}
	if !cur.CreatedAt.Equal(finished.Truncate(time.Second)) || !cur.ExpiresAt.Equal(cur.CreatedAt.Add(f.cfg.MaxAge)) {
		t.Fatalf("createdAt/expiresAt: %s %s", cur.CreatedAt, cur.ExpiresAt)
	}
	v := f.verifier(t)
	for _, c := range []*apikey.CallerSecret{cur, prev} {
		if err := verifyCaller(ctx, v, c, f.clock.Now()); err != nil {
			t.Fatalf("key %s does not verify right after the rotation: %v", c.KeyID, err)
		}
	}
	// The previous key's record is retiring until finish + overlap.
	doc := f.currentVerifierDoc(t)
	r := doc.Find(prev.KeyID)
	if r.Status != apikey.StatusRetiring || !r.NotAfter.Equal(finished.Add(f.cfg.Overlap)) {
		t.Fatalf("previous record: status %s notAfter %s, want retiring until %s", r.Status, r.NotAfter, finished.Add(f.cfg.Overlap))
	}

	f.clock.Add(f.cfg.Overlap - time.Second)
	if err := verifyCaller(ctx, v, prev, f.clock.Now()); err != nil {
		t.Fatalf("previous key refused one second before the overlap ends: %v", err)
	}
	f.clock.Add(time.Second)
	if _, err := v.Verify(ctx, prev.Key.Reveal()); !errors.Is(err, apikey.ErrExpired) {
		t.Fatalf("previous key after the overlap: got %v, want ErrExpired", err)
	}
	if err := verifyCaller(ctx, v, cur, f.clock.Now()); err != nil {
		t.Fatalf("current key after the overlap: %v", err)
	}
	// The test endpoint (a real service using the middleware) saw the new key.
	if f.svc.calls.Load() == 0 {
		t.Fatal("the test endpoint was never called")
	}
}

func (f *fixture) currentVerifierDoc(t testing.TB) *apikey.VerifierDoc {
	t.Helper()
	raw, err := apikey.ReadSecret(context.Background(), f.sm, f.verifierID)
	if err != nil {
		t.Fatal(err)
	}
	d, err := apikey.ParseVerifier(raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestAKeyFromTwoRotationsAgoVerifiesUntilItsNotAfter: a scheduled rotation
// and an operator's "rotate now" an hour apart, well within the 24 h
// overlap. A caller that cached the first key for its cache TTL is promised
// the key until its notAfter (the first promotion + overlap); the second
// rotation must not revoke it, and it fails only when that notAfter comes.
func TestAKeyFromTwoRotationsAgoVerifiesUntilItsNotAfter(t *testing.T) {
	for _, kind := range []string{apikey.KindAPIKey, apikey.KindWebhook} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{kind: kind})
			ctx := context.Background()
			f.rotate(t)
			promised := f.currentVerifierDoc(t).Find(f.initial.KeyID).NotAfter
			k1 := f.caller(t, "AWSCURRENT")
			f.clock.Add(time.Hour)
			f.rotate(t)
			k2 := f.caller(t, "AWSCURRENT")
			if p := f.caller(t, "AWSPREVIOUS"); p.KeyID != k1.KeyID {
				t.Fatal("AWSPREVIOUS is not the key of the previous rotation")
			}
			doc := f.currentVerifierDoc(t)
			if r := doc.Find(f.initial.KeyID); r == nil || r.Status != apikey.StatusRetiring || !r.NotAfter.Equal(promised) {
				t.Fatalf("the key from two rotations ago: %+v, want retiring until %s as promised", r, promised)
			}
			v := f.verifier(t)
			for _, c := range []*apikey.CallerSecret{f.initial, k1, k2} {
				if err := verifyCaller(ctx, v, c, f.clock.Now()); err != nil {
					t.Fatalf("key %s within its overlap: %v", c.KeyID, err)
				}
			}
			f.clock.Add(promised.Sub(f.clock.Now()) - time.Second)
			if err := verifyCaller(ctx, v, f.initial, f.clock.Now()); err != nil {
				t.Fatalf("the key from two rotations ago, a second before its notAfter: %v", err)
			}
			f.clock.Add(time.Second)
			if err := verifyCaller(ctx, v, f.initial, f.clock.Now()); err == nil {
				t.Fatal("the key from two rotations ago verifies after its notAfter")
			}
			for _, c := range []*apikey.CallerSecret{k1, k2} {
				if err := verifyCaller(ctx, v, c, f.clock.Now()); err != nil {
					t.Fatalf("key %s: %v", c.KeyID, err)
				}
			}
			// The next rotation after that notAfter revokes it (a webhook
			// key's material goes with it).
			f.rotate(t)
			r := f.currentVerifierDoc(t).Find(f.initial.KeyID)
			if kind == apikey.KindWebhook && r != nil || kind == apikey.KindAPIKey && (r == nil || r.Status != apikey.StatusRevoked) {
				t.Fatalf("the key whose notAfter passed, after the next rotation: %+v", r)
			}
		})
	}
}

// TestAFifthRetiringKeyIsRefusedWithoutRevokingAnyAndTheRetryGoesAheadLater:
// five rotations an hour apart. The fifth would leave five keys in their
// overlap; its setSecret is refused as retryable with nothing written, every
// key keeps verifying, and the service's retry of that same rotation goes
// ahead once the earliest overlap has ended.
func TestAFifthRetiringKeyIsRefusedWithoutRevokingAnyAndTheRetryGoesAheadLater(t *testing.T) {
	f := newFixture(t, fixtureOpts{noRegister: true, noTestURL: true})
	ctx := context.Background()
	keys := []*apikey.CallerSecret{f.initial}
	for range 4 {
		f.rotate(t)
		keys = append(keys, f.caller(t, "AWSCURRENT"))
		f.clock.Add(time.Hour)
	}
	before := f.verifierVersions(t)
	f.driver.Attempts = 1
	res, err := f.driver.Rotate(ctx, f.callerID, "")
	if err == nil || rotation.ClassOf(err) != rotation.ClassState || !strings.Contains(err.Error(), apikeystrategy.EmergencyRevokeTag) {
		t.Fatalf("a rotation past the retiring limit: %v, want a state error naming the way out", err)
	}
	if got := f.verifierVersions(t); len(got) != len(before) {
		t.Fatalf("the refused setSecret wrote the verifier secret (%d versions, was %d)", len(got), len(before))
	}
	v := f.verifier(t)
	for _, c := range keys {
		if err := verifyCaller(ctx, v, c, f.clock.Now()); err != nil {
			t.Fatalf("key %s after the refusal: %v", c.KeyID, err)
		}
	}
	// The service retries the same rotation after the first key's overlap.
	first := f.currentVerifierDoc(t).Find(f.initial.KeyID).NotAfter
	f.clock.Add(first.Sub(f.clock.Now()))
	if _, err := f.driver.Resume(ctx, f.callerID, res.Token); err != nil {
		t.Fatalf("the retry after the earliest overlap ended: %v", err)
	}
	if cur := f.caller(t, "AWSCURRENT"); cur.KeyID == keys[4].KeyID {
		t.Fatal("the retried rotation did not promote a new key")
	}
	for _, c := range keys[1:] {
		if err := verifyCaller(ctx, v, c, f.clock.Now()); err != nil {
			t.Fatalf("key %s in its overlap after the retried rotation: %v", c.KeyID, err)
		}
	}
}

// TestTheEmergencyRevokeTagRevokesThePredecessorsAtOnce: the operator tags
// the caller secret with the time a leak was found and rotates; the keys
// issued before it stop verifying (the one being replaced right after the
// promotion), the new key works, the notification says so, and the tag left
// in place changes nothing for later rotations.
func TestTheEmergencyRevokeTagRevokesThePredecessorsAtOnce(t *testing.T) {
	f := newFixture(t, fixtureOpts{noRegister: true})
	ctx := context.Background()
	f.rotate(t)
	k1 := f.caller(t, "AWSCURRENT")
	f.clock.Add(time.Hour)
	leak := f.clock.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	if _, err := f.sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(f.callerID), Tags: []types.Tag{{Key: aws.String(apikeystrategy.EmergencyRevokeTag), Value: aws.String(leak)}}}); err != nil {
		t.Fatal(err)
	}
	f.rotate(t)
	k2 := f.caller(t, "AWSCURRENT")
	v := f.verifier(t)
	for _, c := range []*apikey.CallerSecret{f.initial, k1} {
		if _, err := v.Verify(ctx, c.Key.Reveal()); !errors.Is(err, apikey.ErrRevoked) {
			t.Fatalf("key %s issued before the leak: %v, want ErrRevoked", c.KeyID, err)
		}
	}
	if err := verifyCaller(ctx, v, k2, f.clock.Now()); err != nil {
		t.Fatalf("the new key: %v", err)
	}
	warned := false
	for _, n := range f.notifications() {
		if strings.Contains(mustJSON(n), "EMERGENCY REVOCATION") {
			warned = true
		}
	}
	if !warned {
		t.Fatal("no notification names the emergency revocation")
	}
	// The tag stays; the next rotation is ordinary: k2 retires with its overlap.
	f.clock.Add(time.Hour)
	f.rotate(t)
	if r := f.currentVerifierDoc(t).Find(k2.KeyID); r == nil || r.Status != apikey.StatusRetiring {
		t.Fatalf("a later rotation with the tag still set revoked the key issued after it: %+v", r)
	}
	if err := verifyCaller(ctx, v, k2, f.clock.Now()); err != nil {
		t.Fatalf("key %s in its overlap: %v", k2.KeyID, err)
	}
}

func TestATypoFailsTheChecksumBeforeAnyLookup(t *testing.T) {
	f := newFixture(t, fixtureOpts{noRegister: true, noTestURL: true})
	ctx := context.Background()
	src := &countingSource{SecretSource: f.sm}
	v, err := apikey.NewVerifier(ctx, apikey.VerifierConfig{Source: src, SecretID: f.verifierID, PepperSecretID: f.pepperID, Now: f.clock.Now, MissRefresh: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte(f.initial.Key.Reveal())
	i := len(key) - apikey.ChecksumLen - 3
	if key[i] == 'x' {
		key[i] = 'y'
	} else {
		key[i] = 'x'
	}
	before := src.n.Load()
	f.clock.Add(time.Minute)
	if _, err := v.Verify(ctx, string(key)); !errors.Is(err, apikey.ErrChecksum) {
		t.Fatalf("typo: got %v, want ErrChecksum", err)
	}
	if src.n.Load() != before {
		t.Fatal("a typo caused a lookup (a reload of the verifier secret)")
	}
	// An unknown but well-formed key does look (reload on miss): the
	// counter would have seen it.
	other, _ := apikey.GenerateKey("sk")
	if _, err := v.Verify(ctx, other.Reveal()); !errors.Is(err, apikey.ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
	if src.n.Load() == before {
		t.Fatal("the counting source does not see lookups; the typo check above proves nothing")
	}
}

func TestRegistrationHappensOncePerRotationEvenWhenSetSecretIsRetried(t *testing.T) {
	cases := []struct {
		name  string
		fault func(op string, ph rotation.Phase) bool
		lost  int32 // registry answers 503 after storing this many times
	}{
		{name: "crash after the registration call returned", fault: func(op string, ph rotation.Phase) bool { return op == "http:register" && ph == rotation.After }},
		{name: "crash before the registration call", fault: func(op string, ph rotation.Phase) bool { return op == "http:register" && ph == rotation.Before }},
		{name: "answer lost after the endpoint stored it", lost: 1},
		{name: "crash in testSecret after registering", fault: func(op string, ph rotation.Phase) bool { return op == "http:test" && ph == rotation.Before }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{})
			f.reg.failNext.Store(tc.lost)
			fired := false
			if tc.fault != nil {
				f.driver.Wrap = func(ctx context.Context, attempt int, _ rotation.Step) context.Context {
					if attempt > 1 {
						return ctx
					}
					return rotation.WithFaultHook(ctx, func(op string, ph rotation.Phase) error {
						if !fired && tc.fault(op, ph) {
							fired = true
							return crashtest.ErrInjected
						}
						return nil
					})
				}
			}
			before := len(f.verifierVersions(t))
			res := f.rotate(t)
			if res.Attempts != 2 {
				t.Fatalf("want the rotation to need a second attempt, took %d", res.Attempts)
			}
			regs, reqs := f.reg.counts()
			if regs != 1 {
				t.Fatalf("%d registrations for one rotation (%d requests)", regs, reqs)
			}
			if tc.name != "crash before the registration call" && reqs < 2 {
				t.Fatalf("the retry did not call the endpoint again (%d requests): the test proves nothing", reqs)
			}
			got := f.reg.registered(t)
			cur := f.caller(t, "AWSCURRENT")
			if len(got) != 1 || got[0].KeyID != cur.KeyID || got[0].Secret.Reveal() != "" || len(got[0].Hash) != 32 {
				t.Fatalf("registered %+v, want the new key's hash record", got)
			}
			// setSecret and the finish hook wrote one verifier version each.
			if n := len(f.verifierVersions(t)) - before; n != 2 {
				t.Fatalf("the rotation created %d verifier versions, want 2", n)
			}
		})
	}
}

type countingSource struct {
	apikey.SecretSource
	n atomicInt
}

func TestEveryCrashPointConvergesAndTheCurrentKeyAlwaysWorks(t *testing.T) {
	if testing.Short() {
		t.Skip("crash-point run is long")
	}
	for _, kind := range []string{apikey.KindAPIKey, apikey.KindWebhook} {
		t.Run(kind, func(t *testing.T) {
			s := newStack(t)
			var cur *fixture
			crashtest.Run(t, crashtest.Harness{
				Setup: func(t *testing.T) (string, *driver.Driver) {
					f := newFixture(t, fixtureOpts{kind: kind})
					cur = f
					t.Cleanup(func() {
						if regs, reqs := f.reg.counts(); regs != 1 {
							t.Errorf("%d registrations (%d requests), want exactly 1", regs, reqs)
						}
					})
					return f.callerID, f.driver
				},
				SM:    s.sm,
				Check: func(ctx context.Context, _ string, value []byte) error { return cur.check(ctx, value) },
				During: func(ctx context.Context, t *testing.T, _ string, _ []byte) {
					v, _ := cur.initial.Encode()
					if err := cur.check(ctx, v); err != nil {
						t.Fatalf("the key that was current before the rotation stopped working mid-rotation: %v", err)
					}
				},
				Ops: []string{"secretsmanager:", "http:"},
			})
		})
	}
}

// TestEveryCrashPointOfASecondRotationWithinTheOverlapKeepsTheKeyFromTwoRotationsAgo:
// the second of two rotations an hour apart, crashed at every call and
// retried, never revokes the first rotation's previous key, which is still in
// its overlap: it verifies mid-rotation and after the rotation converged.
func TestEveryCrashPointOfASecondRotationWithinTheOverlapKeepsTheKeyFromTwoRotationsAgo(t *testing.T) {
	if testing.Short() {
		t.Skip("crash-point run is long")
	}
	for _, kind := range []string{apikey.KindAPIKey, apikey.KindWebhook} {
		t.Run(kind, func(t *testing.T) {
			s := newStack(t)
			var cur *fixture
			crashtest.Run(t, crashtest.Harness{
				Setup: func(t *testing.T) (string, *driver.Driver) {
					f := newFixture(t, fixtureOpts{kind: kind, noRegister: true, noTestURL: true})
					cur = f
					f.rotate(t)
					f.clock.Add(time.Hour)
					t.Cleanup(func() {
						v, _ := f.initial.Encode()
						if err := f.check(context.Background(), v); err != nil {
							t.Errorf("the key from two rotations ago, in its overlap, after the rotation converged: %v", err)
						}
					})
					return f.callerID, f.driver
				},
				SM:    s.sm,
				Check: func(ctx context.Context, _ string, value []byte) error { return cur.check(ctx, value) },
				During: func(ctx context.Context, t *testing.T, _ string, _ []byte) {
					v, _ := cur.initial.Encode()
					if err := cur.check(ctx, v); err != nil {
						t.Fatalf("the key from two rotations ago stopped working mid-rotation, inside its overlap: %v", err)
					}
				},
				Ops: []string{"secretsmanager:"},
			})
		})
	}
}

func TestNoPlaintextKeyReachesTheVerifierSecretLogsOrNotifications(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ctx := context.Background()
	// One failing attempt (the test endpoint refuses) so error paths log and notify too.
	f.driver.Wrap = func(ctx context.Context, attempt int, _ rotation.Step) context.Context {
		if attempt > 1 {
			return ctx
		}
		return rotation.WithFaultHook(ctx, func(op string, ph rotation.Phase) error {
			if op == "http:test" && ph == rotation.After {
				return errors.New("endpoint said: bad key " + f.caller(t, "AWSPENDING").Key.Reveal())
			}
			return nil
		})
	}
	f.rotate(t)
	f.driver.Wrap = nil
	f.clock.Add(time.Hour)
	f.rotate(t)
	keys := []*apikey.CallerSecret{f.initial, f.caller(t, "AWSPREVIOUS"), f.caller(t, "AWSCURRENT")}
	var failures int
	for _, n := range f.notifications() {
		if n.Outcome == "failure" {
			failures++
		}
	}
	if failures == 0 {
		t.Fatal("no failure notification: the error path was not exercised")
	}
	haystacks := map[string]string{"logs": f.logs.String(), "notifications": mustJSON(f.notifications())}
	for id, v := range f.verifierVersions(t) {
		haystacks["verifier version "+id] = v
	}
	for where, text := range haystacks {
		for _, k := range keys {
			body := k.Key.Reveal()[len(k.Key.Reveal())-apikey.ChecksumLen-apikey.BodyLen:]
			if strings.Contains(text, body) {
				t.Fatalf("the plaintext key %s appears in the %s", k.KeyID, where)
			}
		}
	}
	if !strings.Contains(haystacks["logs"], "[REDACTED]") {
		t.Fatal("the injected error text was not redacted in the logs (or never logged)")
	}
	_ = ctx
}

func TestMalformedSecretsFailTheRotationAsInputErrorsWithoutEchoingThem(t *testing.T) {
	ctx := context.Background()
	cases := map[string]func(f *fixture) (secretID, value string){
		"caller secret is not JSON": func(f *fixture) (string, string) {
			return f.callerID, "sk_not-json " + f.initial.Key.Reveal()
		},
		"caller secret has a bad checksum": func(f *fixture) (string, string) {
			k := f.initial.Key.Reveal()
			c := *f.initial
			c.Key = apikey.NewKey(k[:len(k)-1] + flip(k[len(k)-1]))
			b, _ := (&fakeCaller{c}).encode()
			return f.callerID, b
		},
		"verifier secret is not JSON": func(f *fixture) (string, string) {
			return f.verifierID, "{not json"
		},
		"verifier secret holds a plaintext key": func(f *fixture) (string, string) {
			return f.verifierID, `{"schemaVersion":1,"kind":"apikey","keys":[{"keyId":"` + f.initial.KeyID + `","prefix":"sk","alg":"sha256","hash":"x","secret":"` + f.initial.Key.Reveal() + `","status":"active","notBefore":"2026-01-01T00:00:00Z"}]}`
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{noRegister: true, noTestURL: true})
			id, val := mk(f)
			if _, err := f.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(val)}); err != nil {
				t.Fatal(err)
			}
			f.driver.Attempts = 1
			_, err := f.driver.Rotate(ctx, f.callerID, "")
			if err == nil {
				t.Fatal("rotation succeeded over a malformed secret")
			}
			if c := rotation.ClassOf(err); c != rotation.ClassInput {
				t.Fatalf("class %s, want input: %v", c, err)
			}
			body := f.initial.Key.Reveal()[3+apikey.KeyIDLen+1:]
			if strings.Contains(err.Error(), body[:20]) || strings.Contains(f.logs.String(), body[:20]) {
				t.Fatalf("the secret's content leaked into the error or logs: %v", err)
			}
		})
	}
}

func flip(b byte) string {
	if b == 'a' {
		return "b"
	}
	return "a"
}

func TestTheMiddlewareRefusesBadKeys(t *testing.T) {
	f := newFixture(t, fixtureOpts{noRegister: true})
	f.rotate(t)
	f.clock.Add(f.cfg.Overlap + time.Hour)
	f.rotate(t) // the initial key's overlap ended before this rotation: revoked
	cur := f.caller(t, "AWSCURRENT")
	prev := f.caller(t, "AWSPREVIOUS")
	k := cur.Key.Reveal()
	other, _ := apikey.GenerateKey("pk")
	cases := map[string]struct {
		key     string
		advance time.Duration
		want    int
	}{
		"current key":                {key: k, want: 204},
		"previous key in overlap":    {key: prev.Key.Reveal(), want: 204},
		"revoked key":                {key: f.initial.Key.Reveal(), want: 401},
		"bad checksum":               {key: k[:len(k)-1] + flip(k[len(k)-1]), want: 401},
		"wrong prefix":               {key: other.Reveal(), want: 401},
		"oversized":                  {key: strings.Repeat("A", 8<<10), want: 401},
		"no key":                     {key: "", want: 401},
		"previous key after overlap": {key: prev.Key.Reveal(), advance: 25 * time.Hour, want: 401},
		"current key after expiry":   {key: k, advance: 91 * 24 * time.Hour, want: 401},
	}
	order := []string{"current key", "previous key in overlap", "revoked key", "bad checksum", "wrong prefix", "oversized", "no key", "previous key after overlap", "current key after expiry"}
	client := f.svc.srv.Client()
	for _, name := range order {
		tc := cases[name]
		f.clock.Add(tc.advance)
		req, _ := newGet(f.svc.srv.URL+"/x", tc.key)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: HTTP %d, want %d", name, resp.StatusCode, tc.want)
		}
	}
}

func TestWebhookKeysSignaturesByEitherKeyVerifyDuringTheOverlap(t *testing.T) {
	f := newFixture(t, fixtureOpts{kind: apikey.KindWebhook})
	ctx := context.Background()
	f.rotate(t)
	cur, prev := f.caller(t, "AWSCURRENT"), f.caller(t, "AWSPREVIOUS")
	if !strings.HasPrefix(cur.Key.Reveal(), "whsec_") {
		t.Fatalf("webhook key prefix: %v", cur.Key)
	}
	v := f.verifier(t)
	body := []byte(`{"type":"invoice.paid"}`)
	for _, c := range []*apikey.CallerSecret{cur, prev} {
		id, err := v.VerifySignature(ctx, apikey.SignWebhook(c.Key, f.clock.Now(), body), body)
		if err != nil || id != c.KeyID {
			t.Fatalf("signature by %s: %q %v", c.KeyID, id, err)
		}
	}
	// The webhook verifier must hold key material (documented); the
	// previous key's record is retiring.
	doc := f.currentVerifierDoc(t)
	if r := doc.Find(prev.KeyID); r == nil || r.Status != apikey.StatusRetiring || r.Secret.IsZero() {
		t.Fatalf("previous webhook record: %+v", r)
	}
	f.clock.Add(f.cfg.Overlap)
	if _, err := v.VerifySignature(ctx, apikey.SignWebhook(prev.Key, f.clock.Now(), body), body); !errors.Is(err, apikey.ErrBadSignature) {
		t.Fatalf("previous key after the overlap: %v", err)
	}
	f.rotate(t)
	// A revoked webhook key's material is dropped from the verifier secret.
	doc = f.currentVerifierDoc(t)
	raw, _ := doc.Encode()
	if strings.Contains(string(raw), prev.Key.Reveal()) || doc.Find(prev.KeyID) != nil {
		t.Fatal("the verifier secret still holds the revoked webhook key")
	}
}

func TestCallersSharingAVerifierSecretRotateWithoutTouchingEachOther(t *testing.T) {
	a := newFixture(t, fixtureOpts{noRegister: true, noTestURL: true})
	b := newFixture(t, fixtureOpts{noRegister: true, noTestURL: true, shareWith: a})
	ctx := context.Background()
	a.rotate(t)
	a.clock.Add(a.cfg.Overlap + time.Hour)
	a.rotate(t) // A's initial key's overlap has ended: now revoked; B's must not be
	b.rotate(t)
	v := a.verifier(t)
	if _, err := v.Verify(ctx, a.initial.Key.Reveal()); !errors.Is(err, apikey.ErrRevoked) {
		t.Fatalf("A's key from two rotations ago, after its overlap: %v", err)
	}
	for _, c := range []*apikey.CallerSecret{a.caller(t, "AWSCURRENT"), a.caller(t, "AWSPREVIOUS"), b.initial, b.caller(t, "AWSCURRENT")} {
		if err := verifyCaller(ctx, v, c, a.clock.Now()); err != nil {
			t.Fatalf("key %s: %v", c.KeyID, err)
		}
	}
}

// TestTwoRotationsRacingOnASharedVerifierSecretKeepBothRecords: caller B's
// whole rotation runs between caller A's read of the shared verifier secret
// and A's write. A's conditional write is refused, A reads again and merges,
// so every key of both callers keeps verifying.
func TestTwoRotationsRacingOnASharedVerifierSecretKeepBothRecords(t *testing.T) {
	a := newFixture(t, fixtureOpts{noRegister: true, noTestURL: true})
	b := newFixture(t, fixtureOpts{noRegister: true, noTestURL: true, shareWith: a})
	ctx := context.Background()
	raced := false
	a.driver.Wrap = func(ctx context.Context, attempt int, step rotation.Step) context.Context {
		if step != rotation.StepSet {
			return ctx
		}
		return rotation.WithFaultHook(ctx, func(op string, ph rotation.Phase) error {
			if op == "secretsmanager:PutSecretValue" && ph == rotation.Before && !raced {
				raced = true
				b.rotate(t) // reads and writes the verifier secret A has just read
			}
			return nil
		})
	}
	res := a.rotate(t)
	if !raced {
		t.Fatal("setup: the race did not happen")
	}
	if res.Attempts != 1 {
		t.Fatalf("the lost race should be handled inside setSecret, took %d attempts", res.Attempts)
	}
	v := a.verifier(t)
	for _, c := range []*apikey.CallerSecret{a.caller(t, "AWSCURRENT"), a.initial, b.caller(t, "AWSCURRENT"), b.initial} {
		if err := verifyCaller(ctx, v, c, a.clock.Now()); err != nil {
			t.Fatalf("key %s: %v", c.KeyID, err)
		}
	}
}

func TestAConcurrentWriterThatDropsTheNewRecordMakesTheRotationRetryAndConverge(t *testing.T) {
	f := newFixture(t, fixtureOpts{noRegister: true})
	ctx := context.Background()
	stale, err := apikey.ReadSecret(ctx, f.sm, f.verifierID)
	if err != nil {
		t.Fatal(err)
	}
	f.driver.Wrap = func(ctx context.Context, attempt int, step rotation.Step) context.Context {
		if attempt == 1 && step == rotation.StepTest {
			// A writer that does not compare (an operator's tool, an old
			// version of this function), working from a version read before
			// this setSecret, writes over it. It moves AWSCURRENT with
			// UpdateSecretVersionStage: after such a move moto's plain
			// PutSecretValue leaves AWSCURRENT on two versions.
			d, err := f.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(f.verifierID)})
			if err != nil {
				t.Error(err)
				return ctx
			}
			holder := ""
			for id, st := range d.VersionIdsToStages {
				if slices.Contains(st, rotation.StageCurrent) {
					holder = id
				}
			}
			const over = "0ee0ee00-0000-4000-8000-00000000000e"
			if _, err := f.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(f.verifierID), ClientRequestToken: aws.String(over), SecretString: aws.String(string(stale)), VersionStages: []string{"OVERWRITE"}}); err != nil {
				t.Error(err)
			}
			if _, err := f.sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(f.verifierID), VersionStage: aws.String(rotation.StageCurrent), MoveToVersionId: aws.String(over), RemoveFromVersionId: aws.String(holder)}); err != nil {
				t.Error(err)
			}
		}
		return ctx
	}
	res := f.rotate(t)
	if res.Attempts != 2 {
		t.Fatalf("want testSecret to catch the lost record and the retry to converge; attempts %d", res.Attempts)
	}
	v := f.verifier(t)
	for _, c := range []*apikey.CallerSecret{f.caller(t, "AWSCURRENT"), f.initial} {
		if err := verifyCaller(ctx, v, c, f.clock.Now()); err != nil {
			t.Fatalf("key %s: %v", c.KeyID, err)
		}
	}
}
