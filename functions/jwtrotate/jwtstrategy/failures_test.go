package jwtstrategy_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/functions/jwtrotate/jwtstrategy"
	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// failRotation runs one rotation attempt that must fail with class and a
// message containing want, and checks AWSCURRENT is untouched and no secret
// text reached the error.
func failRotation(t *testing.T, r *rig, secret string, class rotation.Class, want string, secrets ...string) error {
	t.Helper()
	verBefore, valBefore := r.current(t, secret)
	r.driver.Attempts = 1
	defer func() { r.driver.Attempts = 0 }()
	_, err := r.driver.Rotate(context.Background(), secret, "")
	if err == nil {
		t.Fatalf("the rotation succeeded; want a %s error containing %q", class, want)
	}
	var re *rotation.Error
	if !errors.As(err, &re) {
		t.Fatalf("not a *rotation.Error: %v", err)
	}
	if re.Class != class || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %s error %q; want class %s containing %q", re.Class, err, class, want)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("the error shows secret material: %v", err)
		}
	}
	t.Logf("error: %v", err)
	verAfter, valAfter := r.current(t, secret)
	if verAfter != verBefore || valAfter != valBefore {
		t.Fatalf("AWSCURRENT changed after a failed rotation")
	}
	return err
}

func bootstrapped(t *testing.T, r *rig) (string, *jwks.Document) {
	t.Helper()
	secret := r.newSecret(t, `{}`, nil)
	r.rotate(t, secret)
	return secret, r.doc(t, secret)
}

// flip changes one character of an envelope text near its end, inside the
// AES-GCM body.
func flip(s string) string {
	i := len(s) - 10
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

func TestATamperedNextKeyFailsCreateSecretAndLeavesCurrentUntouched(t *testing.T) {
	s := newStack(t)
	r := s.rig(t, s.config(), newClock())
	secret, doc := bootstrapped(t, r)
	orig := doc.Next.PrivateKey
	doc.Next.PrivateKey = flip(orig)
	b, _ := doc.Marshal()
	s.putCurrent(t, secret, b)
	failRotation(t, r, secret, rotation.ClassInput, "damaged or altered", orig[:60], doc.Next.PrivateKey[:60])

}

func TestATamperedActiveKeyFailsTestSecretAndLeavesCurrentUntouched(t *testing.T) {
	s := newStack(t)
	r := s.rig(t, s.config(), newClock())
	secret, doc := bootstrapped(t, r)
	doc.Active.PrivateKey = flip(doc.Active.PrivateKey)
	b, _ := doc.Marshal()
	s.putCurrent(t, secret, b)
	err := failRotation(t, r, secret, rotation.ClassInput, "damaged or altered")
	if !strings.Contains(err.Error(), "testSecret") {
		t.Fatalf("want the failure in testSecret: %v", err)
	}
}

// A sealed key copied from another secret carries that secret's name in its
// KMS encryption context: it must not open here.
func TestAKeySealedForAnotherSecretFailsOnTheEncryptionContext(t *testing.T) {
	s := newStack(t)
	r := s.rig(t, s.config(), newClock())
	_, other := bootstrapped(t, r)
	secret, doc := bootstrapped(t, r)
	for i, raw := range doc.JWKS.Keys {
		if k, _ := jwks.ParsePublicJWK(raw); k.KeyID == doc.Next.KID {
			doc.JWKS.Keys[i] = other.Next.PublicJWK
		}
	}
	doc.Next = other.Next
	b, _ := doc.Marshal()
	s.putCurrent(t, secret, b)
	if _, err := jwks.ParseDocument(b); err != nil {
		t.Fatalf("the spliced document should be structurally valid: %v", err)
	}
	failRotation(t, r, secret, rotation.ClassInput, "bound to another secret or kid")
}

func TestBadSecretValuesFailWithAClearInputErrorAndChangeNothing(t *testing.T) {
	s := newStack(t)
	r := s.rig(t, s.config(), newClock())
	_, good := bootstrapped(t, r)
	withPrivate := func() string {
		var m map[string]any
		_ = json.Unmarshal(good.JWKS.Keys[0], &m)
		m["d"] = "c2VjcmV0LXNjYWxhci1ub3QtcmVhbGx5LXNlY3JldA"
		good.JWKS.Keys[0], _ = json.Marshal(m)
		b, _ := good.Marshal()
		return string(b)
	}()
	cases := []struct{ name, value, want string }{
		{"malformed JSON", `{"active": `, "not a valid JWT key document"},
		{"unknown algorithm", `{"algorithm":"HS256"}`, `algorithm "HS256" is not supported`},
		{"unknown field", `{"algorithim":"ES256"}`, `unknown field "algorithim"`},
		{"future schema", `{"schemaVersion":2}`, "schemaVersion 2 is not supported"},
		{"JWKS with a private member", withPrivate, "private members [d]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			secret := s.newSecret(t, tc.value, nil)
			failRotation(t, r, secret, rotation.ClassInput, tc.want)
		})
	}
}

