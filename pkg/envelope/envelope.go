package envelope

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Config configures an Envelope.
type Config struct {
	// Provider wraps and unwraps data keys (required).
	Provider Provider
	// Cache enables the data-key cache. Nil (the default) means every Encrypt
	// asks the provider for a fresh data key and every Decrypt unwraps one.
	Cache *CacheConfig
	// WriteVersion is the format new blobs are written in: 0 or Version2 (the
	// default), or Version1 while readers that predate format 2 are still
	// deployed. Every version is always readable.
	WriteVersion int
}

// Envelope encrypts and decrypts blobs with data keys from one Provider. It
// is safe for concurrent use. It holds cached key material: it redacts itself
// when printed, and Close clears the cache.
type Envelope struct {
	p       Provider
	cache   *cache // nil when caching is off
	version int    // format written
}

// New returns an Envelope.
func New(cfg Config) (*Envelope, error) {
	if cfg.Provider == nil {
		return nil, newErr(ErrMalformed, "new", "Config.Provider is required")
	}
	e := &Envelope{p: cfg.Provider, version: Version2}
	switch cfg.WriteVersion {
	case 0, Version2:
	case Version1:
		e.version = Version1
	default:
		return nil, newErr(ErrMalformed, "new", "Config.WriteVersion %d is not 1 or 2", cfg.WriteVersion)
	}
	if cfg.Cache != nil {
		c, err := newCache(*cfg.Cache, nil)
		if err != nil {
			return nil, err
		}
		e.cache = c
	}
	return e, nil
}

func (e *Envelope) String() string {
	return fmt.Sprintf("envelope.Envelope{provider:%s cache:%t}", e.p.ID(), e.cache != nil)
}

// GoString redacts, like String.
func (e *Envelope) GoString() string { return e.String() }

// LogValue logs the provider and whether caching is on.
func (e *Envelope) LogValue() slog.Value {
	return slog.GroupValue(slog.String("provider", e.p.ID().String()), slog.Bool("cache", e.cache != nil))
}

// Close clears every cached data key. The Envelope still works afterwards
// (with an empty cache).
func (e *Envelope) Close() {
	if e.cache != nil {
		e.cache.purge()
	}
}

// CacheStats returns the cache's counters (zero when caching is off).
func (e *Envelope) CacheStats() CacheStats {
	if e.cache == nil {
		return CacheStats{}
	}
	return e.cache.stats()
}

// scratch is per-call working memory, pooled so the hot path does not
// allocate it. okm holds key material and is cleared before reuse.
type scratch struct {
	rnd  [MessageIDSize + NonceSize]byte
	okm  [okmSize]byte
	buf  [512]byte // canonical context, cache-key input
	mbuf [128]byte // format 2: a canonical context (the message context, or the stable one on the map API)
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(s *scratch) {
	clear(s.okm[:])
	scratchPool.Put(s)
}

// done releases material obtained for one operation.
func (e *Envelope) done(m *keyMaterial, ent *cacheEntry) {
	if ent != nil {
		e.cache.release(ent)
	} else {
		m.destroy()
	}
}

// Encrypt encrypts plaintext under the encryption context ec and returns the
// blob in a new slice. The context is bound to the data key (by the provider)
// and to the ciphertext (as authenticated data); Decrypt needs the same
// context. It is AppendEncrypt with a nil dst. In format 2, ec is the stable
// context and the message context is empty (AppendEncryptWith sets both).
func (e *Envelope) Encrypt(ctx context.Context, plaintext []byte, ec Context) ([]byte, error) {
	return e.AppendEncrypt(ctx, nil, plaintext, ec)
}

// AppendEncrypt encrypts plaintext under the encryption context ec, appends
// the blob to dst and returns the updated slice, in the idiom of
// cipher.AEAD.Seal: with enough spare capacity in dst (the blob's size is
// the plaintext's plus a header of 88 bytes + canonical context + key id +
// wrapped data key, plus the 16-byte tag) nothing is allocated for the
// output.
//
// Aliasing: dst's spare capacity may overlap plaintext in any way. To reuse
// plaintext's storage, use plaintext[:0] as dst (with room for the header
// and tag beyond len(plaintext)); the plaintext is then overwritten with the
// blob. Because the header precedes the ciphertext, an overlapping plaintext
// is first moved to where its ciphertext goes, which costs one copy. Neither
// plaintext nor dst is written until every step that can fail has
// succeeded; on failure AppendEncrypt returns nil and an *Error. (The sizes
// above are format 1's; a format-2 blob's header is 90 bytes + both
// canonical contexts + key id + wrapped data key, §10 of the format.)
func (e *Envelope) AppendEncrypt(ctx context.Context, dst, plaintext []byte, ec Context) ([]byte, error) {
	if e.version == Version1 {
		return e.appendEncrypt1(ctx, dst, plaintext, ec)
	}
	s := getScratch()
	defer putScratch(s)
	key, err := ec.appendCanonical("encrypt", append(s.buf[:0], 'e', Version2))
	if err != nil {
		return nil, err
	}
	return e.encrypt2(ctx, dst, plaintext, ec, key[2:], key, emptyContext)
}

// Decrypt authenticates and decrypts blob, which must have been encrypted
// under exactly the encryption context ec (a format-2 blob: ec is its stable
// context, and its message context must be empty; AppendDecryptWith takes
// both) and under a key the provider allows, and returns the plaintext in a
// new slice. Every failure is an *Error; on failure no plaintext is
// returned. It is AppendDecrypt with a nil dst.
func (e *Envelope) Decrypt(ctx context.Context, blob []byte, ec Context) (Secret, error) {
	return e.AppendDecrypt(ctx, nil, blob, ec)
}

// AppendDecrypt authenticates and decrypts blob as Decrypt does, appends the
// plaintext to dst and returns the updated slice, in the idiom of
// cipher.AEAD.Open: with len(blob) spare bytes in dst (the plaintext is
// shorter than the blob) nothing is allocated for the output. The result is
// a Secret (it redacts itself when printed); it is assignable to a []byte
// variable, so buf, err = env.AppendDecrypt(ctx, buf[:0], blob, ec) works.
//
// Aliasing: dst's spare capacity may overlap blob in any way. To reuse
// blob's storage, use blob[:0] as dst; the body is then decrypted in place
// and the plaintext moved to the start. Every failure is an *Error and
// returns nil. Even when AppendDecrypt fails, the contents of dst up to its
// capacity — and, if they overlap, of blob — may have been overwritten
// (GCM clears its output when the tag does not match); no plaintext is left
// there.
func (e *Envelope) AppendDecrypt(ctx context.Context, dst, blob []byte, ec Context) (Secret, error) {
	if len(blob) > 0 && blob[0] == Version2 {
		s := getScratch()
		defer putScratch(s)
		canon, err := ec.appendCanonical("decrypt", s.mbuf[:0])
		if err != nil {
			return nil, err
		}
		return e.decrypt2(ctx, dst, blob, ec, canon, nil, emptyContext, s)
	}
	return e.appendDecrypt1(ctx, dst, blob, ec)
}

// bytesAllower is implemented by this package's providers: an allow-list
// check on the header's key id without converting it to a string (which
// would allocate, as the string escapes through the interface call).
type bytesAllower interface{ allowedBytes(keyID []byte) bool }

func allowed(p Provider, keyID []byte) bool {
	if b, ok := p.(bytesAllower); ok {
		return b.allowedBytes(keyID)
	}
	return p.Allowed(string(keyID))
}

// asError returns err as an *Error when it is one.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
