package jwtstrategy_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/functions/jwtrotate/jwtstrategy"
	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func signAndVerify(t *testing.T, s *stack, c *clock, secret, alg string) string {
	t.Helper()
	ctx := context.Background()
	signer, err := jwks.NewSigner(ctx, jwks.SignerConfig{Secrets: s.sm, SecretID: secret, Sealer: s.env, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	now := c.Now()
	tok, err := signer.Sign(ctx, jwt.RegisteredClaims{Subject: "user-1", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	v, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: jwks.SecretSource(s.sm, secret), Algorithms: []string{alg}, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Parse(ctx, tok, &jwt.RegisteredClaims{}); err != nil {
		t.Fatalf("%s token does not verify: %v", alg, err)
	}
	other := jwks.ES256
	if alg == jwks.ES256 {
		other = jwks.EdDSA
	}
	pinned, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: jwks.SecretSource(s.sm, secret), Algorithms: []string{other}, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pinned.Parse(ctx, tok, &jwt.RegisteredClaims{}); err == nil {
		t.Fatalf("a verifier pinned to %s accepted an %s token", other, alg)
	}
	return tok
}

func TestEveryAlgorithmBootstrapsRotatesSignsAndVerifies(t *testing.T) {
	s := newStack(t)
	cases := []struct {
		name, secretValue, cfgAlg, want string
		bits                            int
	}{
		{"ES256 default", `{}`, jwks.ES256, jwks.ES256, 0},
		{"RS256 2048 from the secret", `{"algorithm":"RS256"}`, jwks.ES256, jwks.RS256, 2048},
		{"RS256 3072 from the configuration", ``, jwks.RS256, jwks.RS256, 3072},
		{"EdDSA from the configuration", `{"schemaVersion":1}`, jwks.EdDSA, jwks.EdDSA, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			cfg := s.config()
			cfg.Algorithm = tc.cfgAlg
			if tc.bits != 0 {
				cfg.RSABits = tc.bits
			}
			r := s.rig(t, cfg, c)
			value := tc.secretValue
			if value == "" {
				value = "{}" // CreateSecret needs a value; an empty one is covered by ParseDocument's tests
			}
			secret := s.newSecret(t, value, nil)
			r.rotate(t, secret)
			c.Add(48 * time.Hour)
			r.rotate(t, secret)
			d := s.doc(t, secret)
			if d.Algorithm != tc.want || d.Active.Alg != tc.want || d.Next.Alg != tc.want {
				t.Fatalf("algorithm %s/%s/%s, want %s", d.Algorithm, d.Active.Alg, d.Next.Alg, tc.want)
			}
			var m map[string]any
			_ = json.Unmarshal(d.Active.PublicJWK, &m)
			if tc.want == jwks.RS256 {
				n, _ := base64.RawURLEncoding.DecodeString(m["n"].(string))
				if len(n)*8 != tc.bits {
					t.Fatalf("RSA modulus has %d bits, want %d", len(n)*8, tc.bits)
				}
			}
			if tc.want == jwks.EdDSA && (m["kty"] != "OKP" || m["crv"] != "Ed25519") {
				t.Fatalf("EdDSA JWK %v", m)
			}
			tok := signAndVerify(t, s, c, secret, tc.want)
			if tc.want == jwks.ES256 {
				sig, err := base64.RawURLEncoding.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
				if err != nil || len(sig) != 64 {
					t.Fatalf("an ES256 signature must be raw R||S of 64 bytes, is %d bytes (%v)", len(sig), err)
				}
			}
			if got := handThumbprint(t, d.Active.PublicJWK); got != d.Active.KID {
				t.Fatalf("kid %s, hand thumbprint %s", d.Active.KID, got)
			}
		})
	}
}

func tag(t *testing.T, s *stack, secret, key, value string) {
	t.Helper()
	_, err := s.sm.TagResource(context.Background(), &secretsmanager.TagResourceInput{SecretId: aws.String(secret), Tags: []smtypes.Tag{{Key: aws.String(key), Value: aws.String(value)}}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestEmergencyRekeyReplacesBothKeysDropsTheLeakedKidsAndSaysSoOnce(t *testing.T) {
	s := newStack(t)
	c := newClock()
	r := s.rig(t, s.config(), c)
	secret := s.newSecret(t, `{}`, nil)
	r.rotate(t, secret)
	c.Add(48 * time.Hour)
	r.rotate(t, secret)
	c.Add(10 * time.Minute)
	leaked := s.doc(t, secret)
	if len(leaked.Retired) != 1 {
		t.Fatalf("want one retired key before the re-key, have %d", len(leaked.Retired))
	}

	tag(t, s, secret, jwtstrategy.RekeyTag, "incident-42")
	r.rotate(t, secret)
	d := s.doc(t, secret)
	for _, kid := range []string{leaked.Active.KID, leaked.Next.KID} {
		if d.HasKID(kid) || d.Active.KID == kid || d.Next.KID == kid {
			t.Fatalf("the leaked kid %s survived the emergency re-key", kid)
		}
	}
	if !d.HasKID(leaked.Retired[0].KID) {
		t.Fatalf("a retired key that did not leak (its private key was already gone) must stay until its removal time")
	}
	if d.EmergencyRekey == nil || d.EmergencyRekey.Nonce != "incident-42" || !slices.Equal(d.EmergencyRekey.Dropped, []jwks.KeyRef{{KID: leaked.Active.KID}, {KID: leaked.Next.KID}}) {
		t.Fatalf("the handled re-key is not recorded: %+v", d.EmergencyRekey)
	}
	started := r.notifications(rotation.EventStarted)
	last := started[len(started)-1]
	if last.Details["mode"] != "emergency-rekey" || !strings.Contains(strings.Join(last.Warnings, " "), "EMERGENCY RE-KEY") || !strings.Contains(last.Details["droppedKids"], leaked.Active.KID) {
		t.Fatalf("the notification does not say it was an emergency re-key: %+v", last)
	}
	// The nonce is an identifier, not a secret: the notification carries it
	// in clear, so an operator can tie the re-key to the incident.
	if last.Details["rekeyNonce"] != "incident-42" || !strings.Contains(strings.Join(last.Warnings, " "), jwtstrategy.RekeyTag+"=incident-42") {
		t.Fatalf("the notification does not show the nonce in clear: %+v", last)
	}
	signAndVerify(t, s, c, secret, jwks.ES256)

	// The tag stays; the next rotation is a normal one.
	c.Add(48 * time.Hour)
	r.rotate(t, secret)
	after := s.doc(t, secret)
	if after.Active.KID != d.Next.KID || !after.HasKID(d.Active.KID) {
		t.Fatalf("the rotation after a re-key must be normal: active %s (want %s)", after.Active.KID, d.Next.KID)
	}
	started = r.notifications(rotation.EventStarted)
	if m := started[len(started)-1].Details["mode"]; m != "rotate" {
		t.Fatalf("mode %q after the re-key was handled, want rotate", m)
	}
	// A new nonce asks for another re-key.
	tag(t, s, secret, jwtstrategy.RekeyTag, "incident-43")
	c.Add(time.Hour)
	r.rotate(t, secret)
	if again := s.doc(t, secret); again.HasKID(after.Active.KID) || again.EmergencyRekey.Nonce != "incident-43" {
		t.Fatalf("a new nonce did not re-key")
	}
}

func TestAScheduleShorterThanMinPublishIsWarnedAbout(t *testing.T) {
	s := newStack(t)
	c := newClock()
	cfg := s.config()
	cfg.MinPublish = 40 * 24 * time.Hour // the driver schedules every 30 days
	r := s.rig(t, cfg, c)
	secret := s.newSecret(t, `{}`, nil)
	r.rotate(t, secret)
	c.Add(time.Hour)
	r.rotate(t, secret)
	started := r.notifications(rotation.EventStarted)
	w := strings.Join(started[len(started)-1].Warnings, "\n")
	if !strings.Contains(w, "shorter than JWT_MIN_PUBLISH") || !strings.Contains(w, "published for only 1h0m0s") {
		t.Fatalf("want warnings about the schedule and the early promotion, have %q", w)
	}
}

func TestThePublicJWKSSecretReceivesThePendingSetAndServesVerifiersWithoutPrivateKeys(t *testing.T) {
	s := newStack(t)
	c := newClock()
	cfg := s.config()
	public := s.newSecret(t, `{"keys":[]}`, nil)
	cfg.PublicJWKSSecretARN = public
	r := s.rig(t, cfg, c)
	secret := s.newSecret(t, `{}`, nil)
	ctx := context.Background()
	for i := range 3 {
		res, err := r.driver.Rotate(ctx, secret, "")
		if err != nil {
			t.Fatal(err)
		}
		c.Add(48 * time.Hour)
		d := s.doc(t, secret)
		_, pub := s.current(t, public)
		var set jwks.Set
		if err := json.Unmarshal([]byte(pub), &set); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(setKIDs(&set), setKIDs(d.JWKS)) {
			t.Fatalf("rotation %d: the public set %v differs from the secret's %v", i, setKIDs(&set), setKIDs(d.JWKS))
		}
		if strings.Contains(pub, "privateKey") || strings.Contains(pub, `"d"`) {
			t.Fatalf("the public JWKS secret holds private material")
		}
		out, err := s.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(public), VersionId: aws.String(jwtstrategy.PublicToken(res.Token))})
		if err != nil || aws.ToString(out.SecretString) != pub {
			t.Fatalf("the public version is not under the token derived from the rotation token: %v", err)
		}
	}
	signer, err := jwks.NewSigner(ctx, jwks.SignerConfig{Secrets: s.sm, SecretID: secret, Sealer: s.env, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signer.Sign(ctx, jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(c.Now().Add(time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	v, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: jwks.SecretSource(s.sm, public), Algorithms: []string{jwks.ES256}, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Parse(ctx, tok, &jwt.RegisteredClaims{}); err != nil {
		t.Fatalf("a verifier over the public JWKS secret rejects the signer's token: %v", err)
	}
}

func TestAMissingPublicJWKSSecretIsAConfigurationError(t *testing.T) {
	s := newStack(t)
	cfg := s.config()
	cfg.PublicJWKSSecretARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-public-jwks-AbCdEf"
	r := s.rig(t, cfg, newClock())
	secret := s.newSecret(t, `{}`, nil)
	failRotation(t, r, secret, rotation.ClassConfiguration, "JWT_PUBLIC_JWKS_SECRET_ARN")
}

// In a configuration test (RotateImmediately=false) the service runs
// testSecret with an empty pending version: the current keys must open and
// verify, and a new secret proves the KMS key seals and opens.
func TestTheConfigurationTestOpensAndVerifiesTheCurrentKeys(t *testing.T) {
	s := newStack(t)
	c := newClock()
	cfg := s.config()
	r := s.rig(t, cfg, c)
	secret, d := bootstrapped(t, r)
	st := s.strategy(t, cfg)
	name := secret[strings.Index(secret, ":secret:")+8 : strings.LastIndexByte(secret, '-')]
	ctx := context.Background()
	b, _ := d.Marshal()
	cur := &rotation.Version{ID: "v1", Value: b}
	resp, err := st.Test(ctx, &rotation.TestRequest{Secret: rotation.SecretInfo{ARN: secret, Name: name}, Token: "t", Current: cur, Pending: cur, ConfigTest: true, Now: c.Now()})
	if err != nil {
		t.Fatalf("config test of a rotated secret: %v", err)
	}
	if resp.Details["activeKid"] != d.Active.KID {
		t.Fatalf("details %v", resp.Details)
	}
	// Under another secret's name the keys' context does not match.
	_, err = st.Test(ctx, &rotation.TestRequest{Secret: rotation.SecretInfo{ARN: secret, Name: name + "-copy"}, Token: "t", Current: cur, Pending: cur, ConfigTest: true, Now: c.Now()})
	if rotation.ClassOf(err) != rotation.ClassInput {
		t.Fatalf("config test under another name: %v", err)
	}
	empty := &rotation.Version{ID: "v0", Value: []byte(`{}`)}
	if _, err := st.Test(ctx, &rotation.TestRequest{Secret: rotation.SecretInfo{ARN: secret, Name: name}, Token: "t", Current: empty, Pending: empty, ConfigTest: true, Now: c.Now()}); err != nil {
		t.Fatalf("config test of a new secret: %v", err)
	}
}

// recordingStore fails the test if anything is written.
type recordingStore struct {
	rotation.Store
	t *testing.T
}

func (r recordingStore) PutSecret(context.Context, string, string, []byte) error {
	r.t.Fatal("setSecret published a set that lacks a signing key")
	return nil
}

// setSecret refuses to publish a pending set that would drop the key that
// signs now or the one that signs next (outside an emergency re-key).
func TestSetSecretNeverPublishesASetThatDropsASigningKey(t *testing.T) {
	s := newStack(t)
	c := newClock()
	cfg := s.config()
	cfg.PublicJWKSSecretARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:public-AbCdEf"
	r := s.rig(t, s.config(), c)
	_, cur := bootstrapped(t, r)
	_, unrelated := bootstrapped(t, r)
	cb, _ := cur.Marshal()
	pb, _ := unrelated.Marshal()
	st := s.strategy(t, cfg)
	_, err := st.Set(context.Background(), &rotation.SetRequest{
		Secret: rotation.SecretInfo{Name: "x"}, Token: "t", Now: c.Now(), Store: recordingStore{t: t},
		Current: &rotation.Version{Value: cb}, Pending: &rotation.Version{Value: pb},
	})
	if rotation.ClassOf(err) != rotation.ClassInput || !strings.Contains(err.Error(), "not publishing") {
		t.Fatalf("got %v", err)
	}
}

// Raising the token lifetime after a key retired keeps it published longer;
// lowering it never removes a key early.
func TestALongerRemovalDelayExtendsRetiredKeysAndAShorterOneDoesNotCutThem(t *testing.T) {
	s := newStack(t)
	c := newClock()
	cfg := s.config()
	secret, _ := bootstrapped(t, s.rig(t, cfg, c))
	c.Add(48 * time.Hour)
	s.rig(t, cfg, c).rotate(t, secret)
	retired := s.doc(t, secret).Retired[0]

	longer := cfg
	longer.MaxTokenLifetime = 10 * time.Hour
	c.Add(2 * time.Hour) // past the old removal time (1h17m), within the new one
	observed := c.Now()
	s.rig(t, longer, c).rotate(t, secret)
	d := s.doc(t, secret)
	if !d.HasKID(retired.KID) {
		t.Fatalf("a key retired 2h ago was removed although tokens may now live 10h")
	}
	// This rotation is the first to find the key retired in AWSCURRENT: its
	// removal clock starts here, with the delay now configured.
	for _, r := range d.Retired {
		if r.KID == retired.KID && !r.RemoveAfter.Equal(observed.Add(longer.RemovalDelay())) {
			t.Fatalf("removeAfter %s, want %s", r.RemoveAfter, observed.Add(longer.RemovalDelay()))
		}
	}
	c.Add(time.Hour)
	s.rig(t, cfg, c).rotate(t, secret) // back to 1h: the stored 10h+ time stands
	if !s.doc(t, secret).HasKID(retired.KID) {
		t.Fatalf("a shorter delay removed a key before its stored removal time")
	}
}
