package explore_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/functions/jwtrotate/jwtstrategy"
	"github.com/rotation-suite/rotation/internal/explore"
	"github.com/rotation-suite/rotation/pkg/envelope"
	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// JWT timing of the exploration: a retired key must stay 64 s after the
// rotation that retired it (lifetime + skew + signer cache), less than two
// actions apart.
const (
	jwtLifetime    = time.Minute
	jwtSkew        = 2 * time.Second
	jwtSignerCache = 2 * time.Second
	jwtSecretName  = "explore/jwt-signing"
)

// kek is the local key-encryption key every environment's envelope uses
// (pkg/envelope's local provider stands in for KMS).
var kek = func() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i + 7)
	}
	return b
}()

func newSealer() (*envelope.Envelope, error) {
	lk, err := envelope.NewLocalKey("explore-kek", kek)
	if err != nil {
		return nil, err
	}
	p, err := envelope.NewLocalProvider(lk)
	if err != nil {
		return nil, err
	}
	return envelope.New(envelope.Config{Provider: p})
}

// jwtKey is what the subject remembers of a key that was active.
type jwtKey struct {
	signer     crypto.Signer
	lastActive time.Time
}

// jwtSubject explores the JWT signing-key strategy. Its invariants: the
// AWSCURRENT document's active key opens and signs a token its own JWK Set
// verifies; and every key that was ever active verifies a token it signed
// as late as a signer may have used it (SignerCache after it stopped being
// active) until that token's expiry plus the skew, against both the
// AWSCURRENT document's JWK Set and the public JWKS secret.
type jwtSubject struct {
	sealer    *envelope.Envelope
	publicARN string
	keys      map[string]*jwtKey
}

func newJWT() explore.Subject { return &jwtSubject{keys: map[string]*jwtKey{}} }

// memo caches, across worlds, what an immutable input proves: a document
// value's parse and whether it signs and verifies, and whether a kid's
// token verifies against a JWK Set. Kids and sealed keys are random, so
// only what worlds share (the initial document) is found again.
type memo[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

func (m *memo[V]) get(k string, f func() V) V {
	m.mu.Lock()
	v, ok := m.m[k]
	m.mu.Unlock()
	if ok {
		return v
	}
	v = f()
	m.mu.Lock()
	if m.m == nil || len(m.m) > 1<<16 {
		m.m = map[string]V{}
	}
	m.m[k] = v
	m.mu.Unlock()
	return v
}

type parsed struct {
	doc *jwks.Document
	err error
}

var (
	acceptedMemo memo[error]
	verifiedMemo memo[error]
	docMemo      memo[parsed]
)

// initialDocument is the signing-key document every world starts with.
var initialDocument = sync.OnceValues(func() ([]byte, error) {
	ctx := context.Background()
	sealer, err := newSealer()
	if err != nil {
		return nil, err
	}
	now := explore.Epoch.Add(-24 * time.Hour)
	var ks [2]*jwks.SigningKey
	for i := range ks {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		if ks[i], err = jwks.Seal(ctx, sealer, jwtSecretName, priv, jwks.ES256, now); err != nil {
			return nil, err
		}
	}
	ks[0].ActivatedAt = now
	doc := &jwks.Document{SchemaVersion: jwks.SchemaVersion, Algorithm: jwks.ES256, Active: ks[0], Next: ks[1],
		JWKS: &jwks.Set{Keys: []json.RawMessage{ks[0].PublicJWK, ks[1].PublicJWK}}}
	return doc.Marshal()
})

func (s *jwtSubject) config() jwtstrategy.Config {
	return jwtstrategy.Config{
		Algorithm: jwks.ES256, MaxTokenLifetime: jwtLifetime, ClockSkew: jwtSkew, SignerCache: jwtSignerCache,
		MinPublish: time.Minute, PublicJWKSSecretARN: s.publicARN,
		KMSKeyARN: "arn:aws:kms:us-east-1:123456789012:key/explore",
	}
}

func (s *jwtSubject) Setup(ctx context.Context, w *explore.World) ([]string, error) {
	var err error
	if s.sealer, err = newSealer(); err != nil {
		return nil, err
	}
	b, err := initialDocument()
	if err != nil {
		return nil, err
	}
	doc, err := jwks.ParseDocument(b)
	if err != nil {
		return nil, err
	}
	set, _ := json.Marshal(doc.JWKS)
	if s.publicARN, err = w.CreateSecret(ctx, "explore/jwt-public", set); err != nil {
		return nil, err
	}
	arn, err := w.CreateSecret(ctx, jwtSecretName, b)
	return []string{arn}, err
}

func (s *jwtSubject) Strategy(*explore.World) (rotation.Strategy, error) {
	sealer, err := newSealer() // a cold start: the envelope's cache is empty
	if err != nil {
		return nil, err
	}
	return jwtstrategy.New(s.config(), jwtstrategy.Deps{Envelope: sealer})
}

func signToken(k crypto.Signer, kid string, iat time.Time) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{
		Subject: "explore", IssuedAt: jwt.NewNumericDate(iat), ExpiresAt: jwt.NewNumericDate(iat.Add(jwtLifetime)),
	})
	t.Header["kid"] = kid
	return t.SignedString(k)
}

