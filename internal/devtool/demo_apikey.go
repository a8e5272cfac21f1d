package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// apikeyDemo rotates an API key and a webhook signing key through
// functions/apikeyrotate and checks the overlap window and that the
// verifier secret holds only hashes.
func (d *demo) apikeyDemo(ctx context.Context) error {
	d.section("API keys with an overlap window (functions/apikeyrotate; verifiers keep only hashes)")
	caller, err := d.CreateSecret(ctx, "/demo/dev/api/partner-key", `{"schemaVersion":1,"kind":"apikey"}`)
	if err != nil {
		return err
	}
	verifier, err := d.CreateSecret(ctx, "/demo/dev/api/verifier", `{"schemaVersion":1,"kind":"apikey","keys":[]}`)
	if err != nil {
		return err
	}
	rie, err := d.startFunction("apikeyrotate", "APIKEY_VERIFIER_SECRET_ARN="+verifier, "APIKEY_OVERLAP=24h", "APIKEY_PREFIX=sk")
	if err != nil {
		return err
	}
	if !d.check("first rotation issues the first key", d.rotate(ctx, rie, "/demo/dev/api/partner-key (first key)", caller)) {
		return nil
	}
	first, _ := d.SecretValue(ctx, caller, rotation.StageCurrent)
	if !d.check("second rotation succeeds", d.rotate(ctx, rie, "/demo/dev/api/partner-key (rotation 2)", caller)) {
		return nil
	}
	second, _ := d.SecretValue(ctx, caller, rotation.StageCurrent)
	ring, raw, err := d.keyring(ctx, verifier)
	if err != nil {
		return err
	}
	k1, k2 := callerKey(first), callerKey(second)
	now := time.Now()
	id2, err := ring.Verify(k2, now)
	d.check(fmt.Sprintf("the new key %s verifies", id2), err)
	id1, err := ring.Verify(k1, now)
	d.check(fmt.Sprintf("the previous key %s still verifies during the overlap", id1), err)
	_, err = ring.Verify(k1, now.Add(25*time.Hour))
	d.check("the previous key fails after the overlap (24 h)", expectErr(err, "the previous key still verifies after the overlap"))
	d.check("the verifier secret holds no plaintext key", func() error {
		if strings.Contains(string(raw), k1) || strings.Contains(string(raw), k2) {
			return errors.New("plaintext key in the verifier secret")
		}
		return nil
	}())

	d.section("Webhook signing keys (same function, kind webhook)")
	wcaller, err := d.CreateSecret(ctx, "/demo/dev/webhooks/signing-key", `{"schemaVersion":1,"kind":"webhook"}`)
	if err != nil {
		return err
	}
	wverifier, err := d.CreateSecret(ctx, "/demo/dev/webhooks/verifier", `{"schemaVersion":1,"kind":"webhook","keys":[]}`)
	if err != nil {
		return err
	}
	wrie, err := d.startFunction("apikeyrotate", "APIKEY_VERIFIER_SECRET_ARN="+wverifier, "APIKEY_KIND=webhook", "APIKEY_OVERLAP=24h")
	if err != nil {
		return err
	}
	for i := 1; i <= 2; i++ {
		if !d.check(fmt.Sprintf("webhook rotation %d succeeds", i), d.rotate(ctx, wrie, fmt.Sprintf("/demo/dev/webhooks/signing-key (rotation %d)", i), wcaller)) {
			return nil
		}
	}
	prev, _ := d.SecretValue(ctx, wcaller, rotation.StagePrevious)
	wring, _, err := d.keyring(ctx, wverifier)
	if err != nil {
		return err
	}
	body := []byte(`{"event":"invoice.paid"}`)
	header := apikey.SignWebhook(apikey.NewKey(callerKey(prev)), time.Now(), body)
	_, err = wring.VerifySignature(header, body, time.Now(), apikey.DefaultTolerance)
	d.check("a webhook signed with the previous key verifies during the overlap", err)
	return nil
}

func callerKey(v []byte) string {
	var c struct {
		Key string `json:"key"`
	}
	_ = json.Unmarshal(v, &c)
	return c.Key
}

func (d *demo) keyring(ctx context.Context, verifier string) (*apikey.Keyring, []byte, error) {
	raw, err := d.SecretValue(ctx, verifier, rotation.StageCurrent)
	if err != nil {
		return nil, nil, err
	}
	doc, err := apikey.ParseVerifier(raw)
	if err != nil {
		return nil, nil, err
	}
	ring, err := apikey.NewKeyring(doc, nil)
	return ring, raw, err
}
