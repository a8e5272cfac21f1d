package apikeystrategy_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/functions/apikeyrotate/apikeystrategy"
	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// clock is the controlled clock the engine, the test endpoint and the
// consumers of one test share.
type clock struct {
	mu   sync.Mutex
	t    time.Time
	real bool // follow the wall clock (a function under the emulator uses it)
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	if c.real {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var (
	lambdaOnce sync.Once
	lambdaARN  string
	lambdaErr  error
	seq        atomic.Int64
)

// stack is moto's Secrets Manager with the no-op rotation function registered.
type stack struct {
	moto   *testenv.Moto
	sm     *secretsmanager.Client
	lambda string
}

func newStack(t testing.TB) *stack {
	t.Helper()
	m := testenv.SharedMoto(t)
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lambdaOnce.Do(func() { lambdaARN, lambdaErr = m.RegisterNoopLambda(ctx, "apikeyrotate-test-noop") })
	if lambdaErr != nil {
		t.Fatalf("register the no-op rotation function: %v", lambdaErr)
	}
	return &stack{moto: m, sm: secretsmanager.NewFromConfig(cfg), lambda: lambdaARN}
}

func (s *stack) secret(t testing.TB, name string, value []byte) string {
	t.Helper()
	in := &secretsmanager.CreateSecretInput{Name: aws.String(fmt.Sprintf("apikey/%s-%d", name, seq.Add(1)))}
	if value != nil {
		in.SecretString = aws.String(string(value))
	}
	out, err := s.sm.CreateSecret(context.Background(), in)
	if err != nil {
		t.Fatalf("create secret: %v", err)
	}
	return aws.ToString(out.ARN)
}

// registry is the registration endpoint: it checks the HMAC signature
// independently of pkg/apikey, dedupes by Idempotency-Key and counts.
type registry struct {
	srv      *httptest.Server
	hmacKey  []byte
	clock    *clock
	mu       sync.Mutex
	requests int
	byKey    map[string][]byte // idempotency key → first body
	failNext atomic.Int32      // answer 503 this many times, after storing
}

func newRegistry(t testing.TB, c *clock, hmacKey []byte) *registry {
	r := &registry{hmacKey: hmacKey, clock: c, byKey: map[string][]byte{}}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *registry) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 64<<10))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if !r.signatureOK(req.Header.Get("Rotation-Signature"), body) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	idem := req.Header.Get("Idempotency-Key")
	if idem == "" {
		http.Error(w, "Idempotency-Key required", http.StatusBadRequest)
		return
	}
	if prev, ok := r.byKey[idem]; ok {
		if !bytes.Equal(prev, body) {
			http.Error(w, "different request under this idempotency key", http.StatusUnprocessableEntity)
			return
		}
		w.WriteHeader(http.StatusOK) // replay: the stored outcome, no second registration
		return
	}
	r.byKey[idem] = body
	if r.failNext.Load() > 0 {
		r.failNext.Add(-1)
		http.Error(w, "stored, but the answer is lost", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// signatureOK checks "t=<unix>,v1=<hex>" with crypto/hmac directly.
func (r *registry) signatureOK(h string, body []byte) bool {
	var ts, sig string
	for _, p := range strings.Split(h, ",") {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	u, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || r.clock.Now().Sub(time.Unix(u, 0)).Abs() > 5*time.Minute {
		return false
	}
	m := hmac.New(sha256.New, r.hmacKey)
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := hex.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(want), []byte(sig))
}

func (r *registry) counts() (registrations, requests int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byKey), r.requests
}

// registered returns the records registered so far.
func (r *registry) registered(t testing.TB) []apikey.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []apikey.Record
	for _, b := range r.byKey {
		d, err := apikey.ParseVerifier(b)
		if err != nil {
			t.Fatalf("registration body is not a verifier document: %v", err)
		}
		out = append(out, d.Records...)
	}
	return out
}

// service is the test endpoint: a real service that authenticates requests
// with pkg/apikey's middleware over the verifier secret in moto.
type service struct {
	srv   *httptest.Server
	calls atomic.Int32
}

