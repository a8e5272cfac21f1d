package testenv

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func TestMain(m *testing.M) { Main(m) }

func TestMotoAnswersTheSecretsManagerAPIAndResetWipesState(t *testing.T) {
	m := SharedMoto(t)
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("probe"), SecretString: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("probe")}); err != nil {
		t.Fatal(err)
	}
	if err := m.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("probe")}); err == nil {
		t.Fatal("secret survived a reset")
	}
}
