package jwks

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rotation-suite/rotation/pkg/envelope"
)

// SchemaVersion is the version of the Document format this package writes
// and reads.
const SchemaVersion = 1

// Document is the value of a JWT signing-key secret (docs/jwt.md).
//
// A document with no keys — an empty value, {}, or only "algorithm" — is a
// new secret that its first rotation bootstraps.
type Document struct {
	SchemaVersion int    `json:"schemaVersion,omitempty"`
	Algorithm     string `json:"algorithm,omitempty"`
	// Active signs tokens now.
	Active *SigningKey `json:"active,omitempty"`
	// Next is already in the JWK Set; the next rotation makes it active.
	Next *SigningKey `json:"next,omitempty"`
	// Retired keys no longer sign; their public JWKs stay in the set until
	// RemoveAfter so that tokens they signed keep verifying.
	Retired []RetiredKey `json:"retired,omitempty"`
	// JWKS is the public JWK Set to serve: active, next and retired keys.
	JWKS *Set `json:"jwks,omitempty"`
	// EmergencyRekey records the last emergency re-key this secret handled.
	EmergencyRekey *Rekey `json:"emergencyRekey,omitempty"`
}

// SigningKey is a key that signs now (active) or will (next).
type SigningKey struct {
	KID string `json:"kid"`
	Alg string `json:"alg"`
	// PrivateKey is the PKCS #8 private key sealed with pkg/envelope under
	// KeyContext(secret name, kid), in the envelope's text form ("env2:…";
	// keys sealed in envelope format 1 are "env1:…").
	PrivateKey  string          `json:"privateKey"`
	PublicJWK   json.RawMessage `json:"publicJwk"`
	CreatedAt   time.Time       `json:"createdAt"`
	PublishedAt time.Time       `json:"publishedAt"`
	// ActivatedAt is when the key started signing; zero for the next key.
	ActivatedAt time.Time `json:"activatedAt,omitzero"`
}

// String keeps the sealed key out of logs (it is encrypted, but it is still
// the secret's payload).
func (k *SigningKey) String() string {
	if k == nil {
		return "<nil>"
	}
	return fmt.Sprintf("SigningKey{kid:%s alg:%s}", k.KID, k.Alg)
}

// RetiredKey is the public half of a key that no longer signs.
type RetiredKey struct {
	KID         string          `json:"kid"`
	Alg         string          `json:"alg"`
	PublicJWK   json.RawMessage `json:"publicJwk"`
	RetiredAt   time.Time       `json:"retiredAt"`
	RemoveAfter time.Time       `json:"removeAfter"`
}

// Rekey records a handled emergency re-key request.
type Rekey struct {
	Nonce     string    `json:"nonce"`
	HandledAt time.Time `json:"handledAt"`
	// Dropped are the leaked keys removed from the set.
	Dropped []KeyRef `json:"dropped,omitempty"`
}

// KeyRef names a key by kid.
type KeyRef struct {
	KID string `json:"kid"`
}

// Bootstrap reports whether the document has no keys yet.
func (d *Document) Bootstrap() bool { return d.Active == nil && d.Next == nil }

