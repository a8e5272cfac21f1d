package jwks_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/internal/smfake"
	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/secretcache"
)

// A service verifies tokens against the public JWK Set secret the rotation
// maintains, read through the process's one secretcache (sm is a
// *secretsmanager.Client in a service; here an in-memory stand-in holding a
// set with one key).
func ExampleNewVerifier_cache() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, kid, _ := jwks.PublicJWK(&key.PublicKey, jwks.ES256)
	set, _ := json.Marshal(jwks.Set{Keys: []json.RawMessage{pub}})
	sm := smfake.New()
	ctx := context.Background()
	out, _ := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("/app/prod/jwt/public-jwks"), SecretString: aws.String(string(set))})

	cache, _ := secretcache.New(secretcache.Config{Client: sm})
	v, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Cache: cache, SecretID: aws.ToString(out.ARN), Algorithms: []string{jwks.ES256}})
	if err != nil {
		panic(err)
	}

	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{Subject: "user-1", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))})
	tok.Header["kid"] = kid
	signed, _ := tok.SignedString(key)
	var claims jwt.RegisteredClaims
	if _, err := v.Parse(ctx, signed, &claims); err != nil {
		panic(err)
	}
	fmt.Println(claims.Subject)
	// Output: user-1
}
