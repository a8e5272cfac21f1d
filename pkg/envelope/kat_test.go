package envelope

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// staticProvider hands out one fixed data key, so known-answer vectors can
// be computed. It reports itself as KMS: the format does not depend on how
// the wrapped key was made.
type staticProvider struct {
	keyID   string
	edk     []byte
	dataKey []byte
}

func (s *staticProvider) ID() ProviderID         { return ProviderKMS }
func (s *staticProvider) Allowed(id string) bool { return id == s.keyID }
func (s *staticProvider) GenerateDataKey(context.Context, Context) (*DataKey, error) {
	return &DataKey{KeyID: s.keyID, Encrypted: bytes.Clone(s.edk), Plaintext: bytes.Clone(s.dataKey)}, nil
}
func (s *staticProvider) DecryptDataKey(_ context.Context, keyID string, edk []byte, _ Context) (*DataKey, error) {
	if keyID != s.keyID || !bytes.Equal(edk, s.edk) {
		return nil, newErr(ErrAuthentication, "static", "unknown wrapped key")
	}
	return &DataKey{KeyID: s.keyID, Encrypted: edk, Plaintext: bytes.Clone(s.dataKey)}, nil
}
func (s *staticProvider) ReWrap(context.Context, string, []byte, Context, string) (*DataKey, error) {
	return nil, newErr(ErrProvider, "static", "no re-wrap")
}

type katVector struct {
	Name      string            `json:"name"`
	Provider  string            `json:"provider"`       // "static" (fixed data key) or "local" (fixed KEK)
	DataKey   string            `json:"dataKey"`        // hex, static vectors
	LocalKEK  string            `json:"localKek"`       // hex, local vectors
	KeyID     string            `json:"keyId"`          // static vectors
	EDK       string            `json:"edk"`            // hex, static vectors
	MessageID string            `json:"messageId"`      // hex
	Nonce     string            `json:"nonce"`          // hex
	Context   map[string]string `json:"context"`        //
	Plaintext string            `json:"plaintext"`      // hex
	Blob      string            `json:"blob"`           // hex: the expected blob
	Text      string            `json:"text,omitempty"` // the blob's text form
}

const katFile = "testdata/kat-v1.json"

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func staticFor(t *testing.T, v katVector) *staticProvider {
	return &staticProvider{keyID: v.KeyID, edk: unhex(t, v.EDK), dataKey: unhex(t, v.DataKey)}
}

// sealVector computes a static vector's blob from its fixed inputs.
func sealVector(t *testing.T, v katVector) []byte {
	t.Helper()
	m, err := newKeyMaterial(unhex(t, v.DataKey), v.KeyID, unhex(t, v.EDK))
	if err != nil {
		t.Fatal(err)
	}
	canon, err := Context(v.Context).canonical()
	if err != nil {
		t.Fatal(err)
	}
	blob, err := seal(m, ProviderKMS, unhex(t, v.MessageID), unhex(t, v.Nonce), canon, unhex(t, v.Plaintext))
	if err != nil {
		t.Fatal(err)
	}
	return blob
}

// TestWriteKnownAnswerVectors regenerates testdata/kat-v1.json when
// ENVELOPE_WRITE_KAT=1. Regenerating is a format change: bump the version.
func TestWriteKnownAnswerVectors(t *testing.T) {
	if os.Getenv("ENVELOPE_WRITE_KAT") != "1" {
		t.Skip("set ENVELOPE_WRITE_KAT=1 to regenerate " + katFile)
	}
	seq := func(n int, start byte) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = start + byte(i)
		}
		return hex.EncodeToString(b)
	}
	long := make([]byte, 1000)
	for i := range long {
		long[i] = byte(i * 7)
	}
	vs := []katVector{
		{Name: "empty plaintext, empty context", Provider: "static"},
		{Name: "field context", Provider: "static", Context: map[string]string{"table": "payees", "column": "bank_account", "row": "42"}, Plaintext: hex.EncodeToString([]byte("DE89370400440532013000"))},
		{Name: "1000 bytes, unicode context", Provider: "static", Context: map[string]string{"secret": "prod/jwt", "kid": "k-ü-1", "z": ""}, Plaintext: hex.EncodeToString(long)},
	}
	for i := range vs {
		v := &vs[i]
		v.DataKey = seq(32, byte(i*32))
		v.KeyID = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
		v.EDK = seq(48, 0xa0)
		v.MessageID = seq(32, byte(0x40+i))
		v.Nonce = seq(12, byte(0x80+i))
		v.Blob = hex.EncodeToString(sealVector(t, *v))
		v.Text = EncodeText(unhex(t, v.Blob))
	}
	// A local-provider vector (random wrap nonce and ids, fixed KEK): checked
	// in the decrypt direction.
	kek := seq(32, 0x33)
	lk, _ := NewLocalKey("dev-kat", unhex(t, kek))
	lp, _ := NewLocalProvider(lk)
	le, _ := New(Config{Provider: lp, WriteVersion: Version1})
	lec := map[string]string{"app": "kat"}
	lpt := []byte("local provider vector")
	blob, err := le.Encrypt(context.Background(), lpt, lec)
	if err != nil {
		t.Fatal(err)
	}
	vs = append(vs, katVector{Name: "local provider", Provider: "local", LocalKEK: kek, KeyID: "dev-kat", Context: lec, Plaintext: hex.EncodeToString(lpt), Blob: hex.EncodeToString(blob), Text: EncodeText(blob)})
	out, _ := json.MarshalIndent(vs, "", "  ")
	if err := os.MkdirAll(filepath.Dir(katFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(katFile, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestKnownAnswerVectorsPinTheFormat(t *testing.T) {
	raw, err := os.ReadFile(katFile)
	if err != nil {
		t.Fatal(err)
	}
	var vs []katVector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 4 {
		t.Fatalf("%d vectors", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			want := unhex(t, v.Blob)
			if v.Text != "" && EncodeText(want) != v.Text {
				t.Fatal("text form drifted")
			}
			var e *Envelope
			switch v.Provider {
			case "static":
				if got := sealVector(t, v); !bytes.Equal(got, want) {
					t.Fatalf("encrypting the fixed inputs gives\n%x\nwant\n%x", got, want)
				}
				e, _ = New(Config{Provider: staticFor(t, v)})
			case "local":
				lk, err := NewLocalKey(v.KeyID, unhex(t, v.LocalKEK))
				if err != nil {
					t.Fatal(err)
				}
				lp, _ := NewLocalProvider(lk)
				e, _ = New(Config{Provider: lp})
			}
			pt, err := e.Decrypt(context.Background(), want, v.Context)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pt, unhex(t, v.Plaintext)) {
				t.Fatal("vector decrypts to something else")
			}
		})
	}
}

func TestDeriveMatchesStdlibHKDF(t *testing.T) {
	for range 200 {
		dk := make([]byte, 32)
		id := make([]byte, MessageIDSize)
		rand.Read(dk)
		rand.Read(id)
		m, err := newKeyMaterial(dk, "k", []byte{1})
		if err != nil {
			t.Fatal(err)
		}
		var fast [okmSize]byte
		m.expandInto(&fast, ProviderKMS, id)
		std, err := m.expandStdlib(ProviderKMS, id)
		if err != nil {
			t.Fatal(err)
		}
		// And the whole schedule through hkdf.Key (extract + expand in one).
		whole, err := hkdf.Key(sha512.New, dk, []byte(extractSalt), string(appendInfo(nil, ProviderKMS, id)), okmSize)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast[:], std) || !bytes.Equal(std, whole) {
			t.Fatal("pooled HMAC derivation differs from crypto/hkdf")
		}
	}
}
