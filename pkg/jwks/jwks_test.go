package jwks_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/envelope"
	"github.com/rotation-suite/rotation/pkg/jwks"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var b64 = base64.RawURLEncoding

func sha(s string) string { sum := sha256.Sum256([]byte(s)); return b64.EncodeToString(sum[:]) }

// ecLeadingZero generates P-256 keys until a coordinate has a leading zero
// byte (about one in 128 keys).
func ecLeadingZero(t testing.TB) *ecdsa.PrivateKey {
	for range 100000 {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pt, _ := k.PublicKey.Bytes() // 0x04 || X || Y
		if pt[1] == 0 || pt[33] == 0 {
			return k
		}
	}
	t.Fatal("no key with a leading zero coordinate byte")
	return nil
}

// TestKidIsTheRFC7638ThumbprintComputedByHand builds each key type's
// canonical JSON by hand from the raw key bytes (RFC 7638 §3.2: required
// members, lexicographic order, no whitespace; RFC 8037 for OKP) and
// compares its SHA-256 with the kid.
func TestKidIsTheRFC7638ThumbprintComputedByHand(t *testing.T) {
	ec := ecLeadingZero(t)
	pt, _ := ec.PublicKey.Bytes()
	ecCanon := fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, b64.EncodeToString(pt[1:33]), b64.EncodeToString(pt[33:]))

	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e := big.NewInt(int64(rk.E)).Bytes()
	rsaCanon := fmt.Sprintf(`{"e":"%s","kty":"RSA","n":"%s"}`, b64.EncodeToString(e), b64.EncodeToString(rk.N.Bytes()))

	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	edCanon := fmt.Sprintf(`{"crv":"Ed25519","kty":"OKP","x":"%s"}`, b64.EncodeToString(edPub))

	for _, tc := range []struct {
		alg   string
		pub   crypto.PublicKey
		canon string
	}{{jwks.ES256, &ec.PublicKey, ecCanon}, {jwks.RS256, &rk.PublicKey, rsaCanon}, {jwks.EdDSA, edPub, edCanon}} {
		jwk, kid, err := jwks.PublicJWK(tc.pub, tc.alg)
		if err != nil {
			t.Fatal(err)
		}
		if want := sha(tc.canon); kid != want {
			t.Fatalf("%s: kid %s, hand-computed RFC 7638 thumbprint %s", tc.alg, kid, want)
		}
		var m map[string]any
		_ = json.Unmarshal(jwk, &m)
		if m["kid"] != kid || m["alg"] != tc.alg || m["use"] != "sig" {
			t.Fatalf("%s: JWK members %v", tc.alg, m)
		}
	}
	// The RFC's own example (RFC 7638 §3.1).
	const n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	var rfc rsa.PublicKey
	nb, _ := b64.DecodeString(n)
	rfc.N, rfc.E = new(big.Int).SetBytes(nb), 65537
	if kid, err := jwks.Thumbprint(&rfc); err != nil || kid != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("RFC 7638 example: %s %v", kid, err)
	}
}

func TestECCoordinatesKeepTheirFull32BytesWithLeadingZeros(t *testing.T) {
	k := ecLeadingZero(t)
	jwk, _, err := jwks.PublicJWK(&k.PublicKey, jwks.ES256)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	_ = json.Unmarshal(jwk, &m)
	pt, _ := k.PublicKey.Bytes()
	for name, want := range map[string][]byte{"x": pt[1:33], "y": pt[33:]} {
		got, err := b64.DecodeString(m[name])
		if err != nil || len(got) != 32 || string(got) != string(want) {
			t.Fatalf("%s is %d bytes (%v), want the 32-byte coordinate", name, len(got), err)
		}
	}
	// And such a JWK parses back.
	if _, err := jwks.ParsePublicJWK(jwk); err != nil {
		t.Fatal(err)
	}
}

func TestES256SignaturesAreRawRAndSOf64Bytes(t *testing.T) {
	k := ecLeadingZero(t)
	for range 20 {
		s, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "x"}).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := b64.DecodeString(s[strings.LastIndexByte(s, '.')+1:])
		if len(sig) != 64 {
			t.Fatalf("signature of %d bytes; want raw R||S (64), not DER", len(sig))
		}
	}
}

