package apikeystrategy

import (
	"bytes"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

func issued(t *testing.T, kind string, created time.Time) *apikey.CallerSecret {
	t.Helper()
	prefix := "sk"
	if kind == apikey.KindWebhook {
		prefix = "whsec"
	}
	k, err := apikey.GenerateKey(prefix)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := apikey.ParseKey(k.Reveal())
	return &apikey.CallerSecret{Kind: kind, KeyID: p.KeyID, Key: k, CreatedAt: created, ExpiresAt: created.Add(90 * 24 * time.Hour)}
}

func TestDerivedTokensAreValidVersionIDsStablePerRotationAndPurpose(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := derivedToken("tok-1", "set"), derivedToken("tok-1", "set")
	if a != b || !uuid.MatchString(a) {
		t.Fatalf("derived token %q (again %q) is not a stable UUIDv8", a, b)
	}
	if derivedToken("tok-1", "finish") == a || derivedToken("tok-2", "set") == a {
		t.Fatal("derived tokens collide across purposes or rotations")
	}
}

func TestApplySetIsIdempotentAndRevokesOnlyRecordsWhoseNotAfterHasPassed(t *testing.T) {
	pepper := bytes.Repeat([]byte("p"), 32)
	k0 := issued(t, apikey.KindAPIKey, t0.Add(-60*24*time.Hour))
	k1 := issued(t, apikey.KindAPIKey, t0.Add(-30*24*time.Hour))
	k2 := issued(t, apikey.KindAPIKey, t0)
	r0, _ := apikey.NewRecord(k0, apikey.AlgHMACSHA256, pepper, apikey.StatusRetiring)
	r0.NotAfter = t0.Add(-29 * 24 * time.Hour)
	r1, _ := apikey.NewRecord(k1, apikey.AlgHMACSHA256, pepper, apikey.StatusActive)
	doc := &apikey.VerifierDoc{Kind: apikey.KindAPIKey, PepperFingerprint: apikey.PepperFingerprint(pepper), Records: []apikey.Record{r0, r1}}
	once, _, err := applySet(doc, k2, k1, apikey.AlgHMACSHA256, pepper, policy{Overlap: day})
	if err != nil {
		t.Fatal(err)
	}
	twice, _, err := applySet(once, k2, k1, apikey.AlgHMACSHA256, pepper, policy{Overlap: day})
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := once.Encode()
	b2, _ := twice.Encode()
	if !bytes.Equal(b1, b2) {
		t.Fatalf("a retried setSecret would write a different value:\n%s\n%s", b1, b2)
	}
	want := map[string]string{k0.KeyID: apikey.StatusRevoked, k1.KeyID: apikey.StatusActive, k2.KeyID: apikey.StatusActive}
	for id, st := range want {
		if r := once.Find(id); r == nil || r.Status != st {
			t.Fatalf("record %s: %+v, want %s", id, r, st)
		}
	}
	if r := once.Find(k0.KeyID); !r.NotAfter.Equal(t0.Add(-29 * 24 * time.Hour)) {
		t.Fatalf("revocation moved an earlier notAfter: %s", r.NotAfter)
	}
	// A key of an abandoned rotation (a caller may have taken it from
	// AWSPENDING) retires for one overlap from this rotation's start, and
	// a revoked current key is never un-revoked.
	orphan := issued(t, apikey.KindAPIKey, t0.Add(-time.Hour))
	ro, _ := apikey.NewRecord(orphan, apikey.AlgHMACSHA256, pepper, apikey.StatusActive)
	rr := r1
	rr.Status = apikey.StatusRevoked
	doc2 := &apikey.VerifierDoc{Kind: apikey.KindAPIKey, PepperFingerprint: apikey.PepperFingerprint(pepper), Records: []apikey.Record{ro, rr}}
	out, _, _ := applySet(doc2, k2, k1, apikey.AlgHMACSHA256, pepper, policy{Overlap: day})
	if r := out.Find(orphan.KeyID); r.Status != apikey.StatusRetiring || !r.NotAfter.Equal(t0.Add(day)) || out.Find(k1.KeyID).Status != apikey.StatusRevoked {
		t.Fatalf("orphan %+v not retiring until the pending key's creation + overlap, or a revoked current key came back", r)
	}
	again, _, _ := applySet(out, k2, k1, apikey.AlgHMACSHA256, pepper, policy{Overlap: day})
	if a, b := mustEncode(t, out), mustEncode(t, again); !bytes.Equal(a, b) {
		t.Fatalf("not a fixed point:\n%s\n%s", a, b)
	}
}

func mustEncode(t *testing.T, d *apikey.VerifierDoc) []byte {
	t.Helper()
	b, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestApplySetAddsAMissingCurrentRecordAndRefusesAChangedPepper(t *testing.T) {
	pepper := bytes.Repeat([]byte("p"), 32)
	k1 := issued(t, apikey.KindAPIKey, t0.Add(-time.Hour))
	k2 := issued(t, apikey.KindAPIKey, t0)
	out, _, err := applySet(&apikey.VerifierDoc{Kind: apikey.KindAPIKey}, k2, k1, apikey.AlgSHA256, nil, policy{Overlap: day})
	if err != nil || out.Find(k1.KeyID) == nil || out.PepperFingerprint != "" {
		t.Fatalf("missing current record not added: %v %+v", err, out)
	}
	r1, _ := apikey.NewRecord(k1, apikey.AlgHMACSHA256, pepper, apikey.StatusActive)
	doc := &apikey.VerifierDoc{Kind: apikey.KindAPIKey, PepperFingerprint: apikey.PepperFingerprint(pepper), Records: []apikey.Record{r1}}
	_, _, err = applySet(doc, k2, k1, apikey.AlgHMACSHA256, bytes.Repeat([]byte("q"), 32), policy{Overlap: day})
	if rotation.ClassOf(err) != rotation.ClassConfiguration {
		t.Fatalf("changed pepper: %v", err)
	}
	_, _, err = applySet(&apikey.VerifierDoc{Kind: apikey.KindWebhook}, k2, k1, apikey.AlgSHA256, nil, policy{Overlap: day})
	if rotation.ClassOf(err) != rotation.ClassConfiguration {
		t.Fatalf("kind mismatch: %v", err)
	}
}

func TestApplySetKeepsAFewRevokedAPIKeyRecordsAndNoRevokedWebhookMaterial(t *testing.T) {
	doc := &apikey.VerifierDoc{Kind: apikey.KindAPIKey}
	for i := 0; i < 12; i++ {
		c := issued(t, apikey.KindAPIKey, t0.Add(time.Duration(i-20)*time.Hour))
		r, _ := apikey.NewRecord(c, apikey.AlgSHA256, nil, apikey.StatusRevoked)
		doc.Records = append(doc.Records, r)
	}
	cur, pend := issued(t, apikey.KindAPIKey, t0.Add(-time.Hour)), issued(t, apikey.KindAPIKey, t0)
	out, _, _ := applySet(doc, pend, cur, apikey.AlgSHA256, nil, policy{Overlap: day})
	if len(out.Records) != keepRevoked+2 {
		t.Fatalf("%d records, want %d revoked + 2 live", len(out.Records), keepRevoked)
	}
	wold := issued(t, apikey.KindWebhook, t0.Add(-48*time.Hour))
	wcur, wpend := issued(t, apikey.KindWebhook, t0.Add(-time.Hour)), issued(t, apikey.KindWebhook, t0)
	r, _ := apikey.NewRecord(wold, "", nil, apikey.StatusRetiring)
	r.NotAfter = t0.Add(-time.Hour) // its overlap ended before this rotation
	wout, _, _ := applySet(&apikey.VerifierDoc{Kind: apikey.KindWebhook, Records: []apikey.Record{r}}, wpend, wcur, "", nil, policy{Overlap: day})
	if wout.Find(wold.KeyID) != nil {
		t.Fatal("a revoked webhook key's material stayed in the verifier document")
	}
}

func TestApplyFinishRetiresThePreviousKeyOnce(t *testing.T) {
	k1, k2 := issued(t, apikey.KindAPIKey, t0.Add(-time.Hour)), issued(t, apikey.KindAPIKey, t0)
	r1, _ := apikey.NewRecord(k1, apikey.AlgSHA256, nil, apikey.StatusActive)
	r2, _ := apikey.NewRecord(k2, apikey.AlgSHA256, nil, apikey.StatusActive)
	doc := &apikey.VerifierDoc{Kind: apikey.KindAPIKey, Records: []apikey.Record{r1, r2}}
	until := t0.Add(24 * time.Hour)
	if ok, err := applyFinish(doc, k1.KeyID, k2.KeyID, until, nil); !ok || err != nil {
		t.Fatal("nothing changed", err)
	}
	if r := doc.Find(k1.KeyID); r.Status != apikey.StatusRetiring || !r.NotAfter.Equal(until) {
		t.Fatalf("previous record %+v", r)
	}
	if ok, _ := applyFinish(doc, k1.KeyID, k2.KeyID, until.Add(time.Hour), nil); ok {
		t.Fatal("a second finish changed the record again")
	}
	if doc.Find(k2.KeyID).Status != apikey.StatusActive {
		t.Fatal("the current key was touched")
	}
}

func TestApplySetOnlyTouchesTheRecordsOfItsOwnSecret(t *testing.T) {
	a0, a1 := issued(t, apikey.KindAPIKey, t0.Add(-2*time.Hour)), issued(t, apikey.KindAPIKey, t0.Add(-time.Hour))
	b0, b1 := issued(t, apikey.KindAPIKey, t0.Add(-2*time.Hour)), issued(t, apikey.KindAPIKey, t0.Add(-time.Hour))
	var doc apikey.VerifierDoc
	doc.Kind = apikey.KindAPIKey
	for _, x := range []struct {
		c     *apikey.CallerSecret
		owner string
		st    string
	}{{a0, "oA", apikey.StatusRetiring}, {a1, "oA", apikey.StatusActive}, {b0, "oB", apikey.StatusRetiring}, {b1, "oB", apikey.StatusActive}} {
		r, _ := apikey.NewRecord(x.c, apikey.AlgSHA256, nil, x.st)
		r.Owner = x.owner
		doc.Records = append(doc.Records, r)
	}
	a2 := issued(t, apikey.KindAPIKey, t0)
	out, _, err := applySet(&doc, a2, a1, apikey.AlgSHA256, nil, policy{Owner: "oA", Overlap: day})
	if err != nil {
		t.Fatal(err)
	}
	if out.Find(a0.KeyID).Status != apikey.StatusRetiring || out.Find(a1.KeyID).Status != apikey.StatusActive || out.Find(a2.KeyID).Owner != "oA" {
		t.Fatal("own records not rotated (a retiring key in its overlap stays retiring)")
	}
	if out.Find(b0.KeyID).Status != apikey.StatusRetiring || out.Find(b1.KeyID).Status != apikey.StatusActive {
		t.Fatal("another secret's records were changed")
	}
	// The finish hook puts a lost current record back.
	out.Records = out.Records[:0]
	ok, err := applyFinish(out, a1.KeyID, a2.KeyID, t0.Add(time.Hour), func() (apikey.Record, error) {
		return apikey.NewRecord(a2, apikey.AlgSHA256, nil, apikey.StatusActive)
	})
	if !ok || err != nil || out.Find(a2.KeyID) == nil {
		t.Fatal("lost current record not restored", err)
	}
}

// A late re-run of the finish hook, after a later rotation revoked and
// dropped the key it promoted (a webhook key's material goes at once), must
// not bring that key back.
func TestALateFinishHookNeverRestoresAKeyALaterRotationDropped(t *testing.T) {
	a1, a2, a3 := issued(t, apikey.KindWebhook, t0.Add(-2*time.Hour)), issued(t, apikey.KindWebhook, t0.Add(-time.Hour)), issued(t, apikey.KindWebhook, t0)
	r3, _ := apikey.NewRecord(a3, "", nil, apikey.StatusActive)
	r3.Owner = "oA"
	doc := &apikey.VerifierDoc{Kind: apikey.KindWebhook, Records: []apikey.Record{r3}}
	ok, err := applyFinish(doc, a1.KeyID, a2.KeyID, t0.Add(time.Hour), func() (apikey.Record, error) {
		r, err := apikey.NewRecord(a2, "", nil, apikey.StatusActive)
		r.Owner = "oA"
		return r, err
	})
	if err != nil || ok || doc.Find(a2.KeyID) != nil {
		t.Fatalf("the late hook restored a dropped key (changed=%v, err=%v)", ok, err)
	}
}

func TestInvalidConfigurationIsAConfigurationErrorNamingTheVariable(t *testing.T) {
	base := map[string]string{"APIKEY_VERIFIER_SECRET_ARN": "arn:verifier"}
	cases := map[string]map[string]string{
		"APIKEY_KIND":                     {"APIKEY_KIND": "password"},
		"APIKEY_PREFIX":                   {"APIKEY_PREFIX": "Bad_Prefix"},
		"APIKEY_OVERLAP":                  {"APIKEY_OVERLAP": "a day"},
		"APIKEY_VERIFIER_SECRET_ARN":      {"APIKEY_VERIFIER_SECRET_ARN": ""},
		"APIKEY_REGISTER_URL":             {"APIKEY_REGISTER_URL": "http://plain.example/keys", "APIKEY_REGISTER_HMAC_SECRET_ARN": "arn:h"},
		"APIKEY_REGISTER_HMAC_SECRET_ARN": {"APIKEY_REGISTER_URL": "https://x.example/keys"},
		"APIKEY_TEST_URL":                 {"APIKEY_TEST_URL": "https://user:pw@x.example/"},
		"APIKEY_MAX_AGE":                  {"APIKEY_MAX_AGE": "1h", "APIKEY_OVERLAP": "2h"},
		"APIKEY_PEPPER_SECRET_ARN":        {"APIKEY_KIND": "webhook", "APIKEY_PEPPER_SECRET_ARN": "arn:p"},
		"APIKEY_CA_FILE":                  {"APIKEY_TEST_URL": "https://x.example/", "APIKEY_CA_FILE": "/nonexistent.pem"},
	}
	for name, env := range cases {
		getenv := func(k string) string {
			if v, ok := env[k]; ok {
				return v
			}
			return base[k]
		}
		_, err := ConfigFromEnv(getenv)
		if rotation.ClassOf(err) != rotation.ClassConfiguration || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	cfg, err := ConfigFromEnv(func(k string) string {
		return map[string]string{"APIKEY_VERIFIER_SECRET_ARN": "arn:v", "APIKEY_OVERLAP": "30m"}[k]
	})
	if err != nil || cfg.Overlap != 30*time.Minute || len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "secret-cache") {
		t.Fatalf("short overlap: %v %v", cfg.Warnings, err)
	}
	cfg, err = ConfigFromEnv(func(k string) string { return base[k] })
	if err != nil || cfg.Overlap != DefaultOverlap || cfg.MaxAge != DefaultMaxAge || len(cfg.Warnings) != 0 {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// The durations take the one grammar: Go durations or whole days.
func TestOverlapAndMaxAgeTakeGoDurationsOrWholeDays(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(map[string]string{EnvVerifierSecretARN: "arn:v", EnvOverlap: "7d", EnvMaxAge: "30d"}))
	if err != nil || cfg.Overlap != 7*day || cfg.MaxAge != 30*day {
		t.Fatalf("7d/30d: %v %v %v", cfg.Overlap, cfg.MaxAge, err)
	}
	cfg, err = ConfigFromEnv(envOf(map[string]string{EnvVerifierSecretARN: "arn:v", EnvOverlap: "1h30m", EnvMaxAge: "2160h"}))
	if err != nil || cfg.Overlap != 90*time.Minute || cfg.MaxAge != 90*day {
		t.Fatalf("1h30m/2160h: %v %v %v", cfg.Overlap, cfg.MaxAge, err)
	}
	for v, want := range map[string]string{"86400": "no unit", "0": "outside 1s…90d", "91d": "outside 1s…90d", "-1h": "negative"} {
		_, err := ConfigFromEnv(envOf(map[string]string{EnvVerifierSecretARN: "arn:v", EnvOverlap: v}))
		if rotation.ClassOf(err) != rotation.ClassConfiguration || !strings.Contains(err.Error(), EnvOverlap) || !strings.Contains(err.Error(), want) {
			t.Errorf("APIKEY_OVERLAP=%s: %v, want a configuration error saying %q", v, err, want)
		}
	}
	_, err = ConfigFromEnv(envOf(map[string]string{EnvVerifierSecretARN: "arn:v", EnvOverlap: "7d", EnvMaxAge: "7d"}))
	if err == nil || !strings.Contains(err.Error(), "APIKEY_MAX_AGE 7d must be longer than APIKEY_OVERLAP 7d") {
		t.Fatalf("max age = overlap: %v", err)
	}
}

func TestEveryConfigurationProblemIsReportedAtOnce(t *testing.T) {
	_, err := ConfigFromEnv(envOf(map[string]string{EnvKind: "password", EnvOverlap: "a day", EnvMaxAge: "86400", EnvTestURL: "http://x.example/"}))
	if rotation.ClassOf(err) != rotation.ClassConfiguration {
		t.Fatalf("err = %v", err)
	}
	for _, name := range []string{EnvKind, EnvOverlap, EnvMaxAge, EnvVerifierSecretARN, EnvTestURL} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
}

// A Config built in code gets the checks ConfigFromEnv makes, from New.
func TestNewChecksAConfigBuiltInCode(t *testing.T) {
	_, err := New(Config{Kind: "password", MaxAge: time.Hour}, Deps{})
	if rotation.ClassOf(err) != rotation.ClassConfiguration {
		t.Fatalf("err = %v", err)
	}
	for _, name := range []string{EnvKind, EnvOverlap, EnvVerifierSecretARN} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
	if _, err := New(Config{Overlap: day, MaxAge: 2 * day, VerifierSecretID: "arn:v", TestURL: "https://x.example/", CAPEM: []byte("not a certificate")}, Deps{}); err == nil || !strings.Contains(err.Error(), EnvCAFile) {
		t.Fatalf("a bundle without a certificate: %v", err)
	}
	s, err := New(Config{Overlap: day, MaxAge: 2 * day, VerifierSecretID: "arn:v"}, Deps{})
	if err != nil || s.http != nil {
		t.Fatalf("without URLs: %v, client %v", err, s.http)
	}
}

func TestTheCAFileIsReadAtStartUp(t *testing.T) {
	dir := t.TempDir()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	good := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	empty, junk := filepath.Join(dir, "empty.pem"), filepath.Join(dir, "junk.pem")
	_ = os.WriteFile(empty, nil, 0o600)
	_ = os.WriteFile(junk, []byte("junk"), 0o600)
	env := map[string]string{EnvVerifierSecretARN: "arn:v", EnvTestURL: "https://x.example/", EnvCAFile: good}
	cfg, err := ConfigFromEnv(envOf(env))
	if err != nil || len(cfg.CAPEM) == 0 {
		t.Fatalf("a good bundle: %v", err)
	}
	if _, err := New(cfg, Deps{}); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{empty: "empty", junk: "no PEM certificate", filepath.Join(dir, "missing.pem"): "cannot be read"} {
		env[EnvCAFile] = file
		if _, err := ConfigFromEnv(envOf(env)); rotation.ClassOf(err) != rotation.ClassConfiguration || !strings.Contains(err.Error(), EnvCAFile+" ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", filepath.Base(file), err, want)
		}
	}
	delete(env, EnvTestURL)
	env[EnvCAFile] = good
	if cfg, err := ConfigFromEnv(envOf(env)); err != nil || len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "nothing uses") {
		t.Fatalf("a bundle without URLs: %v %v", cfg.Warnings, err)
	}
}

// Whatever client main or a test gives, a redirect is answered as it is,
// never followed: it could carry a key elsewhere.
func TestTheStrategyNeverFollowsARedirect(t *testing.T) {
	given := &http.Client{}
	s, err := New(Config{Overlap: day, MaxAge: 2 * day, VerifierSecretID: "arn:v", TestURL: "https://x.example/"}, Deps{HTTPClient: given})
	if err != nil {
		t.Fatal(err)
	}
	if given.CheckRedirect != nil {
		t.Fatal("New changed the client it was given")
	}
	if s.http.CheckRedirect == nil || s.http.CheckRedirect(nil, nil) != http.ErrUseLastResponse {
		t.Fatal("the strategy's client follows redirects")
	}
	d, err := New(Config{Overlap: day, MaxAge: 2 * day, VerifierSecretID: "arn:v", TestURL: "https://x.example/"}, Deps{})
	if err != nil || d.http.CheckRedirect(nil, nil) != http.ErrUseLastResponse {
		t.Fatalf("the default client follows redirects (%v)", err)
	}
}

// Rotations closer together than the overlap leave several retiring keys;
// each stays retiring until its own notAfter, and past maxRetiring the
// rotation is refused rather than revoking one of them.
func TestApplySetKeepsEveryRetiringKeyUntilItsNotAfterAndRefusesPastTheBound(t *testing.T) {
	for _, kind := range []string{apikey.KindAPIKey, apikey.KindWebhook} {
		t.Run(kind, func(t *testing.T) {
			alg := apikey.AlgSHA256
			if kind == apikey.KindWebhook {
				alg = ""
			}
			doc := &apikey.VerifierDoc{Kind: kind}
			cur := issued(t, kind, t0.Add(-10*time.Hour))
			r, _ := apikey.NewRecord(cur, alg, nil, apikey.StatusActive)
			r.Owner = "oA"
			doc.Records = append(doc.Records, r)
			var retiring []*apikey.CallerSecret
			now := t0
			for i := range maxRetiring {
				now = now.Add(time.Hour)
				pend := issued(t, kind, now)
				out, _, err := applySet(doc, pend, cur, alg, nil, policy{Owner: "oA", Overlap: day, Now: now})
				if err != nil {
					t.Fatalf("rotation %d within the overlap refused: %v", i+1, err)
				}
				// The finish hook retires the replaced key.
				if _, err := applyFinish(out, cur.KeyID, pend.KeyID, now.Add(day), nil); err != nil {
					t.Fatal(err)
				}
				retiring = append(retiring, cur)
				doc, cur = out, pend
				for _, k := range retiring {
					if r := doc.Find(k.KeyID); r == nil || r.Status != apikey.StatusRetiring || !r.NotAfter.After(now) {
						t.Fatalf("after rotation %d the key %s is %+v, want retiring until after %s", i+1, k.KeyID, r, now)
					}
				}
			}
			// One more within the overlap would make maxRetiring+1 retiring keys.
			before := mustEncode(t, doc)
			now = now.Add(time.Hour)
			_, _, err := applySet(doc, issued(t, kind, now), cur, alg, nil, policy{Owner: "oA", Overlap: day, Now: now})
			if rotation.ClassOf(err) != rotation.ClassState || !strings.Contains(err.Error(), EmergencyRevokeTag) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("past the bound: %v, want a state error naming the way out", err)
			}
			if !bytes.Equal(before, mustEncode(t, doc)) {
				t.Fatal("a refused rotation changed the document")
			}
			// Once the earliest overlap has ended, the next rotation revokes
			// that key (and, for webhooks, drops its material) and goes ahead.
			first := doc.Find(retiring[0].KeyID).NotAfter
			now = first
			out, _, err := applySet(doc, issued(t, kind, now), cur, alg, nil, policy{Owner: "oA", Overlap: day, Now: now})
			if err != nil {
				t.Fatalf("after the earliest overlap ended: %v", err)
			}
			r0 := out.Find(retiring[0].KeyID)
			if kind == apikey.KindWebhook && r0 != nil || kind == apikey.KindAPIKey && (r0 == nil || r0.Status != apikey.StatusRevoked) {
				t.Fatalf("the key whose notAfter passed: %+v", r0)
			}
			for _, k := range retiring[1:] {
				if r := out.Find(k.KeyID); r == nil || r.Status != apikey.StatusRetiring {
					t.Fatalf("key %s still in its overlap: %+v", k.KeyID, r)
				}
			}
		})
	}
}

