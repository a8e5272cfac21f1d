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
	ctx := context.Background()
	e := newE2E(t, "jwtrotate-e2e")
	sm, keyARN, fn := e.sm, e.keyARN, e.lambdaARN
	start := func(env ...string) *testenv.RIE { return e.start(t, env...) }
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
	signer, err := jwks.NewSigner(ctx, jwks.SignerConfig{Secrets: sm, SecretID: secret, Sealer: e.envelope(t)})
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

// e2e is the local stack an end-to-end test runs the built function on:
// moto's Secrets Manager and KMS, a KMS key made for the test, a no-op
// function registered for RotateSecret, and the bootstrap binary.
type e2e struct {
	moto      *testenv.Moto
	sm        *secretsmanager.Client
	kms       *kms.Client
	keyARN    string
	lambdaARN string
	bootstrap string
}

func newE2E(t *testing.T, name string) *e2e {
	t.Helper()
	m := testenv.SharedMoto(t)
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := &e2e{moto: m, sm: secretsmanager.NewFromConfig(cfg), kms: kms.NewFromConfig(cfg)}
	key, err := e.kms.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	e.keyARN = aws.ToString(key.KeyMetadata.Arn)
	if e.lambdaARN, err = m.RegisterNoopLambda(ctx, name); err != nil {
		t.Fatal(err)
	}
	e.bootstrap, err = testenv.BuildBootstrap("./functions/jwtrotate")
	testenv.Require(t, err)
	return e
}

// start runs the bootstrap under the runtime emulator with moto's
// environment and env; the test's cleanup stops it.
func (e *e2e) start(t *testing.T, env ...string) *testenv.RIE {
	t.Helper()
	rie, err := testenv.StartRIE(e.bootstrap, append(e.moto.Env(), env...))
	testenv.Require(t, err)
	t.Cleanup(rie.Stop)
	return rie
}

// envelope opens keys sealed under the test's KMS key, as a signer would.
func (e *e2e) envelope(t *testing.T) *envelope.Envelope {
	t.Helper()
	kp, err := envelope.NewKMSProvider(context.Background(), envelope.KMSConfig{Client: e.kms, KeyID: e.keyARN})
	if err != nil {
		t.Fatal(err)
	}
	env, err := envelope.New(envelope.Config{Provider: kp})
	if err != nil {
		t.Fatal(err)
	}
	return env
}
