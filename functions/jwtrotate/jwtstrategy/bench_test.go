package jwtstrategy_test

import (
	"context"
	"crypto"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/functions/jwtrotate/jwtstrategy"
	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

var benchAlgs = []struct {
	name, alg string
	bits      int
}{
	{"ES256", jwks.ES256, 0},
	{"RS256-2048", jwks.RS256, 2048},
	{"RS256-3072", jwks.RS256, 3072},
	{"EdDSA", jwks.EdDSA, 0},
}

func BenchmarkGenerateKey(b *testing.B) {
	for _, a := range benchAlgs {
		b.Run(a.name, func(b *testing.B) {
			// RSA key generation searches for primes: its time varies a
			// lot, so report the slowest run as well as the mean.
			var slowest time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := jwtstrategy.GenerateKey(a.alg, a.bits); err != nil {
					b.Fatal(err)
				}
				slowest = max(slowest, time.Since(t0))
			}
			b.ReportMetric(float64(slowest.Microseconds())/1000, "max-ms")
		})
	}
}

func benchKey(b *testing.B, alg string, bits int) (crypto.Signer, *jwks.Verifier, string) {
	key, err := jwtstrategy.GenerateKey(alg, bits)
	if err != nil {
		b.Fatal(err)
	}
	jwk, kid, err := jwks.PublicJWK(key.Public(), alg)
	if err != nil {
		b.Fatal(err)
	}
	set := []byte(`{"keys":[` + string(jwk) + `]}`)
	v, err := jwks.NewVerifier(context.Background(), jwks.VerifierConfig{Source: jwks.StaticSource(set), Algorithms: []string{alg}, Refresh: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	return key, v, kid
}

func benchToken(b *testing.B, key crypto.Signer, alg, kid string) string {
	m, _ := jwks.SigningMethod(alg)
	t := jwt.NewWithClaims(m, jwt.RegisteredClaims{Subject: "user-1", Issuer: "bench", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkSign(b *testing.B) {
	for _, a := range benchAlgs {
		b.Run(a.name, func(b *testing.B) {
			key, _, kid := benchKey(b, a.alg, a.bits)
			for b.Loop() {
				benchToken(b, key, a.alg, kid)
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	for _, a := range benchAlgs {
		b.Run(a.name, func(b *testing.B) {
			key, v, kid := benchKey(b, a.alg, a.bits)
			tok := benchToken(b, key, a.alg, kid)
			for b.Loop() {
				if _, err := v.Parse(ctx, tok, &jwt.RegisteredClaims{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRotation runs whole rotations (four steps through the engine and
// the local driver) against moto, counting Secrets Manager and KMS calls.
func BenchmarkRotation(b *testing.B) {
	for _, a := range []struct {
		name, alg string
		bits      int
		public    bool
	}{{"ES256", jwks.ES256, 0, false}, {"ES256+public-jwks", jwks.ES256, 0, true}, {"RS256-3072", jwks.RS256, 3072, false}} {
		b.Run(a.name, func(b *testing.B) {
			s := newStack(b)
			c := newClock()
			cfg := s.config()
			cfg.Algorithm, cfg.RSABits = a.alg, a.bits
			if a.public {
				cfg.PublicJWKSSecretARN = s.newSecret(b, `{"keys":[]}`, nil)
			}
			r := s.rig(b, cfg, c)
			secret := s.newSecret(b, `{}`, nil)
			r.rotate(b, secret)
			var counter rotation.CallCounter
			r.driver.Wrap = func(ctx context.Context, _ int, _ rotation.Step) context.Context {
				return rotation.WithCallObserver(ctx, counter.Observe)
			}
			n := 0
			for b.Loop() {
				c.Add(48 * time.Hour)
				r.rotate(b, secret)
				n++
			}
			b.ReportMetric(float64(counter.Count("secretsmanager:"))/float64(n), "sm-calls/op")
			b.ReportMetric(float64(counter.Count("kms:"))/float64(n), "kms-calls/op")
			snap := counter.Snapshot()
			for op, k := range snap {
				snap[op] = k / n
			}
			b.Logf("calls per rotation: %v", fmt.Sprint(snap))
		})
	}
}
