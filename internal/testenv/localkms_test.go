package testenv

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

func TestLocalKMSAnswersOnLoopbackAndStopRemovesItsData(t *testing.T) {
	l, err := StartLocalKMS()
	Require(t, err)
	ctx := context.Background()
	cfg, err := l.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(l.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("endpoint %s", l.Endpoint)
	}
	c := kms.NewFromConfig(cfg)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: key.KeyMetadata.Arn, KeySpec: types.DataKeySpecAes256, EncryptionContext: map[string]string{"a": "b"}})
	if err != nil || len(out.Plaintext) != 32 || aws.ToString(out.KeyId) != aws.ToString(key.KeyMetadata.Arn) {
		t.Fatalf("GenerateDataKey: %v", err)
	}
	l.Stop()
	if _, err := c.ListKeys(ctx, &kms.ListKeysInput{}); err == nil {
		t.Fatal("local-kms still answers after Stop")
	}
}
