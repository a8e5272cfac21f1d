package envelope

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/extcall"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

var payloadSizes = []int{0, 13, 4 << 10, 1 << 20}

func payload(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func roundTrip(t *testing.T, e *Envelope) {
	ctx := context.Background()
	ec := Context{"secret": "prod/jwt", "kid": "k1"}
	for _, n := range payloadSizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			pt := payload(t, n)
			blob, err := e.Encrypt(ctx, pt, ec)
			if err != nil {
				t.Fatal(err)
			}
			if n >= 16 && bytes.Contains(blob, pt[:16]) {
				t.Fatal("plaintext visible in the blob")
			}
			got, err := e.Decrypt(ctx, blob, Context{"kid": "k1", "secret": "prod/jwt"})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, pt) {
				t.Fatal("round trip changed the payload")
			}
			h, err := ParseHeader(blob)
			if err != nil {
				t.Fatal(err)
			}
			if h.Version != Version1 || h.Provider != e.p.ID() || h.BodyLen != n+TagSize || h.Context["kid"] != "k1" || len(h.Context) != 2 {
				t.Fatalf("header %+v", h)
			}
			// text form
			txt := EncodeText(blob)
			back, err := DecodeText(txt)
			if err != nil || !bytes.Equal(back, blob) {
				t.Fatalf("text form round trip: %v", err)
			}
		})
	}
}

