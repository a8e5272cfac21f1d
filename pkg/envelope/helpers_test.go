package envelope

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// countingKMS is the real SDK client (talking to moto) with call counters.
type countingKMS struct {
	*kms.Client
	generate, decrypt, reencrypt, describe atomic.Int64
}

func (c *countingKMS) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, o ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	c.generate.Add(1)
	return c.Client.GenerateDataKey(ctx, in, o...)
}

func (c *countingKMS) Decrypt(ctx context.Context, in *kms.DecryptInput, o ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	c.decrypt.Add(1)
	return c.Client.Decrypt(ctx, in, o...)
}

func (c *countingKMS) ReEncrypt(ctx context.Context, in *kms.ReEncryptInput, o ...func(*kms.Options)) (*kms.ReEncryptOutput, error) {
	c.reencrypt.Add(1)
	return c.Client.ReEncrypt(ctx, in, o...)
}

func (c *countingKMS) DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, o ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	c.describe.Add(1)
	return c.Client.DescribeKey(ctx, in, o...)
}

// motoKMS returns a counting client against the shared moto server.
func motoKMS(t testing.TB) *countingKMS {
	t.Helper()
	m := testenv.SharedMoto(t)
	cfg, err := m.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &countingKMS{Client: kms.NewFromConfig(cfg)}
}

// newKey creates a KMS key (and optionally an alias) and returns its ARN.
func newKey(t testing.TB, c *countingKMS, alias string) string {
	t.Helper()
	ctx := context.Background()
	out, err := c.Client.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if alias != "" {
		if _, err := c.Client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: out.KeyMetadata.KeyId}); err != nil {
			t.Fatal(err)
		}
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

func kmsEnvelope(t testing.TB, c *countingKMS, keyID string, allowed []string, cache *CacheConfig) *Envelope {
	t.Helper()
	p, err := NewKMSProvider(context.Background(), KMSConfig{Client: c, KeyID: keyID, AllowedKeyIDs: allowed})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Provider: p, Cache: cache, WriteVersion: Version1})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func fixedLocalKey(t testing.TB, id string, fill byte) *LocalKey {
	t.Helper()
	k, err := NewLocalKey(id, bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The tests that predate format 2 write format 1 (kmsEnvelope,
// localEnvelope): they keep proving that format's writer and reader. The
// format-2 tests use kmsEnvelope2 and localEnvelope2.
func localEnvelope(t testing.TB, cache *CacheConfig, keys ...*LocalKey) *Envelope {
	t.Helper()
	if len(keys) == 0 {
		keys = []*LocalKey{fixedLocalKey(t, "dev-1", 0x11)}
	}
	p, err := NewLocalProvider(keys[0], keys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Provider: p, Cache: cache, WriteVersion: Version1})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// wantKind fails unless err is an *Error of kind.
func wantKind(t testing.TB, err, kind error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, kind)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %T %q is not an *envelope.Error", what, err, err)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("%s: error %q, want kind %v", what, err, kind)
	}
}

// counted returns a context whose rotation.Call calls are counted.
func counted() (context.Context, *rotation.CallCounter) {
	c := &rotation.CallCounter{}
	return rotation.WithCallObserver(context.Background(), c.Observe), c
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