func TestASetWithAnyPrivateMemberIsRejected(t *testing.T) {
	k := ecLeadingZero(t)
	jwk, _, _ := jwks.PublicJWK(&k.PublicKey, jwks.ES256)
	for _, member := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
		var m map[string]any
		_ = json.Unmarshal(jwk, &m)
		m[member] = "AAAA"
		raw, _ := json.Marshal(m)
		set, _ := json.Marshal(jwks.Set{Keys: []json.RawMessage{raw}})
		_, err := jwks.ParseSet(set)
		if !errors.Is(err, jwks.ErrMalformed) || !strings.Contains(err.Error(), "private members ["+member+"]") {
			t.Fatalf("member %q: %v", member, err)
		}
	}
	// A kid that is not the thumbprint is rejected too.
	var m map[string]any
	_ = json.Unmarshal(jwk, &m)
	m["kid"] = "my-key-1"
	raw, _ := json.Marshal(m)
	if _, err := jwks.ParsePublicJWK(raw); err == nil || !strings.Contains(err.Error(), "thumbprint") {
		t.Fatalf("a free-form kid was accepted: %v", err)
	}
}

func TestParseDocumentAcceptsOnlyEmptyOrWellFormedDocuments(t *testing.T) {
	for _, v := range []string{"", "  ", "{}", `{"algorithm":"EdDSA"}`} {
		d, err := jwks.ParseDocument([]byte(v))
		if err != nil || !d.Bootstrap() {
			t.Fatalf("%q: %v", v, err)
		}
	}
	for _, v := range []string{"[]", `{"algorithm":"HS256"}`, `{"schemaVersion":1,"active":{}}`, `{"retired":[{}]}`, `{} {}`, `{"algorithm":"ES256","x":1}`} {
		if _, err := jwks.ParseDocument([]byte(v)); !errors.Is(err, jwks.ErrMalformed) {
			t.Fatalf("%q was accepted or gave %v", v, err)
		}
	}
}

// localSealer is pkg/envelope over a local key-encryption key.
func localSealer(t testing.TB) *envelope.Envelope {
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	lk, err := envelope.NewLocalKey("test-kek", kek)
	if err != nil {
		t.Fatal(err)
	}
	p, err := envelope.NewLocalProvider(lk)
	if err != nil {
		t.Fatal(err)
	}
	e, err := envelope.New(envelope.Config{Provider: p})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// document builds a valid document with active and next keys.
func document(t testing.TB, s jwks.Sealer, name string, now time.Time) (*jwks.Document, crypto.Signer, crypto.Signer) {
	t.Helper()
	ctx := context.Background()
	a, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	n, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ak, err := jwks.Seal(ctx, s, name, a, jwks.ES256, now)
	if err != nil {
		t.Fatal(err)
	}
	nk, err := jwks.Seal(ctx, s, name, n, jwks.ES256, now)
	if err != nil {
		t.Fatal(err)
	}
	ak.ActivatedAt = now
	d := &jwks.Document{SchemaVersion: 1, Algorithm: jwks.ES256, Active: ak, Next: nk, JWKS: &jwks.Set{Keys: []json.RawMessage{ak.PublicJWK, nk.PublicJWK}}}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	return d, a, n
}

func sign(t testing.TB, key crypto.Signer, alg, kid string, exp time.Time) string {
	t.Helper()
	m, _ := jwks.SigningMethod(alg)
	tk := jwt.NewWithClaims(m, jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(exp)})
	if kid != "" {
		tk.Header["kid"] = kid
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTheVerifierPinsAlgorithmsAndRequiresTheKeysOwnAlg(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	d, a, _ := document(t, localSealer(t), "svc/jwt", now)
	raw, _ := d.Marshal()
	v, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: jwks.StaticSource(raw), Algorithms: []string{jwks.ES256}})
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, a, jwks.ES256, d.Active.KID, now.Add(time.Minute))
	if _, err := v.Parse(ctx, good, &jwt.RegisteredClaims{}); err != nil {
		t.Fatal(err)
	}
	// alg "none".
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	// HS256 keyed with the public JWK (the classic key-confusion attack).
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))})
	hs.Header["kid"] = d.Active.KID
	confused, _ := hs.SignedString([]byte(d.Active.PublicJWK))
	// A token without kid, and one without exp.
	noKid := sign(t, a, jwks.ES256, "", now.Add(time.Minute))
	noExp, _ := func() (string, error) {
		tk := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "x"})
		tk.Header["kid"] = d.Active.KID
		return tk.SignedString(a)
	}()
	for name, tok := range map[string]string{"none": none, "HS256 confusion": confused, "no kid": noKid, "no exp": noExp} {
		if _, err := v.Parse(ctx, tok, &jwt.RegisteredClaims{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// An EdDSA-only verifier rejects the ES256 token before using any key.
	ed, _ := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: jwks.StaticSource(raw), Algorithms: []string{jwks.EdDSA}})
	if _, err := ed.Parse(ctx, good, &jwt.RegisteredClaims{}); err == nil {
		t.Fatal("an EdDSA-pinned verifier accepted ES256")
	}
	if _, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: jwks.StaticSource(raw)}); err == nil {
		t.Fatal("a verifier without pinned algorithms was built")
	}
}

