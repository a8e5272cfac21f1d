package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// The JWS algorithms this package signs and verifies with.
const (
	ES256 = "ES256" // ECDSA P-256 with SHA-256; signatures are raw R‖S, 64 bytes
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256, RSA 2048 or 3072 bits
	EdDSA = "EdDSA" // Ed25519 (RFC 8037)
)

// Algorithms lists the supported algorithms.
var Algorithms = []string{ES256, RS256, EdDSA}

// ErrMalformed is matched (errors.Is) by every error about a malformed
// document, JWK or JWK Set.
var ErrMalformed = errors.New("malformed")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// CheckAlgorithm returns an error unless alg is supported.
func CheckAlgorithm(alg string) error {
	if !slices.Contains(Algorithms, alg) {
		return malformed("algorithm %q is not supported (use one of %v)", alg, Algorithms)
	}
	return nil
}

// SigningMethod returns golang-jwt's method for alg.
func SigningMethod(alg string) (jwt.SigningMethod, error) {
	switch alg {
	case ES256:
		return jwt.SigningMethodES256, nil
	case RS256:
		return jwt.SigningMethodRS256, nil
	case EdDSA:
		return jwt.SigningMethodEdDSA, nil
	}
	return nil, CheckAlgorithm(alg)
}

// CheckKey returns an error unless pub is a key alg may use: a P-256 key for
// ES256, an RSA key of 2048 bits or more for RS256, an Ed25519 key for EdDSA.
func CheckKey(pub crypto.PublicKey, alg string) error {
	switch alg {
	case ES256:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P256() {
			return malformed("an %s key must be an EC P-256 key, have %T", alg, pub)
		}
	case RS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return malformed("an %s key must be an RSA key, have %T", alg, pub)
		}
		if k.N.BitLen() < 2048 {
			return malformed("an %s key must have at least 2048 bits, has %d", alg, k.N.BitLen())
		}
	case EdDSA:
		if _, ok := pub.(ed25519.PublicKey); !ok {
			return malformed("an %s key must be an Ed25519 key, have %T", alg, pub)
		}
	default:
		return CheckAlgorithm(alg)
	}
	return nil
}

// Thumbprint returns the RFC 7638 JWK thumbprint of pub (SHA-256, base64url
// without padding), the kid this package gives every key.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", malformed("thumbprint: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// PublicJWK returns pub as a public JWK for alg ("kid" = thumbprint, "alg",
// "use":"sig") and its kid. EC coordinates keep their full 32-byte length.
func PublicJWK(pub crypto.PublicKey, alg string) (json.RawMessage, string, error) {
	if err := CheckKey(pub, alg); err != nil {
		return nil, "", err
	}
	kid, err := Thumbprint(pub)
	if err != nil {
		return nil, "", err
	}
	b, err := json.Marshal(jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"})
	if err != nil {
		return nil, "", malformed("encode JWK: %v", err)
	}
	return b, kid, nil
}

// privateMembers are the JWK members that carry private or symmetric key
// material (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// ParsePublicJWK parses one JWK that must be public: it fails if the JWK has
// any private member, is not a supported key, or its kid is not its RFC 7638
// thumbprint. It returns the parsed key.
func ParsePublicJWK(raw json.RawMessage) (*jose.JSONWebKey, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return nil, malformed("a JWK is not a JSON object")
	}
	var kid string
	_ = json.Unmarshal(members["kid"], &kid)
	var priv []string
	for _, m := range privateMembers {
		if _, ok := members[m]; ok {
			priv = append(priv, m)
		}
	}
	if len(priv) > 0 {
		sort.Strings(priv)
		return nil, malformed("the JWK with kid %q has private members %v; a JWK Set must hold public keys only", kid, priv)
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return nil, malformed("the JWK with kid %q does not parse: %v", kid, err)
	}
	if !k.IsPublic() {
		return nil, malformed("the JWK with kid %q is not a public key", kid)
	}
	if err := CheckKey(k.Key, k.Algorithm); err != nil {
		return nil, malformed("the JWK with kid %q: %v", kid, errors.Unwrap(err))
	}
	tp, err := Thumbprint(k.Key)
	if err != nil {
		return nil, err
	}
	if kid != tp {
		return nil, malformed("the JWK's kid %q is not its RFC 7638 thumbprint %q", kid, tp)
	}
	if k.Use != "" && k.Use != "sig" {
		return nil, malformed("the JWK with kid %q has use %q, want \"sig\"", kid, k.Use)
	}
	return &k, nil
}

// Set is a JWK Set as served: {"keys":[...]}.
type Set struct {
	Keys []json.RawMessage `json:"keys"`
}

// KIDs returns the kid of every key in the set, in the set's order; a key
// that is not a JSON object with a string kid gives "". A nil set has none.
// It does not validate the keys: ParseSet does.
func (s *Set) KIDs() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.Keys))
	for _, raw := range s.Keys {
		var m struct {
			KID string `json:"kid"`
		}
		if json.Unmarshal(raw, &m) != nil {
			m.KID = ""
		}
		out = append(out, m.KID)
	}
	return out
}

// ParseSet parses a JWK Set and every key in it with ParsePublicJWK; kids
// must be unique. It returns the keys by kid.
func ParseSet(raw []byte) (map[string]*jose.JSONWebKey, error) {
	var s Set
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, malformed("the JWK Set is not a JSON object with a \"keys\" array")
	}
	if s.Keys == nil {
		return nil, malformed("the JWK Set has no \"keys\" array")
	}
	keys := make(map[string]*jose.JSONWebKey, len(s.Keys))
	for _, raw := range s.Keys {
		k, err := ParsePublicJWK(raw)
		if err != nil {
			return nil, err
		}
		if _, dup := keys[k.KeyID]; dup {
			return nil, malformed("the JWK Set holds kid %q twice", k.KeyID)
		}
		keys[k.KeyID] = k
	}
	return keys, nil
}