func TestTheEmergencyRevokeTagRevokesEveryEarlierKeyButNeverTheNewOne(t *testing.T) {
	for _, kind := range []string{apikey.KindAPIKey, apikey.KindWebhook} {
		t.Run(kind, func(t *testing.T) {
			alg := apikey.AlgSHA256
			if kind == apikey.KindWebhook {
				alg = ""
			}
			old, prev, cur := issued(t, kind, t0.Add(-3*time.Hour)), issued(t, kind, t0.Add(-2*time.Hour)), issued(t, kind, t0.Add(-time.Hour))
			other := issued(t, kind, t0.Add(-3*time.Hour))
			doc := &apikey.VerifierDoc{Kind: kind}
			for _, x := range []struct {
				c     *apikey.CallerSecret
				owner string
				st    string
			}{{old, "oA", apikey.StatusRetiring}, {prev, "oA", apikey.StatusRetiring}, {cur, "oA", apikey.StatusActive}, {other, "oB", apikey.StatusActive}} {
				r, _ := apikey.NewRecord(x.c, alg, nil, x.st)
				r.Owner = x.owner
				doc.Records = append(doc.Records, r)
			}
			pend := issued(t, kind, t0)
			pol := policy{Owner: "oA", Overlap: day, Now: t0, RevokeBefore: t0.Add(-30 * time.Minute)}
			out, revoked, err := applySet(doc, pend, cur, alg, nil, pol)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(revoked)
			want := []string{old.KeyID, prev.KeyID}
			slices.Sort(want)
			if !slices.Equal(revoked, want) {
				t.Fatalf("revoked %v, want %v", revoked, want)
			}
			for _, k := range []*apikey.CallerSecret{old, prev} {
				r := out.Find(k.KeyID)
				if kind == apikey.KindWebhook && r != nil || kind == apikey.KindAPIKey && (r == nil || r.Status != apikey.StatusRevoked) {
					t.Fatalf("key %s issued before the instant: %+v", k.KeyID, r)
				}
			}
			if out.Find(cur.KeyID).Status != apikey.StatusActive || out.Find(pend.KeyID).Status != apikey.StatusActive || out.Find(other.KeyID).Status != apikey.StatusActive {
				t.Fatal("setSecret revoked the current or pending key, or another caller's")
			}
			if again, rev2, _ := applySet(out, pend, cur, alg, nil, pol); !bytes.Equal(mustEncode(t, again), mustEncode(t, out)) || len(rev2) != 0 {
				t.Fatal("the emergency setSecret is not a fixed point")
			}
			// Right after the promotion the replaced key goes too; the new one stays.
			applyFinish(out, cur.KeyID, pend.KeyID, t0.Add(day), nil)
			got := applyEmergency(out, "oA", cur.KeyID, pend.KeyID, pend.CreatedAt, pol.RevokeBefore, t0.Add(time.Minute))
			if !slices.Equal(got, []string{cur.KeyID}) || out.Find(pend.KeyID).Status != apikey.StatusActive || out.Find(other.KeyID).Status != apikey.StatusActive {
				t.Fatalf("finish revoked %v", got)
			}
			if r := out.Find(cur.KeyID); kind == apikey.KindWebhook && r != nil || kind == apikey.KindAPIKey && r.Status != apikey.StatusRevoked {
				t.Fatalf("the replaced key after an emergency finish: %+v", r)
			}
			// A new key issued before the instant (its rotation began earlier) is never revoked.
			if got := applyEmergency(out, "oA", cur.KeyID, pend.KeyID, pend.CreatedAt, t0.Add(time.Hour), t0.Add(time.Minute)); len(got) != 0 {
				t.Fatalf("revoked the new key: %v", got)
			}
			// Nor, in a late re-run of an older rotation's finish hook, a key a
			// later rotation issued (here pend, newer than that hook's current key).
			if got := applyEmergency(out, "oA", old.KeyID, prev.KeyID, prev.CreatedAt, t0.Add(time.Hour), t0.Add(time.Minute)); len(got) != 0 || out.Find(pend.KeyID).Status != apikey.StatusActive {
				t.Fatalf("a late hook revoked %v", got)
			}
		})
	}
}

