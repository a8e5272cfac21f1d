package jwks

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// Source returns the current JWK Set (or a whole Document, whose "jwks"
// member is used).
type Source func(ctx context.Context) ([]byte, error)

// SecretSource reads the JWK Set from the AWSCURRENT version of a secret:
// either the signing-key secret itself (a reader needs no kms:Decrypt) or
// the public-JWKS secret the rotation maintains.
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

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	Source Source // required
	// Algorithms are the only algorithms accepted (RFC 8725 §3.1); required.
	// A token whose "alg" is not listed, or differs from its key's "alg", is
	// rejected before any key is used.
	Algorithms []string
	// Refresh is how long a loaded set is used before it is read again;
	// 0: 5 minutes.
	Refresh time.Duration
	// MinRefreshInterval limits reloads caused by unknown kids; 0: 30 s.
	MinRefreshInterval time.Duration
	Now                func() time.Time // nil: time.Now
}

// keySet is one loaded JWK Set.
type keySet struct {
	raw  []byte // compact JSON of the set
	etag string
	keys map[string]*jose.JSONWebKey
}

// Verifier verifies JWTs against a JWK Set. It is safe for concurrent use.
type Verifier struct {
	cfg VerifierConfig

	mu       sync.Mutex
	set      *keySet
	loadedAt time.Time
	lastTry  time.Time
	lastErr  error
}

// NewVerifier loads the set once and returns the Verifier.
func NewVerifier(ctx context.Context, cfg VerifierConfig) (*Verifier, error) {
	if cfg.Source == nil {
		return nil, errors.New("jwks: VerifierConfig.Source is required")
	}
	if len(cfg.Algorithms) == 0 {
		return nil, errors.New("jwks: VerifierConfig.Algorithms is required: pin the algorithms you accept")
	}
	for _, a := range cfg.Algorithms {
		if err := CheckAlgorithm(a); err != nil {
			return nil, err
		}
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 5 * time.Minute
	}
	if cfg.MinRefreshInterval <= 0 {
		cfg.MinRefreshInterval = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{cfg: cfg}
	if err := v.Refresh(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

// Refresh reloads the set now.
func (v *Verifier) Refresh(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.refreshLocked(ctx)
}

func (v *Verifier) refreshLocked(ctx context.Context) error {
	now := v.cfg.Now()
	v.lastTry = now
	err := func() error {
		raw, err := v.cfg.Source(ctx)
		if err != nil {
			return err
		}
		setJSON, err := extractSet(raw)
		if err != nil {
			return err
		}
		keys, err := ParseSet(setJSON)
		if err != nil {
			return err
		}
		var s Set
		_ = json.Unmarshal(setJSON, &s)
		compact, _ := json.Marshal(s)
		sum := sha256.Sum256(compact)
		v.set = &keySet{raw: compact, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`, keys: keys}
		v.loadedAt = now
		return nil
	}()
	v.lastErr = err
	return err
}

// current returns the set, refreshing it when older than Refresh (a failed
// refresh keeps the old set and is retried after MinRefreshInterval).
func (v *Verifier) current(ctx context.Context) *keySet {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.cfg.Now()
	if now.Sub(v.loadedAt) >= v.cfg.Refresh && now.Sub(v.lastTry) >= v.cfg.MinRefreshInterval {
		_ = v.refreshLocked(ctx)
	}
	return v.set
}

// lookup finds kid, reloading the set once (rate limited) when it is unknown.
func (v *Verifier) lookup(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	if k, ok := v.current(ctx).keys[kid]; ok {
		return k, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if k, ok := v.set.keys[kid]; ok { // another caller reloaded meanwhile
		return k, nil
	}
	now := v.cfg.Now()
	if now.Sub(v.lastTry) < v.cfg.MinRefreshInterval {
		return nil, fmt.Errorf("jwks: unknown kid %q (the set was reloaded %s ago)", kid, now.Sub(v.lastTry).Round(time.Second))
	}
	if err := v.refreshLocked(ctx); err != nil {
		return nil, fmt.Errorf("jwks: unknown kid %q and the set could not be reloaded: %w", kid, err)
	}
	if k, ok := v.set.keys[kid]; ok {
		return k, nil
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
	base := []jwt.ParserOption{jwt.WithValidMethods(v.cfg.Algorithms), jwt.WithExpirationRequired(), jwt.WithTimeFunc(v.cfg.Now)}
	return jwt.ParseWithClaims(token, claims, v.Keyfunc(ctx), append(base, opts...)...)
}

// KeyIDs returns the kids of the loaded set.
func (v *Verifier) KeyIDs() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	ids := make([]string, 0, len(v.set.keys))
	for kid := range v.set.keys {
		ids = append(ids, kid)
	}
	slices.Sort(ids)
	return ids
}
