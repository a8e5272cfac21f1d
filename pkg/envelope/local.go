package envelope

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"unicode"
)

// LocalKey is a key-encryption key for the local provider: 32 bytes and an
// id that blobs name. It redacts itself when printed or logged.
type LocalKey struct {
	id  string
	key Secret
}

// NewLocalKey returns a key-encryption key. id is 1–256 bytes of printable
// characters; key is 32 bytes (copied).
func NewLocalKey(id string, key []byte) (*LocalKey, error) {
	if id == "" || len(id) > 256 {
		return nil, newErr(ErrMalformed, "local-key", "id must be 1 to 256 characters")
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return nil, newErr(ErrMalformed, "local-key", "id must be printable")
		}
	}
	if len(key) != 32 {
		return nil, newErr(ErrMalformed, "local-key", "key %q must be 32 bytes, got %d", id, len(key))
	}
	return &LocalKey{id: id, key: bytes.Clone(key)}, nil
}

// ParseLocalKey decodes a key written as base64 (standard or URL alphabet,
// padded or not; surrounding whitespace ignored) of exactly 32 bytes.
// Generate one with: head -c 32 /dev/urandom | base64
func ParseLocalKey(id, encoded string) (*LocalKey, error) {
	s := strings.TrimSpace(encoded)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if len(s) > 64 {
			break
		}
		if b, err := enc.DecodeString(s); err == nil {
			defer clear(b)
			return NewLocalKey(id, b)
		}
	}
	return nil, newErr(ErrMalformed, "local-key", "key %q is not base64 of 32 bytes", id)
}

// LocalKeyFromFile reads a base64 key from a file (see ParseLocalKey).
// Keep the file readable by the service's user only.
func LocalKeyFromFile(id, path string) (*LocalKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Kind: ErrMalformed, Op: "local-key", Detail: "reading key " + id, Cause: err}
	}
	defer clear(b)
	return ParseLocalKey(id, string(b))
}

// LocalKeyFromEnv reads a base64 key from the environment variable name.
func LocalKeyFromEnv(id, name string) (*LocalKey, error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return nil, newErr(ErrMalformed, "local-key", "environment variable %s is not set", name)
	}
	return ParseLocalKey(id, v)
}

// ID returns the key's id.
func (k *LocalKey) ID() string { return k.id }

func (k LocalKey) String() string   { return "envelope.LocalKey{id:" + k.id + " key:[REDACTED]}" }
func (k LocalKey) GoString() string { return k.String() }

// Format keeps the key out of every fmt verb.
func (k LocalKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue logs the id only.
func (k LocalKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.id), slog.String("key", "[REDACTED]"))
}

// LocalProvider wraps data keys with local key-encryption keys (AES-256-GCM,
// the context as authenticated data), for development and for running
// without AWS. Blobs have the same format as with KMS and provider id
// ProviderLocal. The first key wraps new data keys; every key in the ring may
// unwrap, and only those.
type LocalProvider struct {
	primary *LocalKey
	ring    map[string]cipher.AEAD
	wraps   atomic.Int64 // data keys wrapped by this provider (GenerateDataKey and ReWrap)
	limit   int64        // MaxLocalWraps; tests lower it
}

// MaxLocalWraps is how many data keys one LocalProvider wraps before it
// refuses (ErrProvider): each wrap is AES-256-GCM under the KEK with a random
// 96-bit nonce, and NIST SP 800-38D allows at most 2^32 such uses of one key.
// A provider counts only its own wraps, so the limit is a quarter of that,
// leaving room for several processes sharing one KEK; with a data-key cache a
// process wraps one key per context per MaxAge, far below it. Rotate the KEK
// (a new primary, the old one kept for unwrapping) long before.
const MaxLocalWraps = 1 << 30

var _ Provider = (*LocalProvider)(nil)

// NewLocalProvider returns a provider whose new data keys are wrapped under
// primary; older keys may still unwrap (and be re-wrapped from).
func NewLocalProvider(primary *LocalKey, older ...*LocalKey) (*LocalProvider, error) {
	if primary == nil {
		return nil, newErr(ErrMalformed, "new", "a primary local key is required")
	}
	p := &LocalProvider{primary: primary, ring: map[string]cipher.AEAD{}, limit: MaxLocalWraps}
	for _, k := range append([]*LocalKey{primary}, older...) {
		if k == nil {
			return nil, newErr(ErrMalformed, "new", "nil local key")
		}
		if _, dup := p.ring[k.id]; dup {
			return nil, newErr(ErrMalformed, "new", "local key id %q given twice", k.id)
		}
		block, err := aes.NewCipher(k.key)
		if err != nil {
			return nil, newErr(ErrMalformed, "new", "local key %q unusable", k.id)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, newErr(ErrMalformed, "new", "local key %q unusable", k.id)
		}
		p.ring[k.id] = gcm
	}
	return p, nil
}