func newService(t testing.TB, s *stack, c *clock, verifierID, pepperID string) *service {
	svc := &service{}
	var once sync.Once
	var v *apikey.Verifier
	var verr error
	svc.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		svc.calls.Add(1)
		once.Do(func() {
			v, verr = apikey.NewVerifier(r.Context(), apikey.VerifierConfig{Source: s.sm, SecretID: verifierID, PepperSecretID: pepperID, Now: c.Now, MissRefresh: time.Nanosecond})
		})
		if verr != nil {
			http.Error(w, "verifier unavailable", http.StatusServiceUnavailable)
			return
		}
		ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
		if r.Method == http.MethodPost {
			apikey.WebhookMiddleware(v, 1<<20, nil)(ok).ServeHTTP(w, r)
			return
		}
		apikey.Middleware(v, nil)(ok).ServeHTTP(w, r)
	}))
	t.Cleanup(svc.srv.Close)
	return svc
}

// fixture is one rotated secret with its verifier, pepper and registration
// secrets, the endpoints, and an engine + driver over them.
type fixture struct {
	*stack
	kind       string
	clock      *clock
	callerID   string
	verifierID string
	pepperID   string
	hmacID     string
	initial    *apikey.CallerSecret
	reg        *registry
	svc        *service
	cfg        apikeystrategy.Config
	engine     *rotation.Engine
	driver     *driver.Driver
	logs       *testenv.Buffer
	mu         sync.Mutex
	notified   []rotation.Notification
}

type fixtureOpts struct {
	kind       string // default apikey
	noPepper   bool
	noRegister bool
	noTestURL  bool
	overlap    time.Duration
	realClock  bool
	shareWith  *fixture // use this fixture's verifier and pepper secrets
}

var pepperValue = []byte("pepper-for-tests-0123456789abcdef0123456789")
var registerKey = []byte("registration-hmac-key-0123456789abcdef")

