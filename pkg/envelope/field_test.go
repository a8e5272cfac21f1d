package envelope

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestFieldMovedToAnotherRowOrColumnFailsToDecrypt(t *testing.T) {
	e := localEnvelope(t, &CacheConfig{MaxAge: 1 << 40})
	ctx := context.Background()
	ref := FieldRef{Table: "payees", Column: "bank_account", RowID: "42"}
	text, err := e.EncryptField(ctx, ref, []byte("DE89370400440532013000"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(text, TextPrefix) {
		t.Fatalf("text form %q", text[:10])
	}
	got, err := e.DecryptField(ctx, ref, text)
	if err != nil || string(got) != "DE89370400440532013000" {
		t.Fatalf("same cell: %v", err)
	}
	for _, other := range []FieldRef{
		{Table: "payees", Column: "bank_account", RowID: "43"},
		{Table: "payees", Column: "routing_number", RowID: "42"},
		{Table: "vendors", Column: "bank_account", RowID: "42"},
	} {
		_, err := e.DecryptField(ctx, other, text)
		wantKind(t, err, ErrContextMismatch, fmt.Sprintf("moved to %+v", other))
	}
}

func TestFieldDecryptNeverPassesThroughNonCiphertext(t *testing.T) {
	e := localEnvelope(t, nil)
	ref := FieldRef{Table: "t", Column: "c", RowID: "1"}
	for _, v := range []string{"", "DE89370400440532013000", "env1:", "env1:!!!", "env2:AAAA", TextPrefix + "AQ"} {
		got, err := e.DecryptField(context.Background(), ref, v)
		if err == nil || got != nil {
			t.Fatalf("%q: passed through", v)
		}
		if !errorsIsAny(err, ErrMalformed, ErrUnsupportedVersion) {
			t.Fatalf("%q: %v", v, err)
		}
		if v != "" && len(v) > 8 && strings.Contains(err.Error(), v) {
			t.Fatalf("error repeats the stored value: %v", err)
		}
	}
	_, err := e.EncryptField(context.Background(), FieldRef{Table: "t", Column: "c"}, []byte("x"))
	wantKind(t, err, ErrMalformed, "field without a row id")
}

func TestTextFormRejectsPaddingAndNonCanonicalBase64(t *testing.T) {
	e := localEnvelope(t, nil)
	blob, _ := e.Encrypt(context.Background(), []byte("x"), nil)
	txt := EncodeText(blob)
	for _, bad := range []string{txt + "=", txt + "\n", TextPrefix + base64.StdEncoding.EncodeToString(blob), strings.Replace(txt, TextPrefix, "ENV1:", 1)} {
		if _, err := DecodeText(bad); err == nil {
			t.Fatalf("accepted %q…", bad[:12])
		}
	}
}

func errorsIsAny(err error, kinds ...error) bool {
	for _, k := range kinds {
		if asError(err) != nil && asError(err).Kind == k {
			return true
		}
	}
	return false
}

func TestSecretHoldingTypesRedactThemselves(t *testing.T) {
	raw := []byte("super-secret-key-material-0123456789")
	lk, err := NewLocalKey("dev", bytes.Repeat([]byte{0x5a}, 32))
	if err != nil {
		t.Fatal(err)
	}
	lp, _ := NewLocalProvider(lk)
	e, _ := New(Config{Provider: lp, Cache: &CacheConfig{MaxAge: 1 << 40}})
	dk, _ := lp.GenerateDataKey(context.Background(), nil)
	dk.Plaintext = Secret(bytes.Clone(raw))
	m, _ := newKeyMaterial(raw[:32], "k", []byte{1})
	values := []any{Secret(raw), dk, *dk, lk, *lk, e, m, lp}
	var sb strings.Builder
	log := slog.New(slog.NewJSONHandler(&sb, nil))
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
			sb.WriteString(fmt.Sprintf(verb, v))
		}
		log.Info("value", "v", v)
	}
	out := sb.String()
	for _, leak := range []string{string(raw), fmt.Sprintf("%x", raw), fmt.Sprintf("%x", raw[:32]), base64.StdEncoding.EncodeToString(raw), "5a5a5a5a", "ZZZZ", strings.Repeat("90 ", 4), "[90 90"} {
		if strings.Contains(out, leak) {
			t.Fatalf("secret leaked as %q in: %s", leak, out)
		}
	}
	if !strings.Contains(out, "[REDACTED]") {
		t.Fatal("nothing redacted?")
	}
}

func TestContextValidation(t *testing.T) {
	e := localEnvelope(t, nil)
	ctx := context.Background()
	for name, ec := range map[string]Context{
		"empty key":    {"": "x"},
		"invalid utf8": {"k": "\xff"},
		"too large":    {"k": strings.Repeat("v", MaxContextBytes)},
	} {
		_, err := e.Encrypt(ctx, []byte("x"), ec)
		wantKind(t, err, ErrMalformed, name)
	}
	_, err := e.Encrypt(ctx, make([]byte, MaxPlaintext+1), nil)
	wantKind(t, err, ErrMalformed, "oversized plaintext")
}

func TestLocalKeysFromFileAndEnvironment(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 32)
	enc := base64.StdEncoding.EncodeToString(key)
	path := t.TempDir() + "/kek"
	if err := writeFile(path, enc+"\n"); err != nil {
		t.Fatal(err)
	}
	fk, err := LocalKeyFromFile("file", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ENVELOPE_TEST_KEK", base64.RawURLEncoding.EncodeToString(key))
	ek, err := LocalKeyFromEnv("file", "ENVELOPE_TEST_KEK")
	if err != nil {
		t.Fatal(err)
	}
	// Same bytes, same id: a blob from one opens with the other.
	e1 := localEnvelope(t, nil, fk)
	e2 := localEnvelope(t, nil, ek)
	blob, _ := e1.Encrypt(context.Background(), []byte("dev"), nil)
	if _, err := e2.Decrypt(context.Background(), blob, nil); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "c2hvcnQ=", enc + enc} {
		_, err := ParseLocalKey("x", bad)
		wantKind(t, err, ErrMalformed, "bad key "+bad)
		if bad != "" && strings.Contains(err.Error(), bad) {
			t.Fatal("error repeats the key text")
		}
	}
	_, err = LocalKeyFromEnv("x", "ENVELOPE_TEST_UNSET_VARIABLE")
	wantKind(t, err, ErrMalformed, "unset variable")
}