// ID returns ProviderLocal.
func (p *LocalProvider) ID() ProviderID { return ProviderLocal }

// Allowed reports whether keyID is in the key ring.
func (p *LocalProvider) Allowed(keyID string) bool { _, ok := p.ring[keyID]; return ok }

func (p *LocalProvider) allowedBytes(keyID []byte) bool { _, ok := p.ring[string(keyID)]; return ok }

func (p *LocalProvider) String() string {
	return fmt.Sprintf("envelope.LocalProvider{primary:%s keys:%d}", p.primary.id, len(p.ring))
}

// GoString redacts, like String.
func (p *LocalProvider) GoString() string { return p.String() }

// LogValue logs the primary key's id.
func (p *LocalProvider) LogValue() slog.Value { return slog.StringValue(p.String()) }

// Format prints String for every verb: with %s or %q fmt would print the
// primary *LocalKey's fields with its methods switched off.
func (p *LocalProvider) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(p.String())) }

const localWrapLabel = "rotation-suite/envelope v1 local wrap"

// wrapAAD binds a wrapped key to the key id and the canonical context.
func wrapAAD(keyID string, ec Context) ([]byte, error) {
	aad := append([]byte(localWrapLabel), byte(len(keyID)>>8), byte(len(keyID)))
	aad = append(aad, keyID...)
	return ec.appendCanonical("context", aad)
}

func (p *LocalProvider) wrap(keyID string, dataKey []byte, ec Context) ([]byte, error) {
	aad, err := wrapAAD(keyID, ec)
	if err != nil {
		return nil, err
	}
	if n := p.wraps.Add(1); n > p.limit {
		p.wraps.Add(-1)
		return nil, newErr(ErrProvider, "local:wrap", "local key %q has wrapped %d data keys, the limit for random nonces; rotate the key-encryption key", keyID, p.limit)
	}
	out := make([]byte, NonceSize, NonceSize+len(dataKey)+TagSize)
	if _, err := rand.Read(out); err != nil {
		return nil, &Error{Kind: ErrProvider, Op: "local:wrap", Detail: "random source failed", Cause: err}
	}
	return p.ring[keyID].Seal(out, out[:NonceSize], dataKey, aad), nil
}

func (p *LocalProvider) unwrap(keyID string, edk []byte, ec Context) (Secret, error) {
	gcm, ok := p.ring[keyID]
	if !ok {
		return nil, newErr(ErrKeyNotAllowed, "local:unwrap", "local key %q is not in the key ring", keyID)
	}
	if len(edk) != NonceSize+DataKeySize+TagSize {
		return nil, newErr(ErrAuthentication, "local:unwrap", "wrapped data key of %d bytes", len(edk))
	}
	aad, err := wrapAAD(keyID, ec)
	if err != nil {
		return nil, err
	}
	dk, err := gcm.Open(nil, edk[:NonceSize], edk[NonceSize:], aad)
	if err != nil {
		return nil, newErr(ErrAuthentication, "local:unwrap", "wrapped data key does not open under key %q and this context", keyID)
	}
	return dk, nil
}

// GenerateDataKey makes a random data key and wraps it under the primary key.
func (p *LocalProvider) GenerateDataKey(_ context.Context, ec Context) (*DataKey, error) {
	dk := make(Secret, DataKeySize)
	if _, err := rand.Read(dk); err != nil {
		return nil, &Error{Kind: ErrProvider, Op: "local:generate", Detail: "random source failed", Cause: err}
	}
	edk, err := p.wrap(p.primary.id, dk, ec)
	if err != nil {
		clear(dk)
		return nil, err
	}
	return &DataKey{KeyID: p.primary.id, Encrypted: edk, Plaintext: dk}, nil
}

// DecryptDataKey unwraps edk with the ring's key keyID.
func (p *LocalProvider) DecryptDataKey(_ context.Context, keyID string, edk []byte, ec Context) (*DataKey, error) {
	dk, err := p.unwrap(keyID, edk, ec)
	if err != nil {
		return nil, err
	}
	return &DataKey{KeyID: keyID, Encrypted: edk, Plaintext: dk}, nil
}

// ReWrap unwraps with keyID and wraps under toKeyID (both in the ring).
func (p *LocalProvider) ReWrap(_ context.Context, keyID string, edk []byte, ec Context, toKeyID string) (*DataKey, error) {
	if _, ok := p.ring[toKeyID]; !ok {
		return nil, newErr(ErrKeyNotAllowed, "local:rewrap", "local key %q is not in the key ring", toKeyID)
	}
	dk, err := p.unwrap(keyID, edk, ec)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	nedk, err := p.wrap(toKeyID, dk, ec)
	if err != nil {
		return nil, err
	}
	return &DataKey{KeyID: toKeyID, Encrypted: nedk}, nil
}
