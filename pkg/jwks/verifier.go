package jwks

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/pkg/secretcache"
)

// Source returns the current JWK Set (or a whole Document, whose "jwks"
// member is used).
type Source func(ctx context.Context) ([]byte, error)

// SecretSource reads the JWK Set from the AWSCURRENT version of a secret:
// either the signing-key secret itself (a reader needs no kms:Decrypt) or
// the public-JWKS secret the rotation maintains. Prefer VerifierConfig.Cache
// and SecretID, which share one cache with the rest of the service.
func SecretSource(sm SecretsGetter, secretID string) Source {
	return func(ctx context.Context) ([]byte, error) {
		_, v, err := readCurrent(ctx, sm, secretID)
		return v, err
	}
}

// StaticSource always returns raw.
func StaticSource(raw []byte) Source {
	return func(context.Context) ([]byte, error) { return raw, nil }
}

// extractSet returns the JWK Set inside raw, which is a set or a Document.
func extractSet(raw []byte) ([]byte, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, malformed("the JWK Set source is not a JSON object")
	}
	if _, ok := probe["keys"]; ok {
		return raw, nil
	}
	doc, err := ParseDocument(raw)
	if err != nil {
		return nil, err
	}
	if doc.JWKS == nil {
		return nil, malformed("the signing-key secret has no JWK Set yet (it was never rotated)")
	}
	return json.Marshal(doc.JWKS)
}

// VerifierConfig configures a Verifier. Name the set with Cache and SecretID
// (the service's one secretcache.Cache, whose TTL, MaxStale and
// MinRefreshInterval apply), or with Source (read through a cache of the
// Verifier's own, configured by Refresh, MinRefreshInterval and Now).
type VerifierConfig struct {
	Cache    *secretcache.Cache
	SecretID string // the public-JWKS secret, or the signing-key secret itself

	Source Source // instead of Cache and SecretID

	// Algorithms are the only algorithms accepted (RFC 8725 §3.1); required.
	// A token whose "alg" is not listed, or differs from its key's "alg", is
	// rejected before any key is used.
	Algorithms []string
	// Refresh is the TTL of the Verifier's own cache (Source only); 0: 5 minutes.
	Refresh time.Duration
	// MinRefreshInterval limits reloads caused by unknown kids (Source only;
	// with Cache its MinRefreshInterval applies); 0: 30 s.
	MinRefreshInterval time.Duration
	Now                func() time.Time // nil: time.Now (with Cache: the cache's clock)
}

// keySet is one loaded JWK Set.
type keySet struct {
	raw  []byte // compact JSON of the set
	etag string
	keys map[string]*jose.JSONWebKey
}

// Verifier verifies JWTs against a JWK Set. The set is read through a
// secretcache: a request finds it in memory (re-read in the background
// before it expires), and an unknown kid forces one rate-limited re-read,
// which is how a key published since the last read verifies at once. Safe
// for concurrent use.
type Verifier struct {
	cfg VerifierConfig
	now func() time.Time
	set *secretcache.Derived[*keySet]
}

