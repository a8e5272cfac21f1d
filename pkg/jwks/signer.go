package jwks

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/pkg/secretcache"
)

// SecretsGetter is the one Secrets Manager call the consumer helpers make.
// *secretsmanager.Client satisfies it.
type SecretsGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// readCurrent reads the AWSCURRENT value of secretID (by stage, explicitly).
func readCurrent(ctx context.Context, sm SecretsGetter, secretID string) (name string, value []byte, err error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID), VersionStage: aws.String("AWSCURRENT")})
	if err != nil {
		return "", nil, fmt.Errorf("read AWSCURRENT of %s: %w", secretID, err)
	}
	return aws.ToString(out.Name), []byte(aws.ToString(out.SecretString)), nil
}

// SignerConfig configures a Signer. Name the signing-key secret with Cache
// (the service's one secretcache.Cache) or Secrets (a cache of the Signer's
// own, configured by Refresh, MaxStale and Now), and SecretID.
type SignerConfig struct {
	Cache    *secretcache.Cache
	Secrets  SecretsGetter // instead of Cache
	SecretID string        // required: the signing-key secret's name or ARN
	Sealer   Sealer        // required: opens the private key (kms:Decrypt)
	// Refresh is the TTL of the Signer's own cache (Secrets only); 0: 5
	// minutes. Keep the TTL — this, or the shared cache's — at most the
	// rotation's JWT_SIGNER_CACHE, which the removal time of a retired key
	// counts on.
	Refresh time.Duration
	// MaxStale is how long past Refresh the loaded key may still sign while
	// refreshes fail (Secrets only); 0: Refresh.
	MaxStale time.Duration
	// RetryInterval is kept for compatibility and not used: the cache spaces
	// failed reads itself (one second, doubling up to the TTL).
	RetryInterval time.Duration
	Now           func() time.Time // nil: time.Now
}

// signingKey is one opened active key.
type signingKey struct {
	key    crypto.Signer
	kid    string
	method jwt.SigningMethod
}

// Signer signs JWTs with the active key of a signing-key secret. The secret
// is read through a secretcache and the key opened (kms:Decrypt through the
// Sealer) on the cache's reading goroutine, before the request path sees the
// new version; a request signs with the key in memory. Because retired keys
// leave the JWK Set on a schedule that counts on the signer's TTL, a use of
// a key read more than TTL ago waits for the read in flight (started in the
// background from four fifths of the TTL, so a busy signer never waits).
// While reads or the new key fail, the loaded key signs until the cache's
// MaxStale, then Sign fails. Safe for concurrent use.
type Signer struct {
	cfg SignerConfig
	key *secretcache.Derived[*signingKey]
}

// NewSigner loads the active key once and returns the Signer.
func NewSigner(ctx context.Context, cfg SignerConfig) (*Signer, error) {
	if (cfg.Cache == nil && cfg.Secrets == nil) || cfg.SecretID == "" || cfg.Sealer == nil {
		return nil, errors.New("jwks: SignerConfig needs Cache (or Secrets), SecretID and Sealer")
	}
	cache := cfg.Cache
	if cache == nil {
		if cfg.Refresh <= 0 {
			cfg.Refresh = 5 * time.Minute
		}
		if cfg.MaxStale <= 0 {
			cfg.MaxStale = cfg.Refresh
		}
		var err error
		cache, err = secretcache.New(secretcache.Config{Client: cfg.Secrets, TTL: cfg.Refresh, MaxStale: cfg.Refresh + cfg.MaxStale, Now: cfg.Now})
		if err != nil {
			return nil, err
		}
	}
	s := &Signer{cfg: cfg}
	s.key = secretcache.NewDerived(cache, cfg.SecretID, s.open, secretcache.Fresh())
	if _, err := s.key.Get(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Signer) open(ctx context.Context, v *secretcache.Value) (*signingKey, error) {
	doc, err := ParseDocument(v.Bytes())
	if err != nil {
		return nil, err
	}
	if doc.Active == nil {
		return nil, fmt.Errorf("jwks: secret %s has no active key yet (it was never rotated)", s.cfg.SecretID)
	}
	key, err := Open(ctx, s.cfg.Sealer, v.Name, doc.Active)
	if err != nil {
		return nil, err
	}
	method, err := SigningMethod(doc.Active.Alg)
	if err != nil {
		return nil, err
	}
	return &signingKey{key: key, kid: doc.Active.KID, method: method}, nil
}

// Refresh re-reads AWSCURRENT (rate-limited by the cache's
// MinRefreshInterval) and opens its active key now; an error says why the
// new key is not used.
func (s *Signer) Refresh(ctx context.Context) error {
	_, _, err := s.key.Refresh(ctx)
	return err
}

// KeyID returns the kid the Signer signs with now.
func (s *Signer) KeyID() string {
	k, err := s.key.Get(context.Background())
	if err != nil {
		return ""
	}
	return k.kid
}

// Sign signs claims with the active key, "kid" and "typ":"JWT" in the
// header.
func (s *Signer) Sign(ctx context.Context, claims jwt.Claims) (string, error) {
	k, err := s.key.Get(ctx)
	if err != nil {
		return "", fmt.Errorf("jwks: the signing key could not be refreshed: %w", err)
	}
	t := jwt.NewWithClaims(k.method, claims)
	t.Header["kid"] = k.kid
	return t.SignedString(k.key)
}
