package jwtstrategy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/internal/crashtest"
	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/pkg/jwks"
)

// TestEveryCrashPointConvergesAndNoVerifierLosesTheSigningKey fails every
// Secrets Manager and KMS call of a rotation (before it is made, and after
// it took effect), lets the service retry, and checks at the failure and at
// the end that the AWSCURRENT active key opens, signs, and is in both the
// AWSCURRENT JWK Set and the public-JWKS secret.
func TestEveryCrashPointConvergesAndNoVerifierLosesTheSigningKey(t *testing.T) {
	s := newStack(t)
	c := newClock()
	var publics sync.Map // secret ARN -> public-JWKS secret ARN
	ctx := context.Background()

	secretName := func(id string) (string, error) {
		out, err := s.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.Name), nil
	}
	publicHas := func(id, kid string) error {
		p, _ := publics.Load(id)
		_, v := s.current(t, p.(string))
		var set jwks.Set
		if err := json.Unmarshal([]byte(v), &set); err != nil {
			return err
		}
		d := jwks.Document{JWKS: &set}
		if !d.HasKID(kid) {
			return fmt.Errorf("the public JWKS secret lacks the signing kid %s", kid)
		}
		return nil
	}
	check := func(ctx context.Context, id string, value []byte) error {
		d, err := jwks.ParseDocument(value)
		if err != nil {
			return err
		}
		if d.Active == nil {
			return fmt.Errorf("no active key")
		}
		name, err := secretName(id)
		if err != nil {
			return err
		}
		key, err := jwks.Open(ctx, s.env, name, d.Active)
		if err != nil {
			return err
		}
		method, _ := jwks.SigningMethod(d.Active.Alg)
		tk := jwt.NewWithClaims(method, jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(c.Now().Add(time.Minute))})
		tk.Header["kid"] = d.Active.KID
		signed, err := tk.SignedString(key)
		if err != nil {
			return err
		}
		v, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: jwks.StaticSource(value), Algorithms: []string{d.Active.Alg}, Now: c.Now})
		if err != nil {
			return err
		}
		if _, err := v.Parse(ctx, signed, &jwt.RegisteredClaims{}); err != nil {
			return fmt.Errorf("the active key's token does not verify against AWSCURRENT's set: %w", err)
		}
		return publicHas(id, d.Active.KID)
	}
	h := crashtest.Harness{
		Setup: func(t *testing.T) (string, *driver.Driver) {
			cfg := s.config()
			cfg.PublicJWKSSecretARN = s.newSecret(t, `{"keys":[]}`, nil)
			r := s.rig(t, cfg, c)
			secret := s.newSecret(t, `{}`, nil)
			r.rotate(t, secret) // bootstrap: the crash points are in a key rotation
			publics.Store(secret, cfg.PublicJWKSSecretARN)
			c.Add(48 * time.Hour)
			return secret, r.driver
		},
		SM:    s.sm,
		Check: check,
		During: func(ctx context.Context, t *testing.T, id string, current []byte) {
			d, err := jwks.ParseDocument(current)
			if err != nil {
				t.Fatal(err)
			}
			if !d.HasKID(d.Active.KID) {
				t.Fatalf("AWSCURRENT's JWK Set lacks its own active kid")
			}
			if err := publicHas(id, d.Active.KID); err != nil {
				t.Fatal(err)
			}
		},
		Ops: []string{"secretsmanager:", "kms:"},
	}
	points := crashtest.Run(t, h)
	var kmsPoints int
	for _, p := range points {
		if len(p.Op) > 4 && p.Op[:4] == "kms:" {
			kmsPoints++
		}
	}
	if kmsPoints == 0 {
		t.Fatalf("no KMS call among the failure points")
	}
}