func TestTheVerifierReloadsOnAnUnknownKidAtMostOncePerInterval(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	sealer := localSealer(t)
	d1, a1, _ := document(t, sealer, "svc/jwt", now)
	d2, a2, _ := document(t, sealer, "svc/jwt", now)
	raw1, _ := d1.Marshal()
	raw2, _ := d2.Marshal()
	var loads atomic.Int32
	var current atomic.Value
	current.Store(raw1)
	src := func(context.Context) ([]byte, error) { loads.Add(1); return current.Load().([]byte), nil }
	v, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: src, Algorithms: []string{jwks.ES256}, Refresh: time.Hour, MinRefreshInterval: 30 * time.Second, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	exp := now.Add(2 * time.Hour)
	tok1 := sign(t, a1, jwks.ES256, d1.Active.KID, exp)
	tok2 := sign(t, a2, jwks.ES256, d2.Active.KID, exp)
	if _, err := v.Parse(ctx, tok1, &jwt.RegisteredClaims{}); err != nil {
		t.Fatal(err)
	}
	advance(31 * time.Second)
	current.Store(raw2)
	if _, err := v.Parse(ctx, tok2, &jwt.RegisteredClaims{}); err != nil {
		t.Fatalf("an unknown kid should reload the set: %v", err)
	}
	if n := loads.Load(); n != 2 {
		t.Fatalf("%d loads, want 2", n)
	}
	// Unknown kids within the interval do not reach the source.
	for range 50 {
		if _, err := v.Parse(ctx, sign(t, a1, jwks.ES256, "unknown-kid", exp), &jwt.RegisteredClaims{}); err == nil {
			t.Fatal("an unknown kid verified")
		}
	}
	if n := loads.Load(); n != 2 {
		t.Fatalf("%d loads after a burst of unknown kids, want 2 (rate limited)", n)
	}
	advance(31 * time.Second)
	_, _ = v.Parse(ctx, sign(t, a1, jwks.ES256, "unknown-kid", exp), &jwt.RegisteredClaims{})
	if n := loads.Load(); n != 3 {
		t.Fatalf("%d loads, want 3 after the interval", n)
	}
	// The scheduled refresh runs in the background: the use that finds the
	// set due gets the loaded one at once, and the read replaces it.
	advance(time.Hour)
	current.Store(raw1)
	if ids := v.KeyIDs(); !slices.Contains(ids, d2.Active.KID) {
		t.Fatalf("the loaded set must be served while it is re-read: %v", ids)
	}
	for i := 0; loads.Load() < 4 || !slices.Contains(v.KeyIDs(), d1.Active.KID); i++ {
		if i == 1000 {
			t.Fatalf("the background refresh never landed (%d loads)", loads.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := v.Parse(ctx, tok1, &jwt.RegisteredClaims{}); err != nil {
		t.Fatal(err)
	}
	if n := loads.Load(); n != 4 {
		t.Fatalf("%d loads, want 4 after the refresh period", n)
	}
	// A source that starts serving private keys is refused; the old set stays.
	var bad map[string]any
	_ = json.Unmarshal(d1.JWKS.Keys[0], &bad)
	bad["d"] = "AAAA"
	badKey, _ := json.Marshal(bad)
	badSet, _ := json.Marshal(jwks.Set{Keys: []json.RawMessage{badKey}})
	current.Store(badSet)
	advance(31 * time.Second) // Refresh is rate-limited from the last read, the scheduled one included
	if err := v.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "private members") {
		t.Fatalf("a set with private members was loaded: %v", err)
	}
	if _, err := v.Parse(ctx, tok1, &jwt.RegisteredClaims{}); err != nil {
		t.Fatalf("the last good set should stay in use: %v", err)
	}
}

func TestTheHandlerServesTheSetWithCacheControlAndETag(t *testing.T) {
	ctx := context.Background()
	d, _, _ := document(t, localSealer(t), "svc/jwt", time.Now())
	raw, _ := d.Marshal()
	v, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: jwks.StaticSource(raw), Algorithms: []string{jwks.ES256}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(jwks.Handler{Verifier: v, MaxAge: 10 * time.Minute})
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var set jwks.Set
	_ = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "public, max-age=600" || resp.Header.Get("Content-Type") != "application/jwk-set+json" || len(set.Keys) != 2 {
		t.Fatalf("status %d headers %v keys %d", resp.StatusCode, resp.Header, len(set.Keys))
	}
	etag := resp.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) {
		t.Fatalf("ETag %q", etag)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: status %d, want 304", resp.StatusCode)
	}
	resp, err = http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: status %d", resp.StatusCode)
	}
}

