package jwtstrategy_test

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// TestARetiredKeyIsTimedFromThePromotionNotFromCreateSecret: createSecret,
// a 70 s pause in which the signer (AWSCURRENT unchanged) signs a token, the
// other steps, and an immediate next rotation. The key that signed the
// token stopped signing at the promotion, not at createSecret, so it must
// stay in the JWK Set until the token expires (lifetime 1 m, skew 2 s,
// signer cache 2 s: a removal delay of 64 s, shorter than the pause).
func TestARetiredKeyIsTimedFromThePromotionNotFromCreateSecret(t *testing.T) {
	s := newStack(t)
	c := newClock()
	cfg := s.config()
	cfg.MaxTokenLifetime, cfg.ClockSkew, cfg.SignerCache = time.Minute, 2*time.Second, 2*time.Second
	r := s.rig(t, cfg, c)
	ctx := context.Background()
	secret, _ := bootstrapped(t, r)
	c.Add(48 * time.Hour)

	signer, err := jwks.NewSigner(ctx, jwks.SignerConfig{Secrets: s.sm, SecretID: secret, Sealer: s.env, Refresh: cfg.SignerCache, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	var token, kid string
	var expiry time.Time
	slow := &driver.Driver{SM: s.sm, Invoke: r.engine, LambdaARN: s.lambda, OnStep: func(sr driver.StepResult) {
		if sr.Step != rotation.StepCreate || sr.Err != nil || token != "" {
			return
		}
		c.Add(70 * time.Second)
		now := c.Now()
		expiry = now.Add(cfg.MaxTokenLifetime)
		tok, err := signer.Sign(ctx, jwt.RegisteredClaims{Subject: "in-the-pause", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(expiry)})
		if err != nil {
			t.Error(err)
			return
		}
		token, kid = tok, signer.KeyID()
	}}
	before := s.doc(t, secret)
	if _, err := slow.Rotate(ctx, secret, ""); err != nil {
		t.Fatal(err)
	}
	if token == "" || kid != before.Active.KID {
		t.Fatalf("setup: the token in the pause was signed by %q, want the active key %s", kid, before.Active.KID)
	}
	r.rotate(t, secret) // at once

	d := s.doc(t, secret)
	if !d.HasKID(kid) {
		t.Fatalf("key %s left the JWK Set while a token it signed is valid until %s (now %s)", kid, expiry.Format(time.TimeOnly), c.Now().Format(time.TimeOnly))
	}
	verifier, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: jwks.SecretSource(s.sm, secret), Algorithms: []string{jwks.ES256}, Refresh: 1000 * time.Hour, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	c.Set(expiry.Add(-time.Second))
	if _, err := verifier.Parse(ctx, token, &jwt.RegisteredClaims{}, jwt.WithLeeway(cfg.ClockSkew)); err != nil {
		t.Fatalf("the token signed in the pause does not verify a second before it expires: %v", err)
	}
}