func TestAMissingKMSKeyFailsWithAConfigurationErrorAndChangesNothing(t *testing.T) {
	s := newStack(t)
	cfg := s.config()
	cfg.KMSKeyARN = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000"
	bad := *s
	bad.env = newEnvelope(t, s.kms, cfg.KMSKeyARN)
	r := bad.rig(t, cfg, newClock())
	secret := s.newSecret(t, `{}`, nil)
	failRotation(t, r, secret, rotation.ClassConfiguration, "kms:GenerateDataKey")
}

func TestKeysSealedUnderAnotherKMSKeyAreRefusedBeforeAnyKMSCall(t *testing.T) {
	s := newStack(t)
	secret, _ := bootstrapped(t, s.rig(t, s.config(), newClock()))
	other := newStack(t) // a second KMS key
	r := other.rig(t, other.config(), newClock())
	failRotation(t, r, secret, rotation.ClassConfiguration, "other than JWT_KMS_KEY_ARN")
	_ = s
}

func TestInvalidConfigurationIsAConfigurationErrorNamingTheVariable(t *testing.T) {
	key := "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "JWT_KMS_KEY_ARN"},
		{map[string]string{"JWT_KMS_KEY_ARN": "alias/jwt"}, "JWT_KMS_KEY_ARN"},
		{map[string]string{"JWT_KMS_KEY_ARN": key, "JWT_ALGORITHM": "HS256"}, "JWT_ALGORITHM"},
		{map[string]string{"JWT_KMS_KEY_ARN": key, "JWT_ALGORITHM": "none"}, "JWT_ALGORITHM"},
		{map[string]string{"JWT_KMS_KEY_ARN": key, "JWT_RSA_BITS": "4096"}, "JWT_RSA_BITS"},
		{map[string]string{"JWT_KMS_KEY_ARN": key, "JWT_RSA_BITS": "1024"}, "JWT_RSA_BITS"},
		{map[string]string{"JWT_KMS_KEY_ARN": key, "JWT_MAX_TOKEN_LIFETIME": "forever"}, "JWT_MAX_TOKEN_LIFETIME"},
		{map[string]string{"JWT_KMS_KEY_ARN": key, "JWT_CLOCK_SKEW": "-1m"}, "JWT_CLOCK_SKEW"},
		{map[string]string{"JWT_KMS_KEY_ARN": key, "JWT_SIGNER_CACHE": "0s"}, "JWT_SIGNER_CACHE"},
		{map[string]string{"JWT_KMS_KEY_ARN": key, "JWT_MIN_PUBLISH": "10s"}, "JWT_MIN_PUBLISH"},
		{map[string]string{"JWT_KMS_KEY_ARN": key, "JWT_PUBLIC_JWKS_SECRET_ARN": "public-jwks"}, "JWT_PUBLIC_JWKS_SECRET_ARN"},
		{map[string]string{"JWT_KMS_KEY_ARN": key, "JWT_ENVELOPE_FORMAT": "3"}, "JWT_ENVELOPE_FORMAT"},
		{map[string]string{"JWT_KMS_KEY_ARN": key, "JWT_ENVELOPE_FORMAT": "v2"}, "JWT_ENVELOPE_FORMAT"},
	}
	for _, tc := range cases {
		_, err := jwtstrategy.ConfigFromEnv(func(k string) string { return tc.env[k] })
		if rotation.ClassOf(err) != rotation.ClassConfiguration || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("env %v: got %v; want a configuration error naming %s", tc.env, err, tc.want)
		}
	}
	cfg, err := jwtstrategy.ConfigFromEnv(func(k string) string {
		return map[string]string{"JWT_KMS_KEY_ARN": key, "JWT_ALGORITHM": "EdDSA", "JWT_MIN_PUBLISH": "7d", "JWT_RSA_BITS": "3072"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.EnvelopeFormat != 2 {
		t.Fatalf("new private keys are sealed in envelope format %d by default; want 2", cfg.EnvelopeFormat)
	}
	if c1, err := jwtstrategy.ConfigFromEnv(func(k string) string {
		return map[string]string{"JWT_KMS_KEY_ARN": key, "JWT_ENVELOPE_FORMAT": "1"}[k]
	}); err != nil || c1.EnvelopeFormat != 1 {
		t.Fatalf("JWT_ENVELOPE_FORMAT=1: got %d, %v; want format 1", c1.EnvelopeFormat, err)
	}
	if cfg.Algorithm != "EdDSA" || cfg.MinPublish.Hours() != 168 || cfg.RSABits != 3072 || cfg.RemovalDelay() != jwtstrategy.DefaultMaxTokenLifetime+jwtstrategy.DefaultClockSkew+jwtstrategy.DefaultSignerCache {
		t.Fatalf("unexpected configuration %+v", cfg)
	}
}

// Every problem of the environment is reported at once, each naming its
// variable; the duration grammar is envconf's (no bare numbers), and a zero
// clock skew is allowed.
func TestConfigFromEnvReportsEveryProblemAtOnce(t *testing.T) {
	env := map[string]string{
		"JWT_KMS_KEY_ARN": "alias/jwt", "JWT_ALGORITHM": "HS256", "JWT_RSA_BITS": "4096",
		"JWT_MAX_TOKEN_LIFETIME": "3600", "JWT_SIGNER_CACHE": "0s", "JWT_ENVELOPE_FORMAT": "3",
		"JWT_PUBLIC_JWKS_SECRET_ARN": "public-jwks",
	}
	_, err := jwtstrategy.ConfigFromEnv(func(k string) string { return env[k] })
	if rotation.ClassOf(err) != rotation.ClassConfiguration {
		t.Fatalf("got %v; want a configuration error", err)
	}
	for name := range env {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
	if !strings.Contains(err.Error(), "has no unit") {
		t.Errorf("a bare number of seconds was not refused as unitless: %v", err)
	}
	key := "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	for _, skew := range []string{"0", "0s", "1h"} {
		cfg, err := jwtstrategy.ConfigFromEnv(func(k string) string {
			return map[string]string{"JWT_KMS_KEY_ARN": key, "JWT_CLOCK_SKEW": skew}[k]
		})
		if err != nil {
			t.Fatalf("JWT_CLOCK_SKEW=%s: %v", skew, err)
		}
		if len(cfg.Warnings) != 0 {
			t.Fatalf("unexpected warnings %q", cfg.Warnings)
		}
	}
}

// New holds a Config built in code to the rules ConfigFromEnv applies, and
// needs the envelope.
func TestNewChecksTheConfigurationAndTheEnvelope(t *testing.T) {
	s := newStack(t)
	bad := s.config()
	bad.KMSKeyARN = "alias/jwt"
	bad.MaxTokenLifetime = 0
	bad.RSABits = 1024
	_, err := jwtstrategy.New(bad, jwtstrategy.Deps{Envelope: s.env})
	if rotation.ClassOf(err) != rotation.ClassConfiguration {
		t.Fatalf("got %v; want a configuration error", err)
	}
	for _, name := range []string{"JWT_KMS_KEY_ARN", "JWT_MAX_TOKEN_LIFETIME", "JWT_RSA_BITS"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
	if _, err := jwtstrategy.New(s.config(), jwtstrategy.Deps{}); rotation.ClassOf(err) != rotation.ClassConfiguration || !strings.Contains(err.Error(), "Envelope") {
		t.Fatalf("without an envelope: got %v; want a configuration error", err)
	}
	cfg := s.config()
	cfg.RSABits = 0 // read as the default
	if _, err := jwtstrategy.New(cfg, jwtstrategy.Deps{Envelope: s.env}); err != nil {
		t.Fatalf("a valid configuration was refused: %v", err)
	}
}

// TestNoKeyMaterialReachesLogsErrorsOrNotifications rotates (successfully,
// then with a damaged key) and searches the engine's log, every
// notification and the error for any sealed private key or PKCS #8 text.
func TestNoKeyMaterialReachesLogsErrorsOrNotifications(t *testing.T) {
	s := newStack(t)
	c := newClock()
	r := s.rig(t, s.config(), c)
	secret, d0 := bootstrapped(t, r)
	c.Add(48 * time.Hour)
	r.rotate(t, secret)
	d1 := s.doc(t, secret)
	d1.Next.PrivateKey = flip(d1.Next.PrivateKey)
	b, _ := d1.Marshal()
	s.putCurrent(t, secret, b)
	err := failRotation(t, r, secret, rotation.ClassInput, "damaged")
	r.mu.Lock()
	notes, _ := json.Marshal(r.notified)
	r.mu.Unlock()
	haystack := r.logs.String() + string(notes) + err.Error()
	if !strings.Contains(haystack, "rotation step completed") || len(r.notified) == 0 {
		t.Fatal("no log or notification captured; the test would prove nothing")
	}
	for _, k := range []*jwks.SigningKey{d0.Active, d0.Next, d1.Active, d1.Next} {
		blob := strings.TrimPrefix(k.PrivateKey, "env1:")
		for i := 0; i+24 <= len(blob); i += 24 {
			if strings.Contains(haystack, blob[i:i+24]) {
				t.Fatalf("part of the sealed key of %s appears in logs, notifications or the error", k.KID)
			}
		}
	}
	for _, marker := range []string{"PRIVATE KEY", "env1:", "env2:"} {
		if strings.Contains(haystack, marker) {
			t.Fatalf("%q appears in logs, notifications or the error", marker)
		}
	}
}
