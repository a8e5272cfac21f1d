package apikey_test

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/internal/smfake"
	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/secretcache"
)

// The calling side keeps its key in the caller secret; the receiving side
// verifies against the verifier secret. Both read through one secretcache
// (sm is a *secretsmanager.Client in a service; here an in-memory stand-in).
// After a refusal the caller refreshes once and retries with what it got.
func ExampleCredentials_Refresh() {
	sm := smfake.New()
	ctx := context.Background()
	k, _ := apikey.GenerateKey("sk")
	p, _ := apikey.ParseKey(k.Reveal())
	now := time.Now().Add(-time.Minute)
	caller := &apikey.CallerSecret{Kind: apikey.KindAPIKey, KeyID: p.KeyID, Key: k, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	rec, _ := apikey.NewRecord(caller, apikey.AlgSHA256, nil, apikey.StatusActive)
	doc, _ := (&apikey.VerifierDoc{Kind: apikey.KindAPIKey, Records: []apikey.Record{rec}}).Encode()
	cb, _ := caller.Encode()
	c, _ := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("orders-api-key"), SecretString: aws.String(string(cb))})
	v, _ := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("orders-api-verifier"), SecretString: aws.String(string(doc))})

	cache, _ := secretcache.New(secretcache.Config{Client: sm})
	creds := &apikey.Credentials{Cache: cache, SecretID: aws.ToString(c.ARN)}
	verifier, err := apikey.NewVerifier(ctx, apikey.VerifierConfig{Cache: cache, SecretID: aws.ToString(v.ARN)})
	if err != nil {
		panic(err)
	}

	cur, _ := creds.Current(ctx)
	id, err := verifier.Verify(ctx, cur.Key.Reveal())
	fmt.Println(id == p.KeyID, err)
	// On a 401: re-read (rate-limited) and retry only if the key changed.
	if _, changed, err := creds.Refresh(ctx); err == nil && !changed {
		fmt.Println("same key: retrying would not help")
	}
	// Output:
	// true <nil>
	// same key: retrying would not help
}
