package apptest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/internal/wirecount"
	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/jwks"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stack is moto behind a counting proxy, with clients aimed at the proxy.
type stack struct {
	wire *wirecount.Counter
	sm   *secretsmanager.Client
	kms  *kms.Client
}

func newStack(t testing.TB) *stack {
	t.Helper()
	m := testenv.SharedMoto(t)
	w, err := wirecount.Start(m.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	cfg, err := m.AWSConfig(context.Background(), config.WithBaseEndpoint(w.URL))
	if err != nil {
		t.Fatal(err)
	}
	return &stack{wire: w, sm: secretsmanager.NewFromConfig(cfg), kms: kms.NewFromConfig(cfg)}
}

func (s *stack) secret(t testing.TB, value string) string {
	t.Helper()
	out, err := s.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(fmt.Sprintf("apptest/%d", time.Now().UnixNano())), SecretString: aws.String(value)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

// warm opens the SDK's HTTP connection to the stack, so that a cold cache
// is measured, not a TCP handshake.
func (s *stack) warm(t testing.TB) {
	t.Helper()
	_, _ = s.sm.ListSecrets(context.Background(), &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(1)})
	_, _ = s.kms.ListKeys(context.Background(), &kms.ListKeysInput{Limit: aws.Int32(1)})
	s.wire.Take()
}

// jwtFixture is an ES256 key whose public JWK Set is stored as a secret.
type jwtFixture struct {
	key *ecdsa.PrivateKey
	kid string
	set string
}

func newJWT(t testing.TB) *jwtFixture {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, kid, err := jwks.PublicJWK(&k.PublicKey, jwks.ES256)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jwks.Set{Keys: []json.RawMessage{pub}})
	return &jwtFixture{key: k, kid: kid, set: string(set)}
}

func (f *jwtFixture) token(t testing.TB) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{Subject: "app", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	tok.Header["kid"] = f.kid
	s, err := tok.SignedString(f.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// apiFixture is one issued API key and the verifier document that lists it
// (sha256 records, so no pepper secret is needed).
type apiFixture struct {
	key    apikey.Key
	caller string
	doc    string
}

func newAPIKey(t testing.TB) *apiFixture {
	t.Helper()
	k, err := apikey.GenerateKey("sk")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := apikey.ParseKey(k.Reveal())
	now := time.Now().Add(-time.Minute)
	cs := &apikey.CallerSecret{Kind: apikey.KindAPIKey, KeyID: p.KeyID, Key: k, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	rec, err := apikey.NewRecord(cs, apikey.AlgSHA256, nil, apikey.StatusActive)
	if err != nil {
		t.Fatal(err)
	}
	doc := &apikey.VerifierDoc{Kind: apikey.KindAPIKey, Records: []apikey.Record{rec}}
	b, err := doc.Encode()
	if err != nil {
		t.Fatal(err)
	}
	cb, err := cs.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return &apiFixture{key: k, caller: string(cb), doc: string(b)}
}

// slowClient delays every GetSecretValue, as a slow Secrets Manager would.
type slowClient struct {
	*secretsmanager.Client
	delay time.Duration
}

func (c slowClient) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	select {
	case <-time.After(c.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c.Client.GetSecretValue(ctx, in, opts...)
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}
