package envelope

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fuzz targets' fixed key: the KEK of the "local provider" known-answer
// vector, so committed seeds stay decryptable.
var fuzzKEK = func() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = 0x33 + byte(i)
	}
	return b
}()

var fuzzPlaintexts = [][]byte{[]byte(""), []byte("fuzz seed plaintext one"), bytes.Repeat([]byte("0123456789abcdef"), 64)}

func fuzzEnvelope(t testing.TB) *Envelope {
	k, err := NewLocalKey("dev-kat", fuzzKEK)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := NewLocalProvider(k)
	e, _ := New(Config{Provider: p, Cache: &CacheConfig{MaxAge: 1 << 40, MaxEntries: 8}})
	return e
}

func fuzzContext(row string) Context { return Context{"app": "fuzz", "row": row} }

// TestWriteFuzzCorpus regenerates the committed seed corpus when
// ENVELOPE_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("ENVELOPE_WRITE_CORPUS") != "1" {
		t.Skip("set ENVELOPE_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	e := fuzzEnvelope(t)
	write := func(target, name string, args ...any) {
		dir := filepath.Join("testdata", "fuzz", target)
		os.MkdirAll(dir, 0o755)
		var sb strings.Builder
		sb.WriteString("go test fuzz v1\n")
		for _, a := range args {
			switch v := a.(type) {
			case []byte:
				fmt.Fprintf(&sb, "[]byte(%q)\n", v)
			case string:
				fmt.Fprintf(&sb, "string(%q)\n", v)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, pt := range fuzzPlaintexts {
		row := fmt.Sprint(i)
		blob, err := e.Encrypt(context.Background(), pt, fuzzContext(row))
		if err != nil {
			t.Fatal(err)
		}
		write("FuzzDecrypt", fmt.Sprintf("seed-%d", i), blob, row)
		write("FuzzDecrypt", fmt.Sprintf("seed-%d-wrong-row", i), blob, row+"x")
		write("FuzzParse", fmt.Sprintf("seed-%d", i), blob)
		write("FuzzParse", fmt.Sprintf("seed-%d-text", i), []byte(EncodeText(blob)))
	}
	write("FuzzParse", "empty", []byte{})
	write("FuzzParse", "version-2", []byte{2, 1, 0})
}

func checkTyped(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("untyped error %T: %v", err, err)
	}
	for _, k := range []error{ErrAuthentication, ErrContextMismatch, ErrKeyNotAllowed, ErrUnsupportedVersion, ErrMalformed} {
		if e.Kind == k {
			return
		}
	}
	t.Fatalf("unexpected kind: %v", err)
}

func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if blob, err := DecodeText(string(data)); err != nil {
			checkTyped(t, err)
		} else if !bytes.Equal([]byte(EncodeText(blob)), data) {
			t.Fatal("text form is not canonical")
		}
		h, err := ParseHeader(data)
		if err != nil {
			checkTyped(t, err)
			return
		}
		// A parsed header re-encodes to exactly the input.
		l, _ := parse(data)
		canon, err := h.Context.canonical()
		if err != nil || !bytes.Equal(canon, l.context) {
			t.Fatalf("context does not re-encode canonically: %v", err)
		}
		out, _ := appendHeader(nil, h.Provider, h.MessageID[:], canon, l.commitment, l.nonce, h.BodyLen-TagSize, h.KeyID, h.EncryptedDataKey)
		out = append(out, l.body...)
		if !bytes.Equal(out, data) {
			t.Fatal("header does not re-encode to the input")
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	e := fuzzEnvelope(f)
	f.Fuzz(func(t *testing.T, blob []byte, row string) {
		pt, err := e.Decrypt(context.Background(), blob, fuzzContext(row))
		if err != nil {
			checkTyped(t, err)
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
			for _, p := range fuzzPlaintexts[1:] {
				if strings.Contains(err.Error(), string(p[:16])) {
					t.Fatal("error text contains plaintext")
				}
			}
			return
		}
		for _, p := range fuzzPlaintexts {
			if bytes.Equal(pt, p) {
				return
			}
		}
		t.Fatalf("decrypted a blob the key never encrypted (%d bytes)", len(pt))
	})
}

func TestCanonicalContextSortsManyPairs(t *testing.T) {
	ec := Context{}
	for i := range 300 {
		ec[fmt.Sprintf("k%03d", (i*7919)%300)] = fmt.Sprint(i)
	}
	canon, err := ec.canonical()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkContext(canon); err != nil {
		t.Fatalf("not canonical: %v", err)
	}
	back, _ := parseContext(canon)
	if len(back) != 300 || !contextEqual(canon, ec) {
		t.Fatal("round trip lost pairs")
	}
}
