package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"sync"
	"time"
)

// DefaultSkew is how much earlier than its notBefore a key is accepted, for
// clocks that run behind the rotation function's.
const DefaultSkew = time.Minute

// Keyring verifies keys and webhook signatures against one verifier document.
// It is immutable and safe for concurrent use; a Verifier swaps Keyrings when
// it reloads the verifier secret.
type Keyring struct {
	kind     string
	byID     map[string]*entry
	prefixes []string
	live     []*entry // webhook records that are not revoked
	hmacPool *sync.Pool
	skew     time.Duration
}

type entry struct {
	keyID     string
	prefix    string
	alg       string
	hash      [sha256.Size]byte
	secret    []byte     // webhook keys
	pool      *sync.Pool // of HMACs keyed with secret
	status    string
	notBefore time.Time
	notAfter  time.Time
}

// KeyringOption adjusts a Keyring.
type KeyringOption func(*Keyring)

// WithSkew sets how much earlier than notBefore a key is accepted (default
// DefaultSkew). notAfter is never stretched.
func WithSkew(d time.Duration) KeyringOption { return func(k *Keyring) { k.skew = d } }

// NewKeyring prepares doc for verification. pepper is required when any record
// uses hmac-sha256, and must match the document's pepper fingerprint.
func NewKeyring(doc *VerifierDoc, pepper []byte, opts ...KeyringOption) (*Keyring, error) {
	k := &Keyring{kind: doc.Kind, byID: make(map[string]*entry, len(doc.Records)), skew: DefaultSkew}
	for _, o := range opts {
		o(k)
	}
	needPepper := false
	for _, r := range doc.Records {
		e := &entry{keyID: r.KeyID, prefix: r.Prefix, alg: r.Alg, status: r.Status, notBefore: r.NotBefore, notAfter: r.NotAfter}
		copy(e.hash[:], r.Hash)
		if !r.Secret.IsZero() {
			secret := []byte(r.Secret.Reveal())
			e.secret = secret
			e.pool = &sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}
		}
		if r.Alg == AlgHMACSHA256 {
			needPepper = true
		}
		k.byID[r.KeyID] = e
		if r.Status != StatusRevoked {
			k.addPrefix(r.Prefix)
			if doc.Kind == KindWebhook {
				k.live = append(k.live, e)
			}
		}
	}
	if needPepper {
		if len(pepper) < MinPepperLen {
			return nil, errors.New("apikey: the verifier records use hmac-sha256 but no pepper (of at least 32 bytes) was given")
		}
		if doc.PepperFingerprint != PepperFingerprint(pepper) {
			return nil, errors.New("apikey: the pepper does not match the verifier document's pepperFingerprint")
		}
		p := append([]byte(nil), pepper...)
		k.hmacPool = &sync.Pool{New: func() any { return hmac.New(sha256.New, p) }}
	}
	return k, nil
}

func (k *Keyring) addPrefix(p string) {
	for _, q := range k.prefixes {
		if q == p {
			return
		}
	}
	k.prefixes = append(k.prefixes, p)
}

// Kind is the document's kind (apikey or webhook).
func (k *Keyring) Kind() string { return k.kind }

// Verify checks a presented API key at time now: length, format and checksum
// first (no lookup for a typo), then a prefix this document uses, the record
// by key id, the hash in constant time, then status and time window. It
// returns the key id on success; on a status or window error it returns the
// key id too, for the caller's log. Errors are this package's Err values.
func (k *Keyring) Verify(key string, now time.Time) (string, error) {
	if len(key) > MaxKeyLen {
		return "", ErrOversized
	}
	sc := getScratch(key)
	defer scratchPool.Put(sc)
	p, err := parseKey(key, sc)
	if err != nil {
		return "", err
	}
	if k.kind != KindAPIKey || !k.hasPrefix(p.Prefix) {
		return "", ErrWrongPrefix
	}
	e := k.byID[p.KeyID]
	if e == nil {
		return "", ErrUnknownKey
	}
	m := sc.sha
	if e.alg == AlgHMACSHA256 {
		m = k.hmacPool.Get().(hash.Hash)
		defer k.hmacPool.Put(m)
	}
	m.Reset()
	m.Write(sc.buf[:sc.n])
	if subtle.ConstantTimeCompare(m.Sum(sc.sum[:0]), e.hash[:]) != 1 {
		return "", ErrMismatch
	}
	return e.keyID, e.check(now, k.skew)
}

func (k *Keyring) hasPrefix(p string) bool {
	for _, q := range k.prefixes {
		if q == p {
			return true
		}
	}
	return false
}

func (e *entry) check(now time.Time, skew time.Duration) error {
	switch {
	case e.status == StatusRevoked:
		return ErrRevoked
	case now.Add(skew).Before(e.notBefore):
		return ErrNotYetValid
	case !e.notAfter.IsZero() && !now.Before(e.notAfter):
		return ErrExpired
	}
	return nil
}

// Live reports the key ids that verify at now.
func (k *Keyring) Live(now time.Time) []string {
	var ids []string
	for id, e := range k.byID {
		if e.check(now, k.skew) == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// String describes the keyring without key material.
func (k *Keyring) String() string {
	return fmt.Sprintf("apikey.Keyring{kind: %s, records: %d}", k.kind, len(k.byID))
}
