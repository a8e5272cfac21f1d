package main

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// TestALateFinishFollowedByAnImmediateRotationKeepsTheKeyUnderTheRuntimeEmulator
// drives the built bootstrap: createSecret, a pause longer than the removal
// delay (token lifetime 1 m, no skew, signer cache 1 s: 61 s — the shortest
// the function accepts, so this test waits in real time) in which a signer
// signs a token with the active key, the other steps, and at once another
// rotation. The key that signed the token must still be in the JWK Set, and
// the token must verify, until the token expires.
func TestALateFinishFollowedByAnImmediateRotationKeepsTheKeyUnderTheRuntimeEmulator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newE2E(t, "jwtrotate-late-finish")
	sm, fn := e.sm, e.lambdaARN
	rie := e.start(t, "JWT_KMS_KEY_ARN="+e.keyARN, "AWS_LAMBDA_FUNCTION_TIMEOUT=30", "LOG_LEVEL=warn",
		"JWT_MAX_TOKEN_LIFETIME=1m", "JWT_CLOCK_SKEW=0s", "JWT_SIGNER_CACHE=1s", "JWT_MIN_PUBLISH=1m")

	out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("jwt/late-finish-" + time.Now().Format("150405.000000")), SecretString: aws.String(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	secret := aws.ToString(out.ARN)
	d := &driver.Driver{SM: sm, Invoke: rie, LambdaARN: fn, Attempts: 1}
	if _, err := d.Rotate(ctx, secret, ""); err != nil { // bootstrap
		t.Fatalf("bootstrap: %v\n%s", err, rie.Logs())
	}
	signer, err := jwks.NewSigner(ctx, jwks.SignerConfig{Secrets: sm, SecretID: secret, Sealer: e.envelope(t), Refresh: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var token, kid string
	var expiry time.Time
	d.OnStep = func(sr driver.StepResult) {
		if sr.Step != rotation.StepCreate || sr.Err != nil || token != "" {
			return
		}
		time.Sleep(62 * time.Second) // longer than the 61 s removal delay
		expiry = time.Now().Add(time.Minute)
		tok, err := signer.Sign(ctx, jwt.RegisteredClaims{Subject: "in-the-pause", ExpiresAt: jwt.NewNumericDate(expiry)})
		if err != nil {
			t.Error(err)
			return
		}
		token, kid = tok, signer.KeyID()
	}
	if _, err := d.Rotate(ctx, secret, ""); err != nil {
		t.Fatalf("the slow rotation: %v\n%s", err, rie.Logs())
	}
	d.OnStep = nil
	if _, err := d.Rotate(ctx, secret, ""); err != nil {
		t.Fatalf("the immediate next rotation: %v\n%s", err, rie.Logs())
	}
	if token == "" {
		t.Fatal("no token was signed in the pause")
	}
	cur, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secret), VersionStage: aws.String(rotation.StageCurrent)})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jwks.ParseDocument([]byte(aws.ToString(cur.SecretString)))
	if err != nil {
		t.Fatal(err)
	}
	if !time.Now().Before(expiry) {
		t.Fatal("setup: the token expired before it could be checked")
	}
	if !doc.HasKID(kid) {
		t.Fatalf("key %s left the JWK Set while a token it signed is valid until %s", kid, expiry.Format(time.TimeOnly))
	}
	v, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: jwks.SecretSource(sm, secret), Algorithms: []string{jwks.ES256}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Parse(ctx, token, &jwt.RegisteredClaims{}); err != nil {
		t.Fatalf("the token signed in the pause does not verify: %v", err)
	}
}
