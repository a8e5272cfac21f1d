package jwtstrategy_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/pkg/jwks"
)

// handThumbprint computes the RFC 7638 thumbprint of a public JWK by hand:
// the required members only, in lexicographic order, no whitespace, then
// SHA-256 and base64url without padding (RFC 7638 §3.2, RFC 8037 §2 for OKP).
func handThumbprint(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var m map[string]string
	var loose map[string]any
	if err := json.Unmarshal(raw, &loose); err != nil {
		t.Fatal(err)
	}
	m = map[string]string{}
	for k, v := range loose {
		if s, ok := v.(string); ok {
			m[k] = s
		}
	}
	var canon string
	switch m["kty"] {
	case "EC":
		canon = `{"crv":"` + m["crv"] + `","kty":"EC","x":"` + m["x"] + `","y":"` + m["y"] + `"}`
	case "RSA":
		canon = `{"e":"` + m["e"] + `","kty":"RSA","n":"` + m["n"] + `"}`
	case "OKP":
		canon = `{"crv":"` + m["crv"] + `","kty":"OKP","x":"` + m["x"] + `"}`
	default:
		t.Fatalf("unexpected kty %q", m["kty"])
	}
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

type issued struct {
	name   string
	token  string
	kid    string
	expiry time.Time
}

// TestThreeRotationsKeepEveryUnexpiredTokenVerifiableAndPrePublishTheNextKey
// runs a bootstrap and three rotations on a controlled clock. Before each
// rotation the consumer Signer signs a token; right after it, the Signer
// still holds the outgoing key for its cache time and signs another. Every
// token verifies against AWSCURRENT's JWK Set at every moment until it
// expires; the key that becomes active was in the set one rotation earlier;
// a retired key leaves the set only once its removal time has passed.
func TestThreeRotationsKeepEveryUnexpiredTokenVerifiableAndPrePublishTheNextKey(t *testing.T) {
	s := newStack(t)
	c := newClock()
	cfg := s.config()
	r := s.rig(t, cfg, c)
	ctx := context.Background()
	t0 := c.Now()
	secret := s.newSecret(t, `{}`, nil)
	r.rotate(t, secret) // bootstrap
	doc := s.doc(t, secret)
	if doc.Active == nil || doc.Next == nil || !doc.HasKID(doc.Next.KID) {
		t.Fatalf("bootstrap must give an active and a published next key")
	}

	signer, err := jwks.NewSigner(ctx, jwks.SignerConfig{Secrets: s.sm, SecretID: secret, Sealer: s.env, Refresh: cfg.SignerCache, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: jwks.SecretSource(s.sm, secret), Algorithms: []string{jwks.ES256}, Refresh: 1000 * time.Hour, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(name string) issued {
		now := c.Now()
		exp := now.Add(cfg.MaxTokenLifetime)
		tok, err := signer.Sign(ctx, jwt.RegisteredClaims{Subject: name, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp)})
		if err != nil {
			t.Fatal(err)
		}
		return issued{name: name, token: tok, kid: signer.KeyID(), expiry: exp}
	}
	var tokens []issued
	// checkAll verifies every unexpired token at now and at the last second
	// before it expires or the next rotation happens, whichever comes first.
	checkAll := func(until time.Time) {
		t.Helper()
		back := c.Now()
		defer c.Set(back)
		for _, tk := range tokens {
			for _, at := range []time.Time{back, tk.expiry.Add(-time.Second)} {
				if at.Before(back) || !at.Before(until) || !at.Before(tk.expiry) {
					continue
				}
				c.Set(at)
				if _, err := verifier.Parse(ctx, tk.token, &jwt.RegisteredClaims{}, jwt.WithLeeway(cfg.ClockSkew)); err != nil {
					t.Errorf("token %s (kid %s, expires %s) does not verify at %s: %v", tk.name, tk.kid, tk.expiry.Format("15:04"), at.Format("15:04:05"), err)
				}
			}
		}
	}

	offsets := []time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour}
	for i, off := range offsets {
		at := t0.Add(off)
		c.Set(at.Add(-time.Minute))
		before := sign("before-rotation-" + string(rune('1'+i)))
		tokens = append(tokens, before)
		prev := s.doc(t, secret)
		if before.kid != prev.Active.KID {
			t.Fatalf("the signer (refreshed) signs with %s, AWSCURRENT's active key is %s", before.kid, prev.Active.KID)
		}

		c.Set(at)
		r.rotate(t, secret)
		cur := s.doc(t, secret)
		if err := verifier.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if cur.Active.KID != prev.Next.KID || !prev.HasKID(cur.Active.KID) {
			t.Fatalf("rotation %d: the new active key %s was not the published next key %s of the previous version", i+1, cur.Active.KID, prev.Next.KID)
		}
		if prev.HasKID(cur.Next.KID) {
			t.Fatalf("rotation %d: the new next key must be fresh", i+1)
		}
		if !cur.HasKID(prev.Active.KID) {
			t.Fatalf("rotation %d: the outgoing active key %s left the JWK Set at once", i+1, prev.Active.KID)
		}
		for _, old := range prev.Retired {
			kept := cur.HasKID(old.KID)
			due := !c.Now().Before(old.RemoveAfter)
			if old.RetiredAt.Equal(prev.Active.ActivatedAt) {
				due = false // retired by prev's promotion: its clock starts now
			}
			if kept == due {
				t.Fatalf("rotation %d at %s: retired key %s (remove after %s) kept=%v", i+1, c.Now().Format("15:04"), old.KID, old.RemoveAfter.Format("15:04"), kept)
			}
		}
		for _, rk := range cur.Retired {
			// The key this rotation retired: removeAfter is provisional,
			// retiredAt + lifetime + skew + signer cache. The key the
			// previous rotation retired was first found retired in
			// AWSCURRENT by this rotation (after that promotion): its clock
			// starts no earlier than now.
			want := rk.RetiredAt.Add(cfg.RemovalDelay())
			if rk.KID == prev.Active.KID && !rk.RetiredAt.Equal(cur.Active.ActivatedAt) {
				t.Fatalf("retired key %s: the key this rotation retired must carry its activation stamp", rk.KID)
			}
			for _, pr := range prev.Retired {
				if pr.KID == rk.KID && pr.RetiredAt.Equal(prev.Active.ActivatedAt) {
					want = c.Now().Add(cfg.RemovalDelay())
				}
			}
			if !rk.RemoveAfter.Equal(want) {
				t.Fatalf("retired key %s: removeAfter %s, want %s", rk.KID, rk.RemoveAfter, want)
			}
		}
		for _, raw := range cur.JWKS.Keys {
			k, err := jwks.ParsePublicJWK(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := handThumbprint(t, raw); got != k.KeyID {
				t.Fatalf("kid %s is not the hand-computed RFC 7638 thumbprint %s", k.KeyID, got)
			}
		}

		// The signer keeps the outgoing key for its cache time.
		c.Set(at.Add(10 * time.Minute))
		late := sign("after-rotation-" + string(rune('1'+i)))
		if late.kid != prev.Active.KID {
			t.Fatalf("within its cache time the signer should still use %s, used %s", prev.Active.KID, late.kid)
		}
		if !cur.HasKID(late.kid) {
			t.Fatalf("a key a signer still uses (%s) is not in the JWK Set", late.kid)
		}
		tokens = append(tokens, late)
		c.Set(at)
		next := at.Add(1000 * time.Hour)
		if i+1 < len(offsets) {
			next = t0.Add(offsets[i+1])
		}
		checkAll(next)
	}
	// The first active key was removed by the last rotation, never earlier;
	// the second, retired by the promotion of the version the last rotation
	// started from, stays until the removal delay has passed since then.
	final := s.doc(t, secret)
	if final.HasKID(doc.Active.KID) {
		t.Fatalf("a key retired more than its removal time ago is still published")
	}
	if !final.HasKID(doc.Next.KID) {
		t.Fatalf("the key the last rotation first found retired was removed at once")
	}
	ids := setKIDs(final.JWKS)
	if !slices.Contains(ids, final.Active.KID) || !slices.Contains(ids, final.Next.KID) {
		t.Fatalf("final set %v lacks the active or next key", ids)
	}
}
