package apikey_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/rotation-suite/rotation/pkg/apikey"
)

// A receiving service authenticates requests with the keys in the verifier
// secret; sm is a *secretsmanager.Client (anything with GetSecretValue).
func ExampleMiddleware() {
	var sm apikey.SecretSource // secretsmanager.NewFromConfig(cfg)
	if sm == nil {
		return
	}
	ctx := context.Background()
	v, err := apikey.NewVerifier(ctx, apikey.VerifierConfig{
		Source:         sm,
		SecretID:       "arn:aws:secretsmanager:…:secret:orders-api-verifier",
		PepperSecretID: "arn:aws:secretsmanager:…:secret:orders-api-pepper",
	})
	if err != nil {
		panic(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := apikey.KeyIDFrom(r.Context())
		fmt.Fprintf(w, "hello, key %s", id)
	})
	http.Handle("/api/", apikey.Middleware(v, func(r *http.Request, keyID string, err error) {
		slog.Warn("API key refused", "keyId", keyID, "reason", err)
	})(api))
}

// A key prints, logs and marshals without its secret part.
func ExampleKey() {
	k, _ := apikey.GenerateKey("sk")
	p, _ := apikey.ParseKey(k.Reveal())
	fmt.Println(k.String() == "sk_"+p.KeyID+"_[REDACTED]", len(k.Reveal()) <= apikey.MaxKeyLen)
	// Output: true true
}

// A webhook sender signs with its current key; the receiver checks the
// header against every live key within the tolerance.
func ExampleSignWebhook() {
	k, _ := apikey.GenerateKey("whsec")
	body := []byte(`{"type":"invoice.paid"}`)
	now := time.Unix(1772355600, 0)
	h := apikey.SignWebhook(k, now, body)
	fmt.Println(h[:13])
	// Output: t=1772355600,
}
