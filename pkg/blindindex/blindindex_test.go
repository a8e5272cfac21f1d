package blindindex_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/blindindex"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestIndexFromASecretsManagerKeyFindsEqualValuesOnly(t *testing.T) {
	ctx := context.Background()
	cfg, err := testenv.SharedMoto(t).AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	raw := bytes.Repeat([]byte{0x5a}, 32)
	name := "blind-index-key-test"
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(base64.StdEncoding.EncodeToString(raw))}); err != nil {
		t.Fatal(err)
	}
	k, err := blindindex.KeyFromSecret(ctx, sm, name)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%v %+v %#v %s", k, k, k, k) != strings.Repeat("blindindex.Key{[REDACTED]} ", 3)+"blindindex.Key{[REDACTED]}" {
		t.Fatalf("key prints as %v", k)
	}
	norm := func(b []byte) []byte { return bytes.ToUpper(bytes.ReplaceAll(b, []byte(" "), nil)) }
	tax, _ := blindindex.New(k, blindindex.Config{Table: "organizations", Column: "tax_id", Normalize: norm})
	acct, _ := blindindex.New(k, blindindex.Config{Table: "organizations", Column: "bank_account_number", Normalize: norm})
	a, b, c := tax.Of([]byte("AAACA1234F")), tax.Of([]byte("aaaca 1234f")), tax.Of([]byte("AAACA1234G"))
	if a != b || a == c || len(a) != 22 {
		t.Fatalf("equal values %q %q, different %q", a, b, c)
	}
	if acct.Of([]byte("AAACA1234F")) == a {
		t.Fatal("the same value indexes the same in two columns: columns are linkable")
	}
	k2, _ := blindindex.NewKey(bytes.Repeat([]byte{0x5b}, 32))
	other, _ := blindindex.New(k2, blindindex.Config{Table: "organizations", Column: "tax_id", Normalize: norm})
	if other.Of([]byte("AAACA1234F")) == a {
		t.Fatal("the index does not depend on the key")
	}
	short, _ := blindindex.New(k, blindindex.Config{Table: "organizations", Column: "tax_id", Bytes: 8})
	if len(short.Of([]byte("x"))) != 11 {
		t.Fatal("truncation")
	}
	if _, err := blindindex.New(k, blindindex.Config{Table: "t", Column: "c", Bytes: 4}); err == nil {
		t.Fatal("a 4-byte index was accepted")
	}
	if _, err := blindindex.NewKey(make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte key was accepted")
	}
}

func TestKeyAndIndexRedactAlsoWhenCopied(t *testing.T) {
	k, err := blindindex.NewKey(bytes.Repeat([]byte{0x5a}, 32))
	if err != nil {
		t.Fatal(err)
	}
	x, err := blindindex.New(k, blindindex.Config{Table: "t", Column: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprintf("%v %+v %#v %x", *k, *k, *k, *k); s != strings.Repeat("blindindex.Key{[REDACTED]} ", 3)+"blindindex.Key{[REDACTED]}" {
		t.Fatalf("a copied key prints as %s", s)
	}
	if s := fmt.Sprintf("%v %+v %x", *x, *x, *x); s != strings.Repeat("blindindex.Index{t.c} ", 2)+"blindindex.Index{t.c}" {
		t.Fatalf("a copied index prints as %s", s)
	}
}
