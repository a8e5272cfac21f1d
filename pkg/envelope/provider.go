package envelope

import (
	"context"
	"fmt"
	"log/slog"
)

// Provider wraps and unwraps data keys. KMSProvider and LocalProvider
// implement it; the blob format is the same for every provider, and the
// provider's id is written into (and authenticated with) each blob.
//
// Implementations must fail closed: refuse a key id that is not allowed
// before making any remote call (returning an *Error of kind
// ErrKeyNotAllowed), bind the wrapped key to the encryption context, and
// check which key actually unwrapped it.
type Provider interface {
	// ID is the provider id written into every blob's header.
	ID() ProviderID
	// GenerateDataKey returns a fresh 32-byte data key and its wrapped form,
	// wrapped under the provider's current key and bound to ec.
	GenerateDataKey(ctx context.Context, ec Context) (*DataKey, error)
	// DecryptDataKey unwraps edk, which the blob says keyID wrapped under ec.
	DecryptDataKey(ctx context.Context, keyID string, edk []byte, ec Context) (*DataKey, error)
	// ReWrap wraps the data key inside edk under toKeyID instead, without the
	// plaintext key leaving the provider where the provider can do that
	// (KMS ReEncrypt). It returns the new wrapped key.
	ReWrap(ctx context.Context, keyID string, edk []byte, ec Context, toKeyID string) (*DataKey, error)
	// Allowed reports whether blobs wrapped under keyID may be decrypted.
	Allowed(keyID string) bool
}

// DataKey is a data key as a provider returns it. Plaintext is nil when the
// provider did not expose it (ReWrap). A DataKey redacts itself when printed
// or logged; Destroy clears the plaintext.
type DataKey struct {
	KeyID     string // the key that wrapped it: a KMS key ARN or a local key id
	Encrypted []byte // the wrapped data key, stored in the blob
	Plaintext Secret // 32 bytes
}

// Destroy clears the plaintext key (best effort: see the package doc).
func (k *DataKey) Destroy() {
	if k != nil {
		clear(k.Plaintext)
		k.Plaintext = nil
	}
}

func (k DataKey) String() string {
	return "envelope.DataKey{KeyID:" + k.KeyID + " Plaintext:[REDACTED]}"
}

// GoString redacts, like String.
func (k DataKey) GoString() string { return k.String() }

// Format keeps the plaintext out of every fmt verb.
func (k DataKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue logs the key id only.
func (k DataKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("keyId", k.KeyID), slog.String("plaintext", "[REDACTED]"))
}