func verifyToken(token string, setJSON []byte, now time.Time) error {
	keys, err := jwks.ParseSet(setJSON)
	if err != nil {
		return err
	}
	_, err = jwt.Parse(token, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := keys[kid]
		if !ok {
			return nil, fmt.Errorf("kid %s is not in the JWK Set", kid)
		}
		return k.Key, nil
	}, jwt.WithValidMethods([]string{jwks.ES256}), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(jwtSkew), jwt.WithExpirationRequired())
	return err
}

func (s *jwtSubject) Accepts(ctx context.Context, w *explore.World, _ int, value []byte) error {
	return acceptedMemo.get(string(value), func() error { return s.accepts(ctx, w, value) })
}

func (s *jwtSubject) accepts(ctx context.Context, w *explore.World, value []byte) error {
	doc, err := jwks.ParseDocument(value)
	if err != nil {
		return err
	}
	if doc.Bootstrap() {
		return fmt.Errorf("the document has no keys")
	}
	k, err := jwks.Open(ctx, s.sealer, jwtSecretName, doc.Active)
	if err != nil {
		return err
	}
	tok, err := signToken(k, doc.Active.KID, w.Clock.Now())
	if err != nil {
		return err
	}
	set, _ := json.Marshal(doc.JWKS)
	return verifyToken(tok, set, w.Clock.Now())
}

func (s *jwtSubject) parse(v string) (*jwks.Document, error) {
	p := docMemo.get(v, func() parsed {
		d, err := jwks.ParseDocument([]byte(v))
		return parsed{d, err}
	})
	return p.doc, p.err
}

func (s *jwtSubject) Check(ctx context.Context, w *explore.World) error {
	now := w.Clock.Now()
	_, cur := w.Current(ctx, 0)
	doc, err := s.parse(cur)
	if err != nil || doc.Bootstrap() {
		return explore.Violationf("jwt-document", "the AWSCURRENT value is not a keyed document: %v", err)
	}
	a := doc.Active
	if s.keys[a.KID] == nil {
		k, err := jwks.Open(ctx, s.sealer, jwtSecretName, a)
		if err != nil {
			return explore.Violationf("jwt-document", "the active key %s does not open: %v", a.KID, err)
		}
		s.keys[a.KID] = &jwtKey{signer: k}
	}
	s.keys[a.KID].lastActive = now
	curSet, _ := json.Marshal(doc.JWKS)
	_, pubSet := w.CurrentOf(ctx, s.publicARN)
	for kid, k := range s.keys {
		iat := k.lastActive.Add(jwtSignerCache)
		if now.Before(iat) {
			iat = now
		}
		if !now.Before(iat.Add(jwtLifetime + jwtSkew)) {
			continue // every token it signed has expired
		}
		// The signature check depends on the key and the set only, and the
		// token's time window is checked above: memoize it per set.
		verify := func(set []byte) error {
			return verifiedMemo.get(kid+"\x00"+string(set), func() error {
				tok, err := signToken(k.signer, kid, iat)
				if err == nil {
					err = verifyToken(tok, set, now)
				}
				return err
			})
		}
		if err := verify(curSet); err != nil {
			return explore.Violationf("jwt-token-lifetime", "a token key %s signed at %s (valid until %s) does not verify against the AWSCURRENT JWK Set at %s: %v",
				kid, iat.Format(time.TimeOnly), iat.Add(jwtLifetime).Format(time.TimeOnly), now.Format(time.TimeOnly), err)
		}
		if err := verify([]byte(pubSet)); err != nil {
			return explore.Violationf("jwt-token-lifetime", "a token key %s signed at %s (valid until %s) does not verify against the public JWKS secret at %s: %v",
				kid, iat.Format(time.TimeOnly), iat.Add(jwtLifetime).Format(time.TimeOnly), now.Format(time.TimeOnly), err)
		}
	}
	return nil
}
