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
// check which key actually unwrapped it. Errors should be *Error values; the
// Envelope returns any other error as an *Error of kind ErrProvider.
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

// The provider calls an Envelope makes, each checking the answer's shape
// before it is used. A provider's error that is not an *Error (a Provider
// from outside this package) becomes one of kind ErrProvider, its cause kept.

// generateDataKey asks p for a data key bound to ec.
func generateDataKey(ctx context.Context, p Provider, ec Context) (*DataKey, error) {
	dk, err := p.GenerateDataKey(ctx, ec)
	if err != nil {
		return nil, providerErr("encrypt", err)
	}
	if len(dk.Plaintext) != DataKeySize || dk.KeyID == "" || len(dk.KeyID) > MaxKeyIDBytes || len(dk.Encrypted) == 0 || len(dk.Encrypted) > MaxEDKBytes {
		dk.Destroy()
		return nil, newErr(ErrProvider, "encrypt", "provider %s returned a data key of %d bytes, key id of %d bytes, wrapped key of %d bytes", p.ID(), len(dk.Plaintext), len(dk.KeyID), len(dk.Encrypted))
	}
	return dk, nil
}

// unwrapDataKey asks p to unwrap edk, which keyID wrapped under ec.
func unwrapDataKey(ctx context.Context, p Provider, op, keyID string, edk []byte, ec Context) (*DataKey, error) {
	dk, err := p.DecryptDataKey(ctx, keyID, edk, ec)
	if err != nil {
		return nil, providerErr(op, err)
	}
	if len(dk.Plaintext) != DataKeySize {
		dk.Destroy()
		return nil, newErr(ErrProvider, op, "provider returned a data key of %d bytes", len(dk.Plaintext))
	}
	return dk, nil
}

// checkTarget refuses a re-wrap to a key this Envelope could not decrypt with.
func checkTarget(p Provider, toKeyID string) error {
	if !p.Allowed(toKeyID) {
		return newErr(ErrKeyNotAllowed, "rewrap", "target key %q is not on the allow-list (a blob may only be moved to a key this Envelope can decrypt with)", toKeyID)
	}
	return nil
}

// rewrapDataKey asks p to wrap the data key inside edk (under keyID, bound
// to ec) under toKeyID instead, and returns the new key id and wrapped key;
// a plaintext key the provider returns along is cleared.
func rewrapDataKey(ctx context.Context, p Provider, keyID string, edk []byte, ec Context, toKeyID string) (*DataKey, error) {
	dk, err := p.ReWrap(ctx, keyID, edk, ec, toKeyID)
	if err != nil {
		return nil, providerErr("rewrap", err)
	}
	dk.Destroy()
	if dk.KeyID != toKeyID || len(dk.Encrypted) == 0 || len(dk.Encrypted) > MaxEDKBytes {
		return nil, newErr(ErrProvider, "rewrap", "provider returned a wrapped key of %d bytes under %q, want %q", len(dk.Encrypted), dk.KeyID, toKeyID)
	}
	return dk, nil
}

// providerErr returns err if it is an *Error, or an *Error of kind
// ErrProvider that wraps it.
func providerErr(op string, err error) error {
	if _, ok := err.(*Error); ok {
		return err
	}
	return &Error{Kind: ErrProvider, Op: op, Cause: err}
}
