package jwks_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/internal/smfake"
	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/secretcache"
)

// BenchmarkThroughTheCache measures Parse and Sign as a service calls them:
// the set and the opened key come from a secretcache (a hit), ES256.
func BenchmarkThroughTheCache(b *testing.B) {
	ctx := context.Background()
	sealer := localSealer(b)
	sm := smfake.New()
	out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bench/jwt"), SecretString: aws.String("{}")})
	if err != nil {
		b.Fatal(err)
	}
	d, active, _ := document(b, sealer, aws.ToString(out.Name), time.Now())
	raw, _ := d.Marshal()
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: out.ARN, SecretString: aws.String(string(raw))}); err != nil {
		b.Fatal(err)
	}
	cache, _ := secretcache.New(secretcache.Config{Client: sm, TTL: time.Hour})
	v, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Cache: cache, SecretID: aws.ToString(out.ARN), Algorithms: []string{jwks.ES256}})
	if err != nil {
		b.Fatal(err)
	}
	s, err := jwks.NewSigner(ctx, jwks.SignerConfig{Cache: cache, SecretID: aws.ToString(out.ARN), Sealer: sealer})
	if err != nil {
		b.Fatal(err)
	}
	tok := sign(b, active, jwks.ES256, d.Active.KID, time.Now().Add(time.Hour))
	b.Run("Verifier.Parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Parse(ctx, tok, &jwt.RegisteredClaims{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	claims := jwt.RegisteredClaims{Subject: "bench", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}
	b.Run("Signer.Sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Sign(ctx, claims); err != nil {
				b.Fatal(err)
			}
		}
	})
}
