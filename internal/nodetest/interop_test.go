package nodetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/envelope"
	"github.com/rotation-suite/rotation/pkg/jwks"
)

// offlineEnv points the Node tests at the Go vectors and at out, where they
// write what the Go side checks.
func offlineEnv(t *testing.T, out string) []string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		"NODETEST_KAT_DIR=" + filepath.Join(root, "internal", "nodetest", "testdata"),
		"NODETEST_ENVELOPE_KAT_DIR=" + filepath.Join(root, "pkg", "envelope", "testdata"),
		"NODETEST_OUT_DIR=" + out,
	}
}

// TestNodeReproducesTheGoVectorsAndGoVerifiesNodeOutput runs the Node tests
// that need no servers (they reproduce the Go known-answer vectors), then
// checks in Go what they produced.
func TestNodeReproducesTheGoVectorsAndGoVerifiesNodeOutput(t *testing.T) {
	out := t.TempDir()
	goDir := t.TempDir()
	writeGoEnvelopes(t, goDir)
	writeDocumentCorpus(t, goDir)
	writeBlindIndexVectors(t, goDir)
	nodeTest(t, append(offlineEnv(t, out), "NODETEST_GO_DIR="+goDir), "apikey.test.js", "envelope.test.js", "jwt.test.js", "db.test.js", "documents.test.js", "blindindex.test.js")

	t.Run("webhook signatures made in Node verify in pkg/apikey", func(t *testing.T) {
		var sigs []sigVector
		readJSON(t, filepath.Join(out, "webhooks.json"), &sigs)
		if len(sigs) == 0 {
			t.Fatal("Node wrote no signatures")
		}
		for _, s := range sigs {
			if err := apikey.VerifySignatureHeader([]byte(s.Secret), s.Header, []byte(s.Body), time.Unix(s.Unix, 0), apikey.DefaultTolerance); err != nil {
				t.Errorf("signature over %q: %v", s.Body, err)
			}
			if err := apikey.VerifySignatureHeader([]byte(s.Secret), s.Header, []byte(s.Body+"x"), time.Unix(s.Unix, 0), apikey.DefaultTolerance); err == nil {
				t.Errorf("a signature verified over another body")
			}
		}
	})

	t.Run("envelopes made in Node open in pkg/envelope", func(t *testing.T) {
		var f localEnvelopes
		readJSON(t, filepath.Join(out, "envelopes-local.json"), &f)
		key, err := envelope.ParseLocalKey(f.KeyID, f.KEK)
		if err != nil {
			t.Fatal(err)
		}
		p, err := envelope.NewLocalProvider(key)
		if err != nil {
			t.Fatal(err)
		}
		env, err := envelope.New(envelope.Config{Provider: p})
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Cases) == 0 {
			t.Fatal("Node wrote no envelopes")
		}
		for i, c := range f.Cases {
			blob, err := envelope.DecodeText(c.Text)
			if err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			pc, err := envelope.PrepareContext(c.Context)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := env.AppendDecryptWith(context.Background(), nil, blob, pc, c.Message)
			if err != nil {
				t.Fatalf("case %d (%s): %v", i, c.Text[:5], err)
			}
			if want := c.Text[:5]; !strings.HasPrefix(envelope.EncodeText(blob), want) {
				t.Fatalf("case %d: version changed", i)
			}
			if hex.EncodeToString(pt) != c.Plaintext {
				t.Fatalf("case %d: another plaintext", i)
			}
			if _, err := env.AppendDecryptWith(context.Background(), nil, blob, pc, envelope.Context{"row": "another"}); !errors.Is(err, envelope.ErrContextMismatch) {
				t.Fatalf("case %d under another context: %v", i, err)
			}
		}
	})

	t.Run("tokens signed in Node verify in pkg/jwks with the thumbprint kid", func(t *testing.T) {
		var vs []jwkVector
		readJSON(t, filepath.Join(out, "jwt-offline.json"), &vs)
		if len(vs) != 3 {
			t.Fatalf("Node wrote %d tokens, want 3", len(vs))
		}
		for _, v := range vs {
			set, _ := json.Marshal(jwks.Set{Keys: []json.RawMessage{v.JWK}})
			ver, err := jwks.NewVerifier(context.Background(), jwks.VerifierConfig{Source: jwks.StaticSource(set), Algorithms: []string{v.Alg}})
			if err != nil {
				t.Fatalf("%s: the Node JWK does not load: %v", v.Alg, err)
			}
			var claims jwt.RegisteredClaims
			if _, err := ver.Parse(context.Background(), v.Token, &claims, jwt.WithIssuer("rotation-suite")); err != nil {
				t.Fatalf("%s: %v", v.Alg, err)
			}
			if claims.Subject != "node-kat" {
				t.Fatalf("%s: subject %q", v.Alg, claims.Subject)
			}
		}
	})
}

// localEnvelopes is an exchange file of envelopes under one local key.
type localEnvelopes struct {
	KeyID string         `json:"keyId"`
	KEK   string         `json:"kek"` // base64
	Cases []envelopeCase `json:"cases"`
}

type envelopeCase struct {
	Context   map[string]string `json:"context"`           // the stable context (format 1: the whole context)
	Message   map[string]string `json:"message,omitempty"` // format 2's message context
	Plaintext string            `json:"plaintext"`         // hex
	Text      string            `json:"text"`
}

// writeGoEnvelopes seals envelopes in both formats with pkg/envelope under a
// fresh local key for the Node tests to open (go-envelopes-local.json).
func writeGoEnvelopes(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	key, err := envelope.NewLocalKey("go-interop", kek)
	if err != nil {
		t.Fatal(err)
	}
	p, err := envelope.NewLocalProvider(key)
	if err != nil {
		t.Fatal(err)
	}
	f := localEnvelopes{KeyID: "go-interop", KEK: base64.StdEncoding.EncodeToString(kek)}
	for _, version := range []int{1, 2} {
		env, err := envelope.New(envelope.Config{Provider: p, WriteVersion: version, Cache: &envelope.CacheConfig{MaxAge: time.Minute}})
		if err != nil {
			t.Fatal(err)
		}
		blob, err := env.Encrypt(ctx, []byte("format "+strconv.Itoa(version)+", one context"), envelope.Context{"purpose": "interop", "k-ü": ""})
		if err != nil {
			t.Fatal(err)
		}
		f.Cases = append(f.Cases, envelopeCase{Context: map[string]string{"purpose": "interop", "k-ü": ""}, Plaintext: hex.EncodeToString([]byte("format " + strconv.Itoa(version) + ", one context")), Text: envelope.EncodeText(blob)})
		pc, err := envelope.PrepareContext(envelope.Context{"table": "payees", "column": "iban"})
		if err != nil {
			t.Fatal(err)
		}
		for row := range 3 {
			pt := []byte(fmt.Sprintf("DE%020d", row))
			msg := envelope.Context{"row": strconv.Itoa(row)}
			b, err := env.AppendEncryptWith(ctx, nil, pt, pc, msg)
			if err != nil {
				t.Fatal(err)
			}
			f.Cases = append(f.Cases, envelopeCase{Context: map[string]string{"table": "payees", "column": "iban"}, Message: msg, Plaintext: hex.EncodeToString(pt), Text: envelope.EncodeText(b)})
		}
	}
	writeJSON(t, filepath.Join(dir, "go-envelopes-local.json"), f)
}