// ParseDocument parses and validates a secret value. Empty input and "{}"
// give an empty document; see Validate for the rules a keyed one meets.
func ParseDocument(b []byte) (*Document, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return &Document{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d Document
	if err := dec.Decode(&d); err != nil {
		return nil, malformed("the secret value is not a JWT key document: %s", jsonProblem(err))
	}
	if dec.More() {
		return nil, malformed("the secret value has data after the JSON document")
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

// jsonProblem describes a JSON error without quoting the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong type (%s)", te.Field, te.Value)
	}
	// DisallowUnknownFields: `json: unknown field "name"` names only the field.
	return err.Error()
}

// Validate checks the document's rules: a known schema version and
// algorithm; active and next both present or both absent; every kid the
// RFC 7638 thumbprint of its public JWK; the JWK Set exactly the active,
// next and retired public keys, with no private members.
func (d *Document) Validate() error {
	if d.SchemaVersion > SchemaVersion || d.SchemaVersion < 0 {
		return malformed("schemaVersion %d is not supported (this code reads %d)", d.SchemaVersion, SchemaVersion)
	}
	if d.Algorithm != "" {
		if err := CheckAlgorithm(d.Algorithm); err != nil {
			return err
		}
	}
	if d.Bootstrap() {
		if len(d.Retired) > 0 || d.JWKS != nil {
			return malformed("the document has retired keys or a JWK Set but no active and next key")
		}
		return nil
	}
	if d.SchemaVersion != SchemaVersion {
		return malformed("a document with keys needs schemaVersion %d", SchemaVersion)
	}
	if d.Active == nil || d.Next == nil {
		return malformed("the document must have both an active and a next key")
	}
	if d.JWKS == nil {
		return malformed("the document has no JWK Set")
	}
	set, err := ParseSet(mustJSON(d.JWKS))
	if err != nil {
		return err
	}
	want := map[string]json.RawMessage{}
	add := func(role, kid, alg string, jwk json.RawMessage) error {
		k, err := ParsePublicJWK(jwk)
		if err != nil {
			return fmt.Errorf("%s key: %w", role, err)
		}
		if k.KeyID != kid || k.Algorithm != alg {
			return malformed("the %s key's kid/alg (%q, %q) differ from its JWK's (%q, %q)", role, kid, alg, k.KeyID, k.Algorithm)
		}
		if _, dup := want[kid]; dup {
			return malformed("kid %q appears twice among the active, next and retired keys", kid)
		}
		want[kid] = jwk
		return nil
	}
	for _, sk := range []struct {
		role string
		k    *SigningKey
	}{{"active", d.Active}, {"next", d.Next}} {
		if sk.k.PrivateKey == "" {
			return malformed("the %s key %q has no private key", sk.role, sk.k.KID)
		}
		if err := add(sk.role, sk.k.KID, sk.k.Alg, sk.k.PublicJWK); err != nil {
			return err
		}
	}
	for _, r := range d.Retired {
		if err := add("retired", r.KID, r.Alg, r.PublicJWK); err != nil {
			return err
		}
	}
	for kid := range want {
		if _, ok := set[kid]; !ok {
			return malformed("the JWK Set lacks kid %q", kid)
		}
	}
	for kid := range set {
		if _, ok := want[kid]; !ok {
			return malformed("the JWK Set holds kid %q that is neither active, next nor retired", kid)
		}
	}
	return nil
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// Marshal encodes the document.
func (d *Document) Marshal() ([]byte, error) {
	return json.Marshal(d)
}

// HasKID reports whether the document's JWK Set holds kid.
func (d *Document) HasKID(kid string) bool {
	return kid != "" && slices.Contains(d.JWKS.KIDs(), kid)
}

// Sealer seals and opens private keys under an encryption context.
// *envelope.Envelope satisfies it.
type Sealer interface {
	Encrypt(ctx context.Context, plaintext []byte, ec envelope.Context) ([]byte, error)
	Decrypt(ctx context.Context, blob []byte, ec envelope.Context) (envelope.Secret, error)
}

// KeyContext is the encryption context of a signing key: it names the
// secret and the kid, so a sealed key moved to another secret or kid does
// not open.
func KeyContext(secretName, kid string) envelope.Context {
	return envelope.Context{"purpose": "jwt-signing-key", "secret": secretName, "kid": kid}
}

// Seal builds a SigningKey from priv: its public JWK, its kid, and the
// private key sealed under KeyContext(secretName, kid).
func Seal(ctx context.Context, s Sealer, secretName string, priv crypto.Signer, alg string, now time.Time) (*SigningKey, error) {
	jwk, kid, err := PublicJWK(priv.Public(), alg)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode the private key: %w", err)
	}
	defer clear(der)
	blob, err := s.Encrypt(ctx, der, KeyContext(secretName, kid))
	if err != nil {
		return nil, fmt.Errorf("seal the private key of kid %q: %w", kid, err)
	}
	return &SigningKey{KID: kid, Alg: alg, PrivateKey: envelope.EncodeText(blob), PublicJWK: jwk, CreatedAt: now, PublishedAt: now}, nil
}

// ErrKeyMismatch is matched by Open's error when the opened private key is
// not the key the kid and public JWK name.
var ErrKeyMismatch = errors.New("private key does not match its kid")

// Open opens k's private key (one Decrypt under KeyContext(secretName,
// k.KID)) and checks that it is the key its kid names and fits its alg.
func Open(ctx context.Context, s Sealer, secretName string, k *SigningKey) (crypto.Signer, error) {
	blob, err := envelope.DecodeText(k.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("the private key of kid %q: %w", k.KID, err)
	}
	der, err := s.Decrypt(ctx, blob, KeyContext(secretName, k.KID))
	if err != nil {
		return nil, fmt.Errorf("open the private key of kid %q: %w", k.KID, err)
	}
	defer clear(der)
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, malformed("the opened private key of kid %q is not PKCS #8", k.KID)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, malformed("the opened private key of kid %q cannot sign", k.KID)
	}
	if err := CheckKey(signer.Public(), k.Alg); err != nil {
		return nil, fmt.Errorf("kid %q: %w", k.KID, err)
	}
	tp, err := Thumbprint(signer.Public())
	if err != nil {
		return nil, err
	}
	if tp != k.KID {
		return nil, fmt.Errorf("%w: kid %q opened to a key whose thumbprint is %q", ErrKeyMismatch, k.KID, tp)
	}
	return signer, nil
}