func newFixture(t testing.TB, o fixtureOpts) *fixture {
	t.Helper()
	s := newStack(t)
	if o.kind == "" {
		o.kind = apikey.KindAPIKey
	}
	if o.overlap == 0 {
		o.overlap = apikeystrategy.DefaultOverlap
	}
	f := &fixture{stack: s, kind: o.kind, clock: newClock(), logs: &testenv.Buffer{}}
	f.clock.real = o.realClock
	if o.kind == apikey.KindWebhook {
		o.noPepper = true
	}
	alg := apikey.AlgSHA256
	var pepper []byte
	if o.shareWith != nil {
		f.clock = o.shareWith.clock
		o.noPepper = o.shareWith.pepperID == ""
		f.pepperID = o.shareWith.pepperID
	}
	if !o.noPepper {
		if f.pepperID == "" {
			f.pepperID = s.secret(t, "pepper", pepperValue)
		}
		alg, pepper = apikey.AlgHMACSHA256, pepperValue
	}
	// The secret starts with a key issued by hand (K0) and its verifier record.
	prefix := "sk"
	if o.kind == apikey.KindWebhook {
		prefix = "whsec"
	}
	k0, err := apikey.GenerateKey(prefix)
	if err != nil {
		t.Fatal(err)
	}
	p0, _ := apikey.ParseKey(k0.Reveal())
	created := f.clock.Now().Add(-30 * 24 * time.Hour)
	f.initial = &apikey.CallerSecret{Kind: o.kind, KeyID: p0.KeyID, Key: k0, CreatedAt: created, ExpiresAt: created.Add(90 * 24 * time.Hour)}
	cv, _ := f.initial.Encode()
	f.callerID = s.secret(t, "caller", cv)
	rec, err := apikey.NewRecord(f.initial, alg, pepper, apikey.StatusActive)
	if err != nil {
		t.Fatal(err)
	}
	doc := &apikey.VerifierDoc{Kind: o.kind, Records: []apikey.Record{rec}}
	if pepper != nil {
		doc.PepperFingerprint = apikey.PepperFingerprint(pepper)
	}
	if o.shareWith != nil {
		f.verifierID = o.shareWith.verifierID
		shared := o.shareWith.currentVerifierDoc(t)
		shared.Records = append(shared.Records, rec)
		dv, _ := shared.Encode()
		if _, err := s.sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(f.verifierID), SecretString: aws.String(string(dv))}); err != nil {
			t.Fatal(err)
		}
	} else {
		dv, _ := doc.Encode()
		f.verifierID = s.secret(t, "verifier", dv)
	}
	f.cfg = apikeystrategy.Config{Kind: o.kind, Overlap: o.overlap, MaxAge: 90 * 24 * time.Hour, VerifierSecretID: f.verifierID, PepperSecretID: f.pepperID}
	var deps apikeystrategy.Deps
	if !o.noRegister {
		f.hmacID = s.secret(t, "register-hmac", registerKey)
		f.reg = newRegistry(t, f.clock, registerKey)
		f.cfg.RegisterURL = f.reg.srv.URL + "/keys"
		f.cfg.RegisterHMACSecretID = f.hmacID
		deps.HTTPClient = f.reg.srv.Client()
	}
	if !o.noTestURL {
		f.svc = newService(t, s, f.clock, f.verifierID, f.pepperID)
		f.cfg.TestURL = f.svc.srv.URL + "/probe"
		deps.HTTPClient = f.svc.srv.Client() // httptest servers share one certificate
	}
	strat, err := apikeystrategy.New(f.cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	f.engine, err = rotation.New(rotation.Config{
		Secrets:  s.sm,
		Strategy: strat,
		Notifier: rotation.NotifierFunc(func(_ context.Context, n rotation.Notification) error {
			f.mu.Lock()
			f.notified = append(f.notified, n)
			f.mu.Unlock()
			return nil
		}),
		Logger: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.driver = &driver.Driver{SM: s.sm, Invoke: f.engine, LambdaARN: s.lambda, StepTimeout: 20 * time.Second}
	return f
}

func (f *fixture) rotate(t testing.TB) *driver.Result {
	t.Helper()
	res, err := f.driver.Rotate(context.Background(), f.callerID, "")
	if err != nil {
		t.Fatalf("rotation failed: %v\nlogs:\n%s", err, f.logs.String())
	}
	return res
}

// caller reads the caller secret at stage.
func (f *fixture) caller(t testing.TB, stage string) *apikey.CallerSecret {
	t.Helper()
	out, err := f.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(f.callerID), VersionStage: aws.String(stage)})
	if err != nil {
		t.Fatalf("read %s: %v", stage, err)
	}
	c, err := apikey.ParseCaller([]byte(aws.ToString(out.SecretString)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verifier is a fresh consumer over the verifier secret, on the fixture's clock.
func (f *fixture) verifier(t testing.TB) *apikey.Verifier {
	t.Helper()
	v, err := apikey.NewVerifier(context.Background(), apikey.VerifierConfig{Source: f.sm, SecretID: f.verifierID, PepperSecretID: f.pepperID, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// check proves a caller value works against the current verifier secret.
func (f *fixture) check(ctx context.Context, value []byte) error {
	c, err := apikey.ParseCaller(value)
	if err != nil {
		return err
	}
	v, err := apikey.NewVerifier(ctx, apikey.VerifierConfig{Source: f.sm, SecretID: f.verifierID, PepperSecretID: f.pepperID, Now: f.clock.Now})
	if err != nil {
		return err
	}
	return verifyCaller(ctx, v, c, f.clock.Now())
}

func verifyCaller(ctx context.Context, v *apikey.Verifier, c *apikey.CallerSecret, now time.Time) error {
	var id string
	var err error
	if c.Kind == apikey.KindWebhook {
		body := []byte(`{"event":"x"}`)
		id, err = v.VerifySignature(ctx, apikey.SignWebhook(c.Key, now, body), body)
	} else {
		id, err = v.Verify(ctx, c.Key.Reveal())
	}
	if err == nil && id != c.KeyID {
		err = fmt.Errorf("verified as %s, want %s", id, c.KeyID)
	}
	return err
}

// verifierVersions returns every version of the verifier secret with its value.
func (f *fixture) verifierVersions(t testing.TB) map[string]string {
	t.Helper()
	ctx := context.Background()
	out, err := f.sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(f.verifierID), IncludeDeprecated: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{}
	for _, v := range out.Versions {
		g, err := f.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(f.verifierID), VersionId: v.VersionId})
		if err != nil {
			t.Fatal(err)
		}
		vals[aws.ToString(v.VersionId)] = aws.ToString(g.SecretString)
	}
	return vals
}

func (f *fixture) notifications() []rotation.Notification {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]rotation.Notification(nil), f.notified...)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
