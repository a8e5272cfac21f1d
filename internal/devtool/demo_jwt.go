package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/pkg/envelope"
	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// jwtDemo rotates a JWT signing-key secret through functions/jwtrotate and
// checks the pre-published next key, the overlapping JWKS and that a token
// signed before a rotation still verifies after it.
func (d *demo) jwtDemo(ctx context.Context) error {
	d.section("JWT signing keys (functions/jwtrotate: pre-published next key, overlapping JWKS, KMS-sealed private keys)")
	arn, err := d.CreateSecret(ctx, "/demo/dev/jwt/signing-keys", `{}`)
	if err != nil {
		return err
	}
	rie, err := d.startFunction("jwtrotate", "JWT_KMS_KEY_ARN="+d.kmsKey, "JWT_ALGORITHM=ES256")
	if err != nil {
		return err
	}
	if !d.check("first rotation bootstraps an active and a next key", d.rotate(ctx, rie, "/demo/dev/jwt/signing-keys (bootstrap)", arn)) {
		return nil
	}
	doc1, err := d.jwtDoc(ctx, arn)
	if err != nil {
		return err
	}
	d.line("      JWKS kids: %s (active %s, next %s)", strings.Join(doc1.kids, ", "), doc1.active, doc1.next)

	kp, err := envelope.NewKMSProvider(ctx, envelope.KMSConfig{Client: d.kmsc, KeyID: d.kmsKey})
	if err != nil {
		return err
	}
	env, err := envelope.New(envelope.Config{Provider: kp})
	if err != nil {
		return err
	}
	signer, err := jwks.NewSigner(ctx, jwks.SignerConfig{Secrets: d.SM, SecretID: arn, Sealer: env})
	if err != nil {
		return err
	}
	token, err := signer.Sign(ctx, jwt.RegisteredClaims{Subject: "demo-user", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	if !d.check("a token is signed with the active key", err) {
		return nil
	}
	if !d.check("second rotation succeeds", d.rotate(ctx, rie, "/demo/dev/jwt/signing-keys (rotation 2)", arn)) {
		return nil
	}
	doc2, err := d.jwtDoc(ctx, arn)
	if err != nil {
		return err
	}
	d.line("      JWKS kids: %s (active %s, next %s)", strings.Join(doc2.kids, ", "), doc2.active, doc2.next)
	d.check("the new active key was published as next one rotation earlier", func() error {
		if doc2.active != doc1.next {
			return fmt.Errorf("active %s, previous next %s", doc2.active, doc1.next)
		}
		return nil
	}())
	d.check("the retired key stays in the JWKS", func() error {
		for _, k := range doc2.kids {
			if k == doc1.active {
				return nil
			}
		}
		return fmt.Errorf("kid %s is gone", doc1.active)
	}())
	v, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: jwks.SecretSource(d.SM, arn), Algorithms: []string{jwks.ES256}})
	if err != nil {
		return err
	}
	var claims jwt.RegisteredClaims
	_, err = v.Parse(ctx, token, &claims)
	d.check("a token signed before the rotation still verifies after it", err)
	return nil
}

type jwtSummary struct {
	active, next string
	kids         []string
}

func (d *demo) jwtDoc(ctx context.Context, arn string) (jwtSummary, error) {
	raw, err := d.SecretValue(ctx, arn, rotation.StageCurrent)
	if err != nil {
		return jwtSummary{}, err
	}
	doc, err := jwks.ParseDocument(raw)
	if err != nil {
		return jwtSummary{}, err
	}
	set, err := jwks.ParseSet(mustJSON(doc.JWKS))
	if err != nil {
		return jwtSummary{}, err
	}
	s := jwtSummary{}
	if doc.Active != nil {
		s.active = shortKID(doc.Active.KID)
	}
	if doc.Next != nil {
		s.next = shortKID(doc.Next.KID)
	}
	for kid := range set {
		s.kids = append(s.kids, shortKID(kid))
	}
	sort.Strings(s.kids)
	return s, nil
}

func shortKID(k string) string {
	if len(k) > 10 {
		return k[:10]
	}
	return k
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