// TestTheSignerRefreshesOnItsScheduleAndStopsWhenTooStale runs the signer
// against a secret in moto.
func TestTheSignerRefreshesOnItsScheduleAndStopsWhenTooStale(t *testing.T) {
	m := testenv.SharedMoto(t)
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	name := fmt.Sprintf("jwks-signer-%d", time.Now().UnixNano())
	sealer := localSealer(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	d1, _, _ := document(t, sealer, name, now)
	raw1, _ := d1.Marshal()
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(string(raw1))}); err != nil {
		t.Fatal(err)
	}
	put := func(v []byte) {
		if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(string(v))}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := jwks.NewSigner(ctx, jwks.SignerConfig{Secrets: sm, SecretID: name, Sealer: sealer, Refresh: 10 * time.Minute, RetryInterval: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	signKid := func() string {
		tok, err := s.Sign(ctx, jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(clock().Add(time.Minute))})
		if err != nil {
			t.Fatal(err)
		}
		p, _, _ := jwt.NewParser().ParseUnverified(tok, &jwt.RegisteredClaims{})
		return p.Header["kid"].(string)
	}
	if signKid() != d1.Active.KID {
		t.Fatal("not signing with the active key")
	}
	d2, _, _ := document(t, sealer, name, now)
	raw2, _ := d2.Marshal()
	put(raw2)
	advance(9 * time.Minute)
	if signKid() != d1.Active.KID {
		t.Fatal("refreshed before its schedule")
	}
	advance(time.Minute)
	if signKid() != d2.Active.KID {
		t.Fatal("did not refresh on schedule")
	}
	// Refreshes fail from now on: it keeps signing for MaxStale, then stops.
	put([]byte(`{"not":"a document"}`))
	advance(15 * time.Minute)
	if signKid() != d2.Active.KID {
		t.Fatal("should keep the loaded key while within MaxStale")
	}
	advance(6 * time.Minute)
	if _, err := s.Sign(ctx, jwt.RegisteredClaims{}); err == nil || !strings.Contains(err.Error(), "could not be refreshed") {
		t.Fatalf("a key older than Refresh+MaxStale must not sign: %v", err)
	}
	// A document sealed for another secret name does not open here.
	other, _, _ := document(t, sealer, name+"-other", now)
	rawOther, _ := other.Marshal()
	put(rawOther)
	if err := s.Refresh(ctx); !errors.Is(err, envelope.ErrContextMismatch) {
		t.Fatalf("a key sealed for another secret opened: %v", err)
	}
}

// TestVerifierAndHandlerAreSafeForConcurrentUse runs parses, reloads and
// HTTP requests at once (meaningful under -race).
func TestVerifierAndHandlerAreSafeForConcurrentUse(t *testing.T) {
	ctx := context.Background()
	sealer := localSealer(t)
	d1, a1, _ := document(t, sealer, "svc/jwt", time.Now())
	d2, _, _ := document(t, sealer, "svc/jwt", time.Now())
	raw1, _ := d1.Marshal()
	raw2, _ := d2.Marshal()
	var flip atomic.Bool
	src := func(context.Context) ([]byte, error) {
		if flip.Load() {
			return raw2, nil
		}
		return raw1, nil
	}
	v, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: src, Algorithms: []string{jwks.ES256}, Refresh: time.Millisecond, MinRefreshInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h := jwks.Handler{Verifier: v}
	tok := sign(t, a1, jwks.ES256, d1.Active.KID, time.Now().Add(time.Hour))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				switch (i + j) % 3 {
				case 0:
					_, _ = v.Parse(ctx, tok, &jwt.RegisteredClaims{})
				case 1:
					flip.Store(j%2 == 0)
					_ = v.Refresh(ctx)
				default:
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
					if rec.Code != http.StatusOK {
						t.Errorf("status %d", rec.Code)
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestSetKIDsListsEveryKidInTheSetsOrder(t *testing.T) {
	s := &jwks.Set{Keys: []json.RawMessage{
		json.RawMessage(`{"kty":"OKP","kid":"b"}`),
		json.RawMessage(`{"kty":"OKP","kid":"a"}`),
		json.RawMessage(`{"kty":"OKP"}`),
		json.RawMessage(`[1]`),
	}}
	if got, want := s.KIDs(), []string{"b", "a", "", ""}; !slices.Equal(got, want) {
		t.Fatalf("KIDs() = %q, want %q", got, want)
	}
	var none *jwks.Set
	if got := none.KIDs(); got != nil {
		t.Fatalf("a nil set's KIDs() = %q, want none", got)
	}
	d := &jwks.Document{JWKS: s}
	if !d.HasKID("a") || d.HasKID("c") || d.HasKID("") || (&jwks.Document{}).HasKID("a") {
		t.Fatal("HasKID disagrees with KIDs")
	}
}
