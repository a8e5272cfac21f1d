package jwks

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/golang-jwt/jwt/v5"
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

// SignerConfig configures a Signer.
type SignerConfig struct {
	Secrets  SecretsGetter // required
	SecretID string        // required: the signing-key secret's name or ARN
	Sealer   Sealer        // required: opens the private key (kms:Decrypt)
	// Refresh is how long a loaded key is used before AWSCURRENT is read
	// again; 0: 5 minutes. Keep it at most the rotation's JWT_SIGNER_CACHE,
	// which the removal time of a retired key counts on.
	Refresh time.Duration
	// MaxStale is how long the loaded key may still sign while refreshes
	// fail; 0: Refresh (so a key is used at most 2×Refresh after loading).
	MaxStale time.Duration
	// RetryInterval spaces failed refresh attempts; 0: 10 seconds.
	RetryInterval time.Duration
	Now           func() time.Time // nil: time.Now
}

// Signer signs JWTs with the active key of a signing-key secret. It is safe
// for concurrent use.
type Signer struct {
	cfg SignerConfig

	mu       sync.Mutex
	key      crypto.Signer
	kid      string
	method   jwt.SigningMethod
	loadedAt time.Time
	lastTry  time.Time
	lastErr  error
}

// NewSigner loads the active key once and returns the Signer.
func NewSigner(ctx context.Context, cfg SignerConfig) (*Signer, error) {
	if cfg.Secrets == nil || cfg.SecretID == "" || cfg.Sealer == nil {
		return nil, errors.New("jwks: SignerConfig needs Secrets, SecretID and Sealer")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 5 * time.Minute
	}
	if cfg.MaxStale <= 0 {
		cfg.MaxStale = cfg.Refresh
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Signer{cfg: cfg}
	if err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Refresh reads AWSCURRENT and opens its active key now.
func (s *Signer) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshLocked(ctx)
}

func (s *Signer) refreshLocked(ctx context.Context) error {
	now := s.cfg.Now()
	s.lastTry = now
	err := func() error {
		name, value, err := readCurrent(ctx, s.cfg.Secrets, s.cfg.SecretID)
		if err != nil {
			return err
		}
		doc, err := ParseDocument(value)
		if err != nil {
			return err
		}
		if doc.Active == nil {
			return fmt.Errorf("jwks: secret %s has no active key yet (it was never rotated)", s.cfg.SecretID)
		}
		key, err := Open(ctx, s.cfg.Sealer, name, doc.Active)
		if err != nil {
			return err
		}
		method, err := SigningMethod(doc.Active.Alg)
		if err != nil {
			return err
		}
		s.key, s.kid, s.method, s.loadedAt = key, doc.Active.KID, method, now
		return nil
	}()
	s.lastErr = err
	return err
}

// KeyID returns the kid the Signer signs with now.
func (s *Signer) KeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kid
}

// Sign signs claims with the active key, "kid" and "typ":"JWT" in the
// header, refreshing the key first when it is older than Refresh. While a
// refresh fails the loaded key keeps signing for MaxStale more; after that
// Sign fails with the refresh error.
func (s *Signer) Sign(ctx context.Context, claims jwt.Claims) (string, error) {
	s.mu.Lock()
	now := s.cfg.Now()
	age := now.Sub(s.loadedAt)
	if age >= s.cfg.Refresh && now.Sub(s.lastTry) >= min(s.cfg.RetryInterval, s.cfg.Refresh) {
		_ = s.refreshLocked(ctx)
		age = now.Sub(s.loadedAt)
	}
	if age >= s.cfg.Refresh+s.cfg.MaxStale {
		err := s.lastErr
		s.mu.Unlock()
		return "", fmt.Errorf("jwks: the signing key is %s old and could not be refreshed: %w", age.Round(time.Second), err)
	}
	key, kid, method := s.key, s.kid, s.method
	s.mu.Unlock()
	t := jwt.NewWithClaims(method, claims)
	t.Header["kid"] = kid
	return t.SignedString(key)
}
