package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func TestRegisterNoopLambdaLetsMotoStartARotationWithAPlaceholder(t *testing.T) {
	m := SharedMoto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	arn, err := m.RegisterNoopLambda(ctx, "noop-rotation-probe")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(arn, "arn:aws:lambda:") {
		t.Fatalf("ARN %q", arn)
	}
	again, err := m.RegisterNoopLambda(ctx, "noop-rotation-probe")
	if err != nil || again != arn {
		t.Fatalf("second registration: %q, %v; want %q", again, err, arn)
	}
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	name := "noop-lambda-probe-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	tok := "00000000-0000-4000-8000-000000000001"
	if _, err := sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(name), RotationLambdaARN: aws.String(arn), ClientRequestToken: aws.String(tok)}); err != nil {
		t.Fatal(err)
	}
	d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if st := d.VersionIdsToStages[tok]; len(st) != 1 || st[0] != "AWSPENDING" {
		t.Fatalf("placeholder stages %v; want [AWSPENDING] (VersionIdsToStages %v)", st, d.VersionIdsToStages)
	}
}
