package apikey

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// SchemaVersion is the version of the caller and verifier documents this
// package writes and the only one it reads.
const SchemaVersion = 1

// Kinds of key.
const (
	KindAPIKey  = "apikey"
	KindWebhook = "webhook"
)

// Record statuses.
const (
	StatusActive   = "active"   // valid within [notBefore, notAfter)
	StatusRetiring = "retiring" // the previous key during the overlap: valid until notAfter
	StatusRevoked  = "revoked"  // never valid
)

// Hash algorithms of API-key records.
const (
	AlgSHA256     = "sha256"      // SHA-256 of the key
	AlgHMACSHA256 = "hmac-sha256" // HMAC-SHA-256 of the key under the pepper
)

// MaxDocBytes bounds a caller or verifier document (Secrets Manager's own
// limit on a secret value is 64 KiB).
const MaxDocBytes = 64 << 10

// ErrDocument is wrapped by every error about a malformed caller or verifier
// document. The errors name the field, never a value.
var ErrDocument = errors.New("apikey: malformed document")

func docErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrDocument, fmt.Sprintf(format, args...))
}

// CallerSecret is the rotated secret: the credential a caller presents (an API
// key) or signs with (a webhook signing key). Key is empty only in a secret
// that was created without a key, before its first rotation.
type CallerSecret struct {
	Kind      string
	KeyID     string
	Key       Key
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Issued reports whether the secret holds a key.
func (c *CallerSecret) Issued() bool { return !c.Key.IsZero() }

type callerWire struct {
	SchemaVersion int        `json:"schemaVersion"`
	Kind          string     `json:"kind"`
	KeyID         string     `json:"keyId,omitempty"`
	Key           string     `json:"key,omitempty"`
	CreatedAt     *time.Time `json:"createdAt,omitempty"`
	ExpiresAt     *time.Time `json:"expiresAt,omitempty"`
}

// ParseCaller decodes and checks a caller secret. A document with only
// schemaVersion and kind is a secret waiting for its first key.
func ParseCaller(b []byte) (*CallerSecret, error) {
	if len(b) > MaxDocBytes {
		return nil, docErr("caller secret is %d bytes, more than %d", len(b), MaxDocBytes)
	}
	var w callerWire
	if err := strictUnmarshal(b, &w); err != nil {
		return nil, docErr("caller secret is not a JSON object of the documented schema")
	}
	if w.SchemaVersion != SchemaVersion {
		return nil, docErr("caller secret has schemaVersion %d, want %d", w.SchemaVersion, SchemaVersion)
	}
	if w.Kind != KindAPIKey && w.Kind != KindWebhook {
		return nil, docErr("caller secret kind must be %q or %q", KindAPIKey, KindWebhook)
	}
	c := &CallerSecret{Kind: w.Kind}
	if w.Key == "" && w.KeyID == "" && w.CreatedAt == nil && w.ExpiresAt == nil {
		return c, nil
	}
	p, err := ParseKey(w.Key)
	if err != nil {
		return nil, docErr("caller secret field key is not a well-formed key (%v)", err)
	}
	if p.KeyID != w.KeyID {
		return nil, docErr("caller secret field keyId does not match the key")
	}
	if w.CreatedAt == nil || w.ExpiresAt == nil || !w.ExpiresAt.After(*w.CreatedAt) {
		return nil, docErr("caller secret needs createdAt and a later expiresAt")
	}
	c.KeyID, c.Key, c.CreatedAt, c.ExpiresAt = w.KeyID, NewKey(w.Key), w.CreatedAt.UTC(), w.ExpiresAt.UTC()
	return c, nil
}

// Encode returns the caller secret's JSON, with the plaintext key.
func (c *CallerSecret) Encode() ([]byte, error) {
	w := callerWire{SchemaVersion: SchemaVersion, Kind: c.Kind, KeyID: c.KeyID, Key: c.Key.Reveal()}
	if c.Issued() {
		ca, ea := c.CreatedAt.UTC(), c.ExpiresAt.UTC()
		w.CreatedAt, w.ExpiresAt = &ca, &ea
	}
	return json.Marshal(w)
}

// VerifierDoc is the verifier secret: what a receiving service checks keys
// against. For API keys a record holds a hash of the key, never the key; for
// webhook signing keys it must hold the key itself (Secret), since checking an
// HMAC signature needs the HMAC key.
type VerifierDoc struct {
	Kind string
	// PepperFingerprint identifies the pepper hmac-sha256 records were made
	// with (see PepperFingerprint); empty when no record uses a pepper.
	PepperFingerprint string
	Records           []Record
}

// Record is one key's verifier record.
type Record struct {
	KeyID string
	// Owner scopes the record to one caller secret (OwnerID of its ARN), so
	// many caller secrets can share one verifier secret and a rotation only
	// changes its own records. Empty in records made by hand.
	Owner     string
	Prefix    string
	Alg       string // API keys: AlgSHA256 or AlgHMACSHA256
	Hash      []byte // API keys: 32 bytes
	Secret    Key    // webhook keys: the HMAC key; empty once revoked
	Status    string
	NotBefore time.Time
	NotAfter  time.Time // zero: no end
}

type verifierWire struct {
	SchemaVersion     int          `json:"schemaVersion"`
	Kind              string       `json:"kind"`
	PepperFingerprint string       `json:"pepperFingerprint,omitempty"`
	Keys              []recordWire `json:"keys"`
}

type recordWire struct {
	KeyID     string     `json:"keyId"`
	Owner     string     `json:"owner,omitempty"`
	Prefix    string     `json:"prefix"`
	Alg       string     `json:"alg,omitempty"`
	Hash      string     `json:"hash,omitempty"`
	Secret    string     `json:"secret,omitempty"`
	Status    string     `json:"status"`
	NotBefore time.Time  `json:"notBefore"`
	NotAfter  *time.Time `json:"notAfter,omitempty"`
}

// MaxRecords bounds the records in a verifier document (many caller secrets
// may share one; Secrets Manager's 64 KiB limit comes first, at about 250).
const MaxRecords = 256

// ParseVerifier decodes and checks a verifier document.
func ParseVerifier(b []byte) (*VerifierDoc, error) {
	if len(b) > MaxDocBytes {
		return nil, docErr("verifier secret is %d bytes, more than %d", len(b), MaxDocBytes)
	}
	var w verifierWire
	if err := strictUnmarshal(b, &w); err != nil {
		return nil, docErr("verifier secret is not a JSON object of the documented schema")
	}
	if w.SchemaVersion != SchemaVersion {
		return nil, docErr("verifier secret has schemaVersion %d, want %d", w.SchemaVersion, SchemaVersion)
	}
	if w.Kind != KindAPIKey && w.Kind != KindWebhook {
		return nil, docErr("verifier secret kind must be %q or %q", KindAPIKey, KindWebhook)
	}
	if len(w.Keys) > MaxRecords {
		return nil, docErr("verifier secret has %d records, more than %d", len(w.Keys), MaxRecords)
	}
	d := &VerifierDoc{Kind: w.Kind, PepperFingerprint: w.PepperFingerprint}
	seen := map[string]bool{}
	for i, rw := range w.Keys {
		r, err := rw.record(w.Kind)
		if err != nil {
			return nil, docErr("verifier record %d: %v", i, err)
		}
		if seen[r.KeyID] {
			return nil, docErr("verifier record %d: duplicate keyId", i)
		}
		seen[r.KeyID] = true
		d.Records = append(d.Records, r)
	}
	return d, nil
}

func (rw recordWire) record(kind string) (Record, error) {
	r := Record{KeyID: rw.KeyID, Owner: rw.Owner, Prefix: rw.Prefix, Alg: rw.Alg, Status: rw.Status, NotBefore: rw.NotBefore.UTC()}
	if len(rw.KeyID) != KeyIDLen || !isBase62(rw.KeyID) {
		return r, errors.New("keyId is not a key id")
	}
	if len(rw.Owner) > 64 || !isOwnerID(rw.Owner) {
		return r, errors.New("owner is not an owner id")
	}
	if !ValidPrefix(rw.Prefix) {
		return r, errors.New("prefix is not a valid prefix")
	}
	switch rw.Status {
	case StatusActive, StatusRetiring, StatusRevoked:
	default:
		return r, errors.New("status must be active, retiring or revoked")
	}
	if rw.NotAfter != nil {
		r.NotAfter = rw.NotAfter.UTC()
	}
	switch kind {
	case KindAPIKey:
		if rw.Secret != "" {
			return r, errors.New("an API-key record must not hold the key")
		}
		if rw.Alg != AlgSHA256 && rw.Alg != AlgHMACSHA256 {
			return r, errors.New("alg must be sha256 or hmac-sha256")
		}
		h, err := base64.RawURLEncoding.DecodeString(rw.Hash)
		if err != nil || len(h) != sha256.Size {
			return r, errors.New("hash is not 32 bytes of unpadded base64url")
		}
		r.Hash = h
	case KindWebhook:
		if rw.Hash != "" || rw.Alg != "" {
			return r, errors.New("a webhook record holds its key in secret, not a hash")
		}
		if rw.Secret == "" {
			if rw.Status != StatusRevoked {
				return r, errors.New("a live webhook record needs its secret")
			}
		} else {
			p, err := ParseKey(rw.Secret)
			if err != nil || p.KeyID != rw.KeyID || p.Prefix != rw.Prefix {
				return r, errors.New("secret is not the well-formed key of this record")
			}
			r.Secret = NewKey(rw.Secret)
		}
	}
	return r, nil
}

// Encode returns the document's canonical JSON: records sorted by notBefore
// then key id, times in UTC. Encoding the same document always gives the same
// bytes, which the rotation relies on for idempotent writes.
func (d *VerifierDoc) Encode() ([]byte, error) {
	w := verifierWire{SchemaVersion: SchemaVersion, Kind: d.Kind, PepperFingerprint: d.PepperFingerprint, Keys: []recordWire{}}
	recs := append([]Record(nil), d.Records...)
	sort.Slice(recs, func(i, j int) bool {
		if !recs[i].NotBefore.Equal(recs[j].NotBefore) {
			return recs[i].NotBefore.Before(recs[j].NotBefore)
		}
		return recs[i].KeyID < recs[j].KeyID
	})
	for _, r := range recs {
		rw := recordWire{KeyID: r.KeyID, Owner: r.Owner, Prefix: r.Prefix, Alg: r.Alg, Status: r.Status, NotBefore: r.NotBefore.UTC(), Secret: r.Secret.Reveal()}
		if r.Hash != nil {
			rw.Hash = base64.RawURLEncoding.EncodeToString(r.Hash)
		}
		if !r.NotAfter.IsZero() {
			na := r.NotAfter.UTC()
			rw.NotAfter = &na
		}
		w.Keys = append(w.Keys, rw)
	}
	return json.Marshal(w)
}

// Find returns the record for keyID, or nil.
func (d *VerifierDoc) Find(keyID string) *Record {
	for i := range d.Records {
		if d.Records[i].KeyID == keyID {
			return &d.Records[i]
		}
	}
	return nil
}

// OwnerID returns the owner id of a caller secret's ARN: 16 characters of
// base64url SHA-256. It is an opaque scope, not a secret.
func OwnerID(secretARN string) string {
	s := sha256.Sum256([]byte("apikey owner v1\x00" + secretARN))
	return "o" + base64.RawURLEncoding.EncodeToString(s[:12])
}

func isOwnerID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// MinPepperLen is the shortest pepper accepted.
const MinPepperLen = 32

// PepperFingerprint returns a short public identifier of pepper (an HMAC of a
// fixed label, not of any key), so a consumer holding the wrong pepper fails
// with a clear error instead of rejecting every key.
func PepperFingerprint(pepper []byte) string {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte("apikey pepper fingerprint v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
}

// HashKey returns the verifier hash of key under alg: SHA-256 of the key, or
// HMAC-SHA-256 of the key keyed with pepper.
func HashKey(alg string, pepper []byte, key Key) ([]byte, error) {
	switch alg {
	case AlgSHA256:
		s := sha256.Sum256([]byte(key.Reveal()))
		return s[:], nil
	case AlgHMACSHA256:
		if len(pepper) < MinPepperLen {
			return nil, fmt.Errorf("apikey: pepper shorter than %d bytes", MinPepperLen)
		}
		m := hmac.New(sha256.New, pepper)
		m.Write([]byte(key.Reveal()))
		return m.Sum(nil), nil
	}
	return nil, fmt.Errorf("apikey: unknown hash algorithm %q", alg)
}

// NewRecord builds the verifier record of a caller secret's key: for API keys
// the hash under alg (and pepper), for webhook keys the key itself.
func NewRecord(c *CallerSecret, alg string, pepper []byte, status string) (Record, error) {
	if !c.Issued() {
		return Record{}, errors.New("apikey: the caller secret holds no key")
	}
	p, err := ParseKey(c.Key.Reveal())
	if err != nil {
		return Record{}, err
	}
	r := Record{KeyID: c.KeyID, Prefix: p.Prefix, Status: status, NotBefore: c.CreatedAt.UTC(), NotAfter: c.ExpiresAt.UTC()}
	if c.Kind == KindWebhook {
		r.Secret = c.Key
		return r, nil
	}
	r.Alg = alg
	r.Hash, err = HashKey(alg, pepper, c.Key)
	return r, err
}

// strictUnmarshal decodes one JSON value, rejecting unknown fields and
// trailing data.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}
