package nodetest

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/envelope"
	"github.com/rotation-suite/rotation/pkg/jwks"
)

// TestNodeAgainstTheLocalStack runs test/stack.test.ts against moto,
// PostgreSQL and the rotation functions, then checks in Go what Node
// produced there: tokens signed with the keys jwtrotate sealed, envelopes
// sealed under moto's KMS, webhook signatures with the rotated keys.
func TestNodeAgainstTheLocalStack(t *testing.T) {
	clientDir(t) // fail or skip on a missing Node before starting servers
	ctx := context.Background()
	s := startStack(t)
	control := s.control(t)
	if _, err := s.rotate(ctx, "jwt"); err != nil { // the first rotation bootstraps the keyring
		t.Fatal(err)
	}
	kp, err := envelope.NewKMSProvider(ctx, envelope.KMSConfig{Client: s.kmsc, KeyID: s.kmsKey})
	if err != nil {
		t.Fatal(err)
	}
	env, err := envelope.New(envelope.Config{Provider: kp})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jwks.NewSigner(ctx, jwks.SignerConfig{Secrets: s.sm, SecretID: s.arns["jwt"], Sealer: env})
	if err != nil {
		t.Fatal(err)
	}
	goToken, err := signer.Sign(ctx, jwt.RegisteredClaims{Subject: "go-signer", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	ec := envelope.Context{"table": "payees", "column": "iban", "row": "42"}
	blob, err := env.Encrypt(ctx, []byte("sealed in Go"), ec)
	if err != nil {
		t.Fatal(err)
	}

	out := t.TempDir()
	nodeTest(t, append(s.env(control, out), "NODETEST_GO_TOKEN="+goToken, "NODETEST_GO_ENVELOPE="+envelope.EncodeText(blob)), "stack.test.js", "cache.test.js", "examples.test.js")

	t.Run("tokens Node signed with jwtrotate's keys verify in pkg/jwks", func(t *testing.T) {
		var f struct {
			Tokens []string `json:"tokens"`
			Kids   []string `json:"kids"`
		}
		readJSON(t, filepath.Join(out, "jwt-stack.json"), &f)
		if len(f.Tokens) != 2 || f.Kids[0] == f.Kids[1] {
			t.Fatalf("want two tokens under two kids, have %d under %v", len(f.Tokens), f.Kids)
		}
		for _, src := range []string{s.arns["jwt"], s.arns["jwt-public"]} {
			v, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: jwks.SecretSource(s.sm, src), Algorithms: []string{jwks.ES256}})
			if err != nil {
				t.Fatal(err)
			}
			for i, tok := range f.Tokens {
				var c jwt.RegisteredClaims
				parsed, err := v.Parse(ctx, tok, &c)
				if err != nil {
					t.Fatalf("token %d from %s: %v", i, src, err)
				}
				if parsed.Header["kid"] != f.Kids[i] || c.Subject != "node-signer" {
					t.Fatalf("token %d: kid %v subject %q", i, parsed.Header["kid"], c.Subject)
				}
			}
		}
	})

	t.Run("envelopes Node sealed under moto's KMS open in pkg/envelope", func(t *testing.T) {
		var cases []struct {
			Context   map[string]string `json:"context"`
			Plaintext string            `json:"plaintext"`
			Text      string            `json:"text"`
		}
		readJSON(t, filepath.Join(out, "envelopes-kms.json"), &cases)
		if len(cases) == 0 {
			t.Fatal("Node wrote no envelopes")
		}
		for i, c := range cases {
			b, err := envelope.DecodeText(c.Text)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := env.Decrypt(ctx, b, envelope.Context(c.Context))
			if err != nil || string(pt) != c.Plaintext {
				t.Fatalf("case %d: %v", i, err)
			}
		}
	})

	t.Run("column values Node encrypted in PostgreSQL open through pkg/envelope's Column", func(t *testing.T) {
		conn, err := s.pg.AdminConn(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		col, err := env.Column("node_payees", "iban", nil)
		if err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]string{"p-01": "DE89370400440532013000", "p-03": "legacy value", "p-sealed": "DE00000000000000000001"} {
			var text string
			if err := conn.QueryRow(ctx, "SELECT iban FROM node_payees WHERE id = $1", id).Scan(&text); err != nil {
				t.Fatal(err)
			}
			pt, err := col.Decrypt(ctx, id, text)
			if err != nil || string(pt) != want {
				t.Fatalf("row %s: %v", id, err)
			}
			if _, err := col.Decrypt(ctx, "p-02", text); !errors.Is(err, envelope.ErrContextMismatch) {
				t.Fatalf("row %s under another row id: %v", id, err)
			}
		}
	})

	t.Run("webhook signatures Node made with the rotated keys verify in pkg/apikey", func(t *testing.T) {
		var sigs []struct {
			KeyID  string `json:"keyId"`
			Body   string `json:"body"`
			Unix   int64  `json:"t"`
			Header string `json:"header"`
		}
		readJSON(t, filepath.Join(out, "webhooks-stack.json"), &sigs)
		raw, err := jwks.SecretSource(s.sm, s.arns["webhook-verifier"])(ctx)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := apikey.ParseVerifier(raw)
		if err != nil {
			t.Fatal(err)
		}
		ring, err := apikey.NewKeyring(doc, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(sigs) != 2 {
			t.Fatalf("want 2 signatures, have %d", len(sigs))
		}
		for _, sg := range sigs {
			id, err := ring.VerifySignature(sg.Header, []byte(sg.Body), time.Unix(sg.Unix, 0), apikey.DefaultTolerance)
			if err != nil || id != sg.KeyID {
				t.Fatalf("signature of %s: %q, %v", sg.KeyID, id, err)
			}
		}
	})
}