func TestRoundTripWithKMSProviderAgainstMoto(t *testing.T) {
	c := motoKMS(t)
	arn := newKey(t, c, "")
	e := kmsEnvelope(t, c, arn, nil, nil)
	roundTrip(t, e)
	blob, err := e.Encrypt(context.Background(), []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := ParseHeader(blob)
	if h.KeyID != arn || h.Provider != ProviderKMS {
		t.Fatalf("header names %q/%s, want %q/aws-kms", h.KeyID, h.Provider, arn)
	}
}

func TestRoundTripWithLocalProvider(t *testing.T) {
	roundTrip(t, localEnvelope(t, nil))
}

func TestRoundTripWithCache(t *testing.T) {
	roundTrip(t, localEnvelope(t, &CacheConfig{MaxAge: 1 << 40}))
}

func TestEveryKMSCallGoesThroughRotationCall(t *testing.T) {
	c := motoKMS(t)
	arn := newKey(t, c, "alias/through-call")
	other := newKey(t, c, "")
	ctx, calls := counted()
	p, err := NewKMSProvider(ctx, KMSConfig{Client: c, KeyID: "alias/through-call", AllowedKeyIDs: []string{other}})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := New(Config{Provider: p, WriteVersion: Version1})
	ec := Context{"a": "b"}
	blob, err := e.Encrypt(ctx, []byte("secret"), ec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Decrypt(ctx, blob, ec); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ReWrap(ctx, blob, ec, other); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"kms:DescribeKey": 1, "kms:GenerateDataKey": 1, "kms:Decrypt": 1, "kms:ReEncrypt": 1}
	got := calls.Snapshot()
	for op, n := range want {
		if got[op] != n {
			t.Errorf("%s through rotation.Call: %d, want %d (all: %v)", op, got[op], n, got)
		}
	}
	if int(c.describe.Load()+c.generate.Load()+c.decrypt.Load()+c.reencrypt.Load()) != calls.Count("kms:") {
		t.Errorf("client saw calls that bypassed rotation.Call: %v", got)
	}
	if p.KeyARN() != arn {
		t.Errorf("alias resolved to %q, want %q", p.KeyARN(), arn)
	}
}

func TestAliasIsResolvedToKeyARNAtConstructionAndAllowListHoldsARNs(t *testing.T) {
	c := motoKMS(t)
	arn := newKey(t, c, "alias/resolve-me")
	e := kmsEnvelope(t, c, "alias/resolve-me", nil, nil)
	if c.describe.Load() != 1 {
		t.Fatalf("DescribeKey calls %d, want 1", c.describe.Load())
	}
	blob, err := e.Encrypt(context.Background(), []byte("v"), nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := ParseHeader(blob)
	if h.KeyID != arn {
		t.Fatalf("blob names %q, want the key ARN %q", h.KeyID, arn)
	}
	if e.p.Allowed("alias/resolve-me") {
		t.Fatal("an alias name is on the allow-list; only key ARNs belong there")
	}
	// A key ARN is used as is: no DescribeKey.
	_ = kmsEnvelope(t, c, arn, nil, nil)
	if c.describe.Load() != 1 {
		t.Fatalf("a key ARN cost a DescribeKey")
	}
}

func TestDecryptRefusesKeyNotOnAllowListWithoutCallingKMS(t *testing.T) {
	c := motoKMS(t)
	a, b := newKey(t, c, ""), newKey(t, c, "")
	ea := kmsEnvelope(t, c, a, nil, nil)
	eb := kmsEnvelope(t, c, b, nil, nil)
	ec := Context{"tenant": "t1"}
	blob, err := eb.Encrypt(context.Background(), []byte("under b"), ec)
	if err != nil {
		t.Fatal(err)
	}
	before := c.decrypt.Load()
	_, err = ea.Decrypt(context.Background(), blob, ec)
	wantKind(t, err, ErrKeyNotAllowed, "blob under a key not on the allow-list")
	if c.decrypt.Load() != before {
		t.Fatal("KMS Decrypt was called for a key not on the allow-list")
	}
	// Allowing b (an old key) lets a decrypt it.
	eab := kmsEnvelope(t, c, a, []string{b}, nil)
	if _, err := eab.Decrypt(context.Background(), blob, ec); err != nil {
		t.Fatal(err)
	}
}

func TestKMSProviderChecksTheKeyIdKMSReports(t *testing.T) {
	c := motoKMS(t)
	a, b := newKey(t, c, ""), newKey(t, c, "")
	p, err := NewKMSProvider(context.Background(), KMSConfig{Client: c, KeyID: a, AllowedKeyIDs: []string{b}})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := p.GenerateDataKey(context.Background(), Context{"x": "y"})
	if err != nil {
		t.Fatal(err)
	}
	// The wrapped key is under a; asking KMS to decrypt it as b must fail
	// (real KMS: IncorrectKeyException; moto: AccessDeniedException) — and
	// never return a key.
	got, err := p.DecryptDataKey(context.Background(), b, dk.Encrypted, Context{"x": "y"})
	if err == nil || got != nil {
		t.Fatal("decrypted a data key under the wrong key")
	}
	if !errors.Is(err, ErrAuthentication) && !errors.Is(err, ErrProvider) {
		t.Fatalf("error %v", err)
	}
}

func TestReWrapMovesTheDataKeyToAnotherKMSKeyAndKeepsTheBody(t *testing.T) {
	c := motoKMS(t)
	oldKey, newKeyARN, stranger := newKey(t, c, ""), newKey(t, c, ""), newKey(t, c, "")
	e := kmsEnvelope(t, c, oldKey, []string{newKeyARN}, nil)
	ctx := context.Background()
	ec := Context{"table": "payees", "column": "iban", "row": "42"}
	pt := []byte("DE89370400440532013000")
	blob, err := e.Encrypt(ctx, pt, ec)
	if err != nil {
		t.Fatal(err)
	}
	gen := c.generate.Load()
	moved, err := e.ReWrap(ctx, blob, ec, newKeyARN)
	if err != nil {
		t.Fatal(err)
	}
	if c.reencrypt.Load() != 1 || c.generate.Load() != gen {
		t.Fatalf("ReWrap made %d ReEncrypt and %d GenerateDataKey calls", c.reencrypt.Load(), c.generate.Load()-gen)
	}
	lo, _ := parse(blob)
	ln, _ := parse(moved)
	if !bytes.Equal(lo.aad, ln.aad) || !bytes.Equal(lo.body, ln.body) {
		t.Fatal("ReWrap changed the authenticated header or the body")
	}
	if string(ln.keyID) != newKeyARN || bytes.Equal(lo.edk, ln.edk) {
		t.Fatal("ReWrap did not replace the key section")
	}
	// Only the new key can open it now.
	onlyNew := kmsEnvelope(t, c, newKeyARN, nil, nil)
	got, err := onlyNew.Decrypt(ctx, moved, ec)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("decrypt after re-wrap: %v", err)
	}
	onlyOld := kmsEnvelope(t, c, oldKey, nil, nil)
	_, err = onlyOld.Decrypt(ctx, moved, ec)
	wantKind(t, err, ErrKeyNotAllowed, "re-wrapped blob with only the old key allowed")
	// Re-wrapping to a key this Envelope cannot decrypt with is refused.
	_, err = e.ReWrap(ctx, blob, ec, stranger)
	wantKind(t, err, ErrKeyNotAllowed, "re-wrap to a key not on the allow-list")
	// The context must match, as for Decrypt.
	_, err = e.ReWrap(ctx, blob, Context{"table": "payees", "column": "iban", "row": "43"}, newKeyARN)
	wantKind(t, err, ErrContextMismatch, "re-wrap under another context")
}

func TestReWrapWithLocalProvider(t *testing.T) {
	k1, k2 := fixedLocalKey(t, "k1", 1), fixedLocalKey(t, "k2", 2)
	e := localEnvelope(t, nil, k1, k2)
	ctx := context.Background()
	ec := Context{"a": "b"}
	blob, _ := e.Encrypt(ctx, []byte("payload"), ec)
	moved, err := e.ReWrap(ctx, blob, ec, "k2")
	if err != nil {
		t.Fatal(err)
	}
	onlyK2 := localEnvelope(t, nil, k2)
	if got, err := onlyK2.Decrypt(ctx, moved, ec); err != nil || string(got) != "payload" {
		t.Fatalf("decrypt after local re-wrap: %v", err)
	}
	_, err = onlyK2.Decrypt(ctx, blob, ec)
	wantKind(t, err, ErrKeyNotAllowed, "old local key not in the ring")
}

func TestKMSFailuresAreProviderErrorsWithARotationClass(t *testing.T) {
	c := motoKMS(t)
	missing := "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
	e := kmsEnvelope(t, c, missing, nil, nil)
	_, err := e.Encrypt(context.Background(), []byte("x"), nil)
	wantKind(t, err, ErrProvider, "GenerateDataKey under a key that does not exist")
	if cl := rotation.ClassOf(err); cl != rotation.ClassConfiguration {
		t.Fatalf("class %s, want configuration: %v", cl, err)
	}
	var re *extcall.Error
	if !errors.As(err, &re) || re.Op != "kms:GenerateDataKey" {
		t.Fatalf("no extcall.Error naming the call in %v", err)
	}

	// Unreachable endpoint: network class, after the SDK's own attempts.
	port, _ := testenv.FreePort()
	cfg, _ := testenv.SharedMoto(t).AWSConfig(context.Background())
	dead := kms.NewFromConfig(cfg, func(o *kms.Options) {
		o.BaseEndpoint = aws.String(fmt.Sprintf("http://127.0.0.1:%d", port))
		o.RetryMaxAttempts = 1
	})
	p, err := NewKMSProvider(context.Background(), KMSConfig{Client: dead, KeyID: missing})
	if err != nil {
		t.Fatal(err)
	}
	e2, _ := New(Config{Provider: p})
	_, err = e2.Encrypt(context.Background(), []byte("x"), nil)
	wantKind(t, err, ErrProvider, "unreachable KMS")
	if cl := rotation.ClassOf(err); cl != rotation.ClassNetwork {
		t.Fatalf("class %s, want network: %v", cl, err)
	}
}
