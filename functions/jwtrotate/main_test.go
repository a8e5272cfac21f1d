package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/envelope"
	"github.com/rotation-suite/rotation/pkg/jwks"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestTheBuiltBootstrapRotatesUnderTheRuntimeEmulator builds the function as
// Lambda runs it, starts it under aws-lambda-rie pointed at moto, and lets
// the local driver play Secrets Manager: a bootstrap and a key rotation,
// after which a consumer signs with the active key and verifies against the
// published set; a bad setting fails every invocation with a configuration
// error.
func TestTheBuiltBootstrapRotatesUnderTheRuntimeEmulator(t *testing.T) {
	t.Parallel()
	m := testenv.SharedMoto(t)
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	kc := kms.NewFromConfig(cfg)
	key, err := kc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("jwtrotate e2e")})
	if err != nil {
		t.Fatal(err)
	}
	keyARN := aws.ToString(key.KeyMetadata.Arn)
	fn, err := m.RegisterNoopLambda(ctx, "jwtrotate-e2e")
	if err != nil {
		t.Fatal(err)
	}
	bootstrap, err := testenv.BuildBootstrap("./functions/jwtrotate")
	testenv.Require(t, err)
	start := func(env ...string) *testenv.RIE {
		rie, err := testenv.StartRIE(bootstrap, append(m.Env(), env...))
		testenv.Require(t, err)
		t.Cleanup(rie.Stop)
		return rie
	}
	rie := start("JWT_KMS_KEY_ARN="+keyARN, "AWS_LAMBDA_FUNCTION_TIMEOUT=30", "LOG_LEVEL=warn")

	name := "jwt/e2e-" + time.Now().Format("150405.000000")
	out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	secret := aws.ToString(out.ARN)
	d := &driver.Driver{SM: sm, Invoke: rie, LambdaARN: fn, Attempts: 1, OnStep: func(r driver.StepResult) { t.Logf("%s %s %v", r.Step, r.Duration, r.Err) }}
	for i := range 2 {
		if _, err := d.Rotate(ctx, secret, ""); err != nil {
			t.Fatalf("rotation %d under RIE: %v\n%s", i+1, err, rie.Logs())
		}
	}
	cur, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secret), VersionStage: aws.String("AWSCURRENT")})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jwks.ParseDocument([]byte(aws.ToString(cur.SecretString)))
	if err != nil || doc.Active == nil || len(doc.Retired) != 1 {
		t.Fatalf("after two rotations want active, next and one retired key: %v", err)
	}
	kp, err := envelope.NewKMSProvider(ctx, envelope.KMSConfig{Client: kc, KeyID: keyARN})
	if err != nil {
		t.Fatal(err)
	}
	env, err := envelope.New(envelope.Config{Provider: kp})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jwks.NewSigner(ctx, jwks.SignerConfig{Secrets: sm, SecretID: secret, Sealer: env})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signer.Sign(ctx, jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	v, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: jwks.SecretSource(sm, secret), Algorithms: []string{jwks.ES256}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Parse(ctx, tok, &jwt.RegisteredClaims{}); err != nil {
		t.Fatal(err)
	}
	if logs := rie.Logs(); strings.Contains(logs, doc.Active.PrivateKey[:40]) {
		t.Fatal("the function logged a sealed private key")
	}

	// A bad configuration fails every invocation, classified.
	bad := start("JWT_KMS_KEY_ARN="+keyARN, "JWT_ALGORITHM=HS256")
	_, err = (&driver.Driver{SM: sm, Invoke: bad, LambdaARN: fn, Attempts: 1}).Rotate(ctx, secret, "")
	if err == nil || !strings.Contains(err.Error(), "JWT_ALGORITHM") || !strings.Contains(err.Error(), "configuration") {
		t.Fatalf("want a configuration error naming JWT_ALGORITHM, got %v", err)
	}
}