func TestTheEmergencyRevokeTagMustBeAPastInstant(t *testing.T) {
	now := t0
	if b, err := revokeBefore(map[string]string{}, now); err != nil || !b.IsZero() {
		t.Fatalf("no tag: %v %v", b, err)
	}
	if b, err := revokeBefore(map[string]string{EmergencyRevokeTag: "2026-03-01T08:00:00+01:00"}, now); err != nil || !b.Equal(t0.Add(-2*time.Hour)) {
		t.Fatalf("a past instant: %v %v", b, err)
	}
	for _, v := range []string{"yesterday", "2026-03-01", "2026-03-02T09:00:00Z"} {
		_, err := revokeBefore(map[string]string{EmergencyRevokeTag: v}, now)
		if rotation.ClassOf(err) != rotation.ClassConfiguration || !strings.Contains(err.Error(), EmergencyRevokeTag) || strings.Contains(err.Error(), v) {
			t.Errorf("%q: %v", v, err)
		}
	}
}

// A late setSecret of an older rotation never retires or revokes a key a
// later rotation issued.
func TestApplySetLeavesKeysNewerThanThePendingOneAlone(t *testing.T) {
	cur, pend, later := issued(t, apikey.KindAPIKey, t0.Add(-time.Hour)), issued(t, apikey.KindAPIKey, t0), issued(t, apikey.KindAPIKey, t0.Add(time.Hour))
	var doc apikey.VerifierDoc
	doc.Kind = apikey.KindAPIKey
	for _, c := range []*apikey.CallerSecret{cur, later} {
		r, _ := apikey.NewRecord(c, apikey.AlgSHA256, nil, apikey.StatusActive)
		r.Owner = "oA"
		doc.Records = append(doc.Records, r)
	}
	out, _, err := applySet(&doc, pend, cur, apikey.AlgSHA256, nil, policy{Owner: "oA", Overlap: day, Now: t0, RevokeBefore: t0.Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if r := out.Find(later.KeyID); r.Status != apikey.StatusActive || !r.NotAfter.Equal(later.ExpiresAt) {
		t.Fatalf("the later rotation's key was changed: %+v", r)
	}
}