// NewVerifier loads the set once and returns the Verifier.
func NewVerifier(ctx context.Context, cfg VerifierConfig) (*Verifier, error) {
	if cfg.Source == nil && (cfg.Cache == nil || cfg.SecretID == "") {
		return nil, errors.New("jwks: VerifierConfig needs Cache and SecretID, or Source")
	}
	if len(cfg.Algorithms) == 0 {
		return nil, errors.New("jwks: VerifierConfig.Algorithms is required: pin the algorithms you accept")
	}
	for _, a := range cfg.Algorithms {
		if err := CheckAlgorithm(a); err != nil {
			return nil, err
		}
	}
	cache, id := cfg.Cache, cfg.SecretID
	if cfg.Source != nil {
		if cfg.Refresh <= 0 {
			cfg.Refresh = 5 * time.Minute
		}
		if cfg.MinRefreshInterval <= 0 {
			cfg.MinRefreshInterval = 30 * time.Second
		}
		var err error
		cache, err = secretcache.New(secretcache.Config{Client: secretcache.SourceFunc(cfg.Source), TTL: cfg.Refresh, MinRefreshInterval: cfg.MinRefreshInterval, Now: cfg.Now})
		if err != nil {
			return nil, err
		}
		id = "jwks"
	}
	now := cache.Config().Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	v := &Verifier{cfg: cfg, now: now, set: secretcache.NewDerived(cache, id, buildSet)}
	if _, err := v.set.Get(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

func buildSet(_ context.Context, val *secretcache.Value) (*keySet, error) {
	setJSON, err := extractSet(val.Bytes())
	if err != nil {
		return nil, err
	}
	keys, err := ParseSet(setJSON)
	if err != nil {
		return nil, err
	}
	var s Set
	_ = json.Unmarshal(setJSON, &s)
	compact, _ := json.Marshal(s)
	sum := sha256.Sum256(compact)
	return &keySet{raw: compact, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`, keys: keys}, nil
}

// Refresh re-reads the set now (rate-limited by MinRefreshInterval). An
// error means the set could not be read or the new one is invalid; the last
// good set stays in use.
func (v *Verifier) Refresh(ctx context.Context) error {
	_, _, err := v.set.Refresh(ctx)
	return err
}

// current returns the set in use, or nil when none can be served.
func (v *Verifier) current(ctx context.Context) *keySet {
	s, err := v.set.Get(ctx)
	if err != nil {
		return nil
	}
	return s
}

// lookup finds kid, re-reading the set once (rate limited) when it is unknown.
func (v *Verifier) lookup(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	s, err := v.set.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("jwks: no JWK Set to verify with: %w", err)
	}
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	s, changed, err := v.set.Refresh(ctx)
	if s != nil {
		if k, ok := s.keys[kid]; ok {
			return k, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("jwks: unknown kid %q and the set could not be reloaded: %w", kid, err)
	}
	if !changed {
		return nil, fmt.Errorf("jwks: unknown kid %q (the set is unchanged since it was last read)", kid)
	}
	return nil, fmt.Errorf("jwks: unknown kid %q", kid)
}

// Keyfunc returns a golang-jwt Keyfunc that pins the algorithms, requires a
// kid, and checks the token's alg against the key's.
func (v *Verifier) Keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg, _ := t.Header["alg"].(string)
		if !slices.Contains(v.cfg.Algorithms, alg) {
			return nil, fmt.Errorf("jwks: algorithm %q is not accepted", alg)
		}
		kid, ok := t.Header["kid"].(string)
		if !ok || kid == "" {
			return nil, errors.New("jwks: the token has no kid")
		}
		k, err := v.lookup(ctx, kid)
		if err != nil {
			return nil, err
		}
		if k.Algorithm != alg {
			return nil, fmt.Errorf("jwks: the token's alg %q differs from key %q's alg %q", alg, kid, k.Algorithm)
		}
		return k.Key, nil
	}
}

// Parse verifies token and fills claims. Expiry is required and the
// accepted algorithms are pinned; pass more options (issuer, audience,
// leeway) as needed.
func (v *Verifier) Parse(ctx context.Context, token string, claims jwt.Claims, opts ...jwt.ParserOption) (*jwt.Token, error) {
	base := []jwt.ParserOption{jwt.WithValidMethods(v.cfg.Algorithms), jwt.WithExpirationRequired(), jwt.WithTimeFunc(v.now)}
	return jwt.ParseWithClaims(token, claims, v.Keyfunc(ctx), append(base, opts...)...)
}

// KeyIDs returns the kids of the set in use.
func (v *Verifier) KeyIDs() []string {
	s := v.current(context.Background())
	if s == nil {
		return nil
	}
	ids := make([]string, 0, len(s.keys))
	for kid := range s.keys {
		ids = append(ids, kid)
	}
	slices.Sort(ids)
	return ids
}
