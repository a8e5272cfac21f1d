package apikey

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/pkg/secretcache"
)

// SecretSource is the one Secrets Manager call the consumer side needs. The
// SDK's *secretsmanager.Client satisfies it.
type SecretSource interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// ReadSecret reads a secret's AWSCURRENT value.
func ReadSecret(ctx context.Context, src SecretSource, secretID string) ([]byte, error) {
	out, err := src.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID), VersionStage: aws.String("AWSCURRENT")})
	if err != nil {
		return nil, err
	}
	if out.SecretString != nil {
		return []byte(*out.SecretString), nil
	}
	return out.SecretBinary, nil
}

// VerifierConfig configures a Verifier. The secrets are read through Cache
// (the service's one secretcache.Cache, whose TTL, MaxStale and
// MinRefreshInterval apply) or, without it, through a cache of the
// Verifier's own over Source, configured by Refresh, MissRefresh,
// LoadTimeout and Now.
type VerifierConfig struct {
	Cache  *secretcache.Cache
	Source SecretSource // instead of Cache
	// SecretID is the verifier secret (APIKEY_VERIFIER_SECRET_ARN of the
	// rotation function).
	SecretID string
	// PepperSecretID is the pepper secret, required when records use
	// hmac-sha256. It is read with the records (and re-read at once if its
	// fingerprint changes).
	PepperSecretID string
	// Refresh is the TTL of the Verifier's own cache: records are re-read in
	// the background from four fifths of it on, and no longer used once
	// three times as old (the reads kept failing); default 5 minutes.
	Refresh time.Duration
	// MissRefresh is the least time between the last read and one forced by
	// an unknown key id or an unverified signature (a key newer than the
	// loaded records); default 10 s. Negative disables such reads. With
	// Cache, its MinRefreshInterval applies instead (unless negative here).
	MissRefresh time.Duration
	// Skew is how much earlier than notBefore a key is accepted; default DefaultSkew.
	Skew time.Duration
	// Tolerance bounds a webhook signature's timestamp; default DefaultTolerance.
	Tolerance time.Duration
	// Now is the clock; default time.Now (with Cache: the cache's clock).
	Now func() time.Time
	// LoadTimeout bounds one read of the Verifier's own cache; default 5 s.
	LoadTimeout time.Duration
}

// Verifier verifies API keys or webhook signatures against the verifier
// secret, read through a secretcache: a request finds the keyring in memory
// (re-read and rebuilt in the background, never under a lock on the request
// path), and an unknown key id or an unverified signature forces one
// rate-limited re-read, so a key issued after the last read verifies at
// once. A failed read or an invalid new version keeps the records in use,
// up to the cache's MaxStale. Safe for concurrent use.
type Verifier struct {
	cfg   VerifierConfig
	now   func() time.Time
	cache *secretcache.Cache
	ring  *secretcache.Derived[*Keyring]
}

// NewVerifier loads the verifier secret once and returns a Verifier; an error
// here means the service cannot verify anything yet.
func NewVerifier(ctx context.Context, cfg VerifierConfig) (*Verifier, error) {
	if (cfg.Source == nil && cfg.Cache == nil) || cfg.SecretID == "" {
		return nil, errors.New("apikey: VerifierConfig needs Cache (or Source) and SecretID")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 5 * time.Minute
	}
	if cfg.MissRefresh == 0 {
		cfg.MissRefresh = 10 * time.Second
	}
	if cfg.Skew == 0 {
		cfg.Skew = DefaultSkew
	}
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = DefaultTolerance
	}
	if cfg.LoadTimeout <= 0 {
		cfg.LoadTimeout = 5 * time.Second
	}
	cache := cfg.Cache
	if cache == nil {
		var err error
		cache, err = secretcache.New(secretcache.Config{Client: cfg.Source, TTL: cfg.Refresh, MinRefreshInterval: max(cfg.MissRefresh, time.Nanosecond), ReadTimeout: cfg.LoadTimeout, Now: cfg.Now})
		if err != nil {
			return nil, err
		}
	}
	now := cache.Config().Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	v := &Verifier{cfg: cfg, now: now, cache: cache}
	v.ring = secretcache.NewDerived(cache, cfg.SecretID, v.build)
	if _, err := v.ring.Get(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

// build parses one version of the verifier secret, with the pepper it names.
func (v *Verifier) build(ctx context.Context, val *secretcache.Value) (*Keyring, error) {
	doc, err := ParseVerifier(val.Bytes())
	if err != nil {
		return nil, err
	}
	var pepper []byte
	if doc.PepperFingerprint != "" && v.cfg.PepperSecretID != "" {
		p, err := v.cache.Get(ctx, v.cfg.PepperSecretID)
		if err == nil && PepperFingerprint(p.Bytes()) != doc.PepperFingerprint {
			p, err = v.cache.Refresh(ctx, v.cfg.PepperSecretID)
		}
		if err != nil {
			return nil, fmt.Errorf("apikey: read pepper secret: %w", err)
		}
		pepper = p.Bytes()
	}
	return NewKeyring(doc, pepper, WithSkew(v.cfg.Skew))
}

// Reload re-reads the verifier secret now (rate-limited like a miss).
func (v *Verifier) Reload(ctx context.Context) error {
	_, _, err := v.ring.Refresh(ctx)
	return err
}

// LastError returns the error of the last read or rebuild, or nil if it
// succeeded.
func (v *Verifier) LastError() error {
	if err := v.cache.LastError(v.cfg.SecretID); err != nil {
		return fmt.Errorf("apikey: read verifier secret: %w", err)
	}
	return v.ring.LastError()
}

// reloadOnMiss forces a rate-limited re-read and returns the keyring that
// resulted if it differs from seen.
func (v *Verifier) reloadOnMiss(ctx context.Context, seen *Keyring) (*Keyring, bool) {
	if v.cfg.MissRefresh < 0 {
		return nil, false
	}
	ring, _, err := v.ring.Refresh(ctx)
	if err != nil || ring == nil || ring == seen {
		return nil, false
	}
	return ring, true
}

// Verify checks a presented API key and returns its key id. See Keyring.Verify.
func (v *Verifier) Verify(ctx context.Context, key string) (string, error) {
	ring, err := v.ring.Get(ctx)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoKeyring, err)
	}
	id, err := ring.Verify(key, v.now())
	if err == ErrUnknownKey {
		if r, ok := v.reloadOnMiss(ctx, ring); ok {
			id, err = r.Verify(key, v.now())
		}
	}
	return id, err
}

// VerifySignature checks a webhook signature header over body and returns
// the id of the key that verified. See Keyring.VerifySignature.
func (v *Verifier) VerifySignature(ctx context.Context, header string, body []byte) (string, error) {
	ring, err := v.ring.Get(ctx)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoKeyring, err)
	}
	id, err := ring.VerifySignature(header, body, v.now(), v.cfg.Tolerance)
	if err == ErrBadSignature {
		if r, ok := v.reloadOnMiss(ctx, ring); ok {
			id, err = r.VerifySignature(header, body, v.now(), v.cfg.Tolerance)
		}
	}
	return id, err
}
