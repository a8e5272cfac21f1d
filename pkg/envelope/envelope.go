package envelope

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"unsafe"
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
	key, err := ec.appendCanonical(append(s.buf[:0], 'e', Version2))
	if err != nil {
		err.(*Error).Op = "encrypt"
		return nil, err
	}
	return e.encrypt2(ctx, dst, plaintext, ec, key[2:], key, emptyContext)
}

// emptyContext is the canonical encoding of the empty context.
var emptyContext = []byte{0, 0}

func (e *Envelope) appendEncrypt1(ctx context.Context, dst, plaintext []byte, ec Context) ([]byte, error) {
	if len(plaintext) > MaxPlaintext {
		return nil, newErr(ErrMalformed, "encrypt", "plaintext of %d bytes exceeds the %d-byte maximum", len(plaintext), MaxPlaintext)
	}
	s := getScratch()
	defer putScratch(s)
	// s.buf = 'E' 0x00 ‖ canonical context: the cache key's input (encryptKey).
	full, err := ec.appendCanonical(append(s.buf[:0], 'E', 0))
	if err != nil {
		err.(*Error).Op = "encrypt"
		return nil, err
	}
	canon := full[2:]
	var (
		m   *keyMaterial
		ent *cacheEntry
	)
	if e.cache != nil && int64(len(plaintext)) <= e.cache.cfg.MaxBytes {
		if ent, _ = e.cache.lookup(full, int64(len(plaintext)), true); ent == nil {
			ent, _, err = e.cache.get(ctx, string(full), int64(len(plaintext)), true, func(ctx context.Context) (*keyMaterial, error) {
				return e.generate(ctx, ec)
			})
		}
		if ent != nil {
			m = ent.m
		}
	} else {
		m, err = e.generate(ctx, ec)
	}
	if err != nil {
		return nil, err
	}
	defer e.done(m, ent)

	if _, err := rand.Read(s.rnd[:]); err != nil {
		return nil, &Error{Kind: ErrProvider, Op: "encrypt", Detail: "random source failed", Cause: err}
	}
	return sealWith(dst, s, m, e.p.ID(), s.rnd[:MessageIDSize], s.rnd[MessageIDSize:], canon, plaintext)
}

// seal builds one blob; the known-answer tests call it with fixed inputs.
func seal(m *keyMaterial, provider ProviderID, msgID, nonce, canon, plaintext []byte) ([]byte, error) {
	s := getScratch()
	defer putScratch(s)
	return sealWith(nil, s, m, provider, msgID, nonce, canon, plaintext)
}

// sealWith appends one blob to dst. msgID, nonce and canon must not overlap
// dst's spare capacity; plaintext may.
func sealWith(dst []byte, s *scratch, m *keyMaterial, provider ProviderID, msgID, nonce, canon, plaintext []byte) ([]byte, error) {
	m.expandInto(&s.okm, provider, msgID)
	gcm, err := newGCM(s.okm[:32])
	if err != nil {
		return nil, err
	}
	size := blobSize(len(canon), len(m.keyID), len(m.edk), len(plaintext))
	hdr := size - len(plaintext) - TagSize
	ret, out := growFor(dst, size)
	if overlaps(out, plaintext) {
		// Move the plaintext to where its ciphertext goes (copy is a
		// memmove), then seal in place: an exact overlap GCM allows.
		plaintext = out[hdr : hdr+copy(out[hdr:], plaintext)]
	}
	_, aadEnd := appendHeader(out[:0], provider, msgID, canon, s.okm[32:], nonce, len(plaintext), m.keyID, m.edk)
	gcm.Seal(out[hdr:hdr], nonce, plaintext, out[:aadEnd])
	return ret, nil
}

// growFor extends dst by n bytes, reusing its spare capacity when there is
// enough, and returns the whole slice and the n new bytes.
func growFor(dst []byte, n int) (whole, tail []byte) {
	total := len(dst) + n
	if dst != nil && cap(dst) >= total { // a nil dst gets a new, non-nil slice even when n is 0
		whole = dst[:total]
	} else {
		whole = make([]byte, total)
		copy(whole, dst)
	}
	return whole, whole[len(dst):]
}

// overlaps reports whether a and b share any byte of memory.
func overlaps(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	pa := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	pb := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return pa < pb+uintptr(len(b)) && pb < pa+uintptr(len(a))
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, &Error{Kind: ErrProvider, Op: "crypto", Detail: "AES key setup failed"}
	}
	gcm, err := cipher.NewGCM(block) // 12-byte nonce, 16-byte tag
	if err != nil {
		return nil, &Error{Kind: ErrProvider, Op: "crypto", Detail: "GCM setup failed"}
	}
	return gcm, nil
}

// generate asks the provider for a data key and derives its PRK.
func (e *Envelope) generate(ctx context.Context, ec Context) (*keyMaterial, error) {
	dk, err := e.p.GenerateDataKey(ctx, ec)
	if err != nil {
		return nil, err
	}
	defer dk.Destroy()
	if len(dk.Plaintext) != DataKeySize || dk.KeyID == "" || len(dk.KeyID) > MaxKeyIDBytes || len(dk.Encrypted) == 0 || len(dk.Encrypted) > MaxEDKBytes {
		return nil, newErr(ErrProvider, "encrypt", "provider %s returned a data key of %d bytes, key id of %d bytes, wrapped key of %d bytes", e.p.ID(), len(dk.Plaintext), len(dk.KeyID), len(dk.Encrypted))
	}
	return newKeyMaterial(dk.Plaintext, dk.KeyID, dk.Encrypted)
}

// Decrypt authenticates and decrypts blob, which must have been encrypted
// under exactly the encryption context ec and under a key the provider
// allows, and returns the plaintext in a new slice. Every failure is an
// *Error; on failure no plaintext is returned. It is AppendDecrypt with a
// nil dst.
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
		canon, err := ec.appendCanonical(s.mbuf[:0])
		if err != nil {
			err.(*Error).Op = "decrypt"
			return nil, err
		}
		return e.decrypt2(ctx, dst, blob, ec, canon, nil, emptyContext, s)
	}
	return e.appendDecrypt1(ctx, dst, blob, ec)
}

func (e *Envelope) appendDecrypt1(ctx context.Context, dst, blob []byte, ec Context) (Secret, error) {
	var l layout
	s := getScratch()
	defer putScratch(s)
	m, ent, err := e.open(ctx, "decrypt", blob, ec, &l, s)
	if err != nil {
		return nil, err
	}
	defer e.done(m, ent)
	m.expandInto(&s.okm, l.provider, l.messageID)
	if subtle.ConstantTimeCompare(s.okm[32:], l.commitment) != 1 {
		return nil, newErr(ErrAuthentication, "decrypt", "key commitment does not match the data key")
	}
	gcm, err := newGCM(s.okm[:32])
	if err != nil {
		return nil, err
	}
	ret, out := growFor(dst, len(l.body)-TagSize)
	if overlaps(out, blob) {
		// Open in place (an exact overlap GCM allows; the header it
		// authenticates lies before the body), then move the plaintext.
		pt, err := gcm.Open(l.body[:0], l.nonce, l.body, l.aad)
		if err != nil {
			return nil, newErr(ErrAuthentication, "decrypt", "header or body was modified")
		}
		copy(out, pt)
		return ret, nil
	}
	if _, err := gcm.Open(out[:0], l.nonce, l.body, l.aad); err != nil {
		return nil, newErr(ErrAuthentication, "decrypt", "header or body was modified")
	}
	return ret, nil
}

// checkBlob parses blob and checks the caller's context, the provider and
// the key allow-list: everything that needs no key.
func (e *Envelope) checkBlob(op string, blob []byte, ec Context, l *layout) error {
	if err := parseInto(blob, l); err != nil {
		err.(*Error).Op = op
		return err
	}
	if !contextEqual(l.context, ec) {
		return newErr(ErrContextMismatch, op, "%s", contextDiff(l.context, ec))
	}
	if l.provider != e.p.ID() {
		return newErr(ErrKeyNotAllowed, op, "blob was wrapped by provider %s, this Envelope uses %s", l.provider, e.p.ID())
	}
	if !allowed(e.p, l.keyID) {
		return newErr(ErrKeyNotAllowed, op, "key %q is not on the allow-list", l.keyID)
	}
	return nil
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

// open checks blob and returns its data key material, from the cache or the
// provider; release it with e.done.
func (e *Envelope) open(ctx context.Context, op string, blob []byte, ec Context, l *layout, s *scratch) (*keyMaterial, *cacheEntry, error) {
	if err := e.checkBlob(op, blob, ec, l); err != nil {
		return nil, nil, err
	}
	load := func(ctx context.Context) (*keyMaterial, error) {
		keyID := string(l.keyID)
		dk, err := e.p.DecryptDataKey(ctx, keyID, l.edk, ec)
		if err != nil {
			return nil, err
		}
		defer dk.Destroy()
		if len(dk.Plaintext) != DataKeySize {
			return nil, newErr(ErrProvider, op, "provider returned a data key of %d bytes", len(dk.Plaintext))
		}
		return newKeyMaterial(dk.Plaintext, keyID, bytes.Clone(l.edk))
	}
	if e.cache == nil {
		m, err := load(ctx)
		return m, nil, err
	}
	key := decryptKey(s.buf[:0], 'D', l.provider, l.keyID, l.edk, l.context)
	if ent, _ := e.cache.lookup(key, 0, false); ent != nil {
		return ent.m, ent, nil
	}
	ent, _, err := e.cache.get(ctx, string(key), 0, false, load)
	if err != nil {
		return nil, nil, err
	}
	return ent.m, ent, nil
}

// contextDiff names the keys that differ, never the values.
func contextDiff(canon []byte, want Context) string {
	got, err := parseContext(canon)
	if err != nil {
		return "blob context unreadable"
	}
	var missing, extra, changed []string
	for k, v := range want {
		gv, ok := got[k]
		switch {
		case !ok:
			missing = append(missing, safeKey(k))
		case gv != v:
			changed = append(changed, safeKey(k))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, safeKey(k))
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	sort.Strings(changed)
	var parts []string
	if len(changed) > 0 {
		parts = append(parts, "values differ for "+strings.Join(changed, ", "))
	}
	if len(missing) > 0 {
		parts = append(parts, "blob lacks "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		parts = append(parts, "blob has unexpected "+strings.Join(extra, ", "))
	}
	if len(parts) == 0 {
		return "context encodings differ"
	}
	return strings.Join(parts, "; ")
}

// ReWrap returns blob with its data key wrapped under toKeyID instead (a KMS
// key ARN on this provider's allow-list, or a local key id in its key ring).
// With KMS this is one ReEncrypt call: the plaintext data key never leaves
// KMS. The message id, context, commitment, nonce and body are unchanged, so
// the authenticated header and body stay valid. The caller's context must
// match the blob's, exactly as for Decrypt.
//
// A format-2 blob's key section is authenticated by a tag under a key
// derived from the data key, so re-wrapping one unwraps the data key as well
// (one provider Decrypt, or a cache hit), checks the blob's commitment and
// key tag, and writes a new tag; the body is unchanged. ec is the blob's
// stable context; its message context is not needed.
func (e *Envelope) ReWrap(ctx context.Context, blob []byte, ec Context, toKeyID string) ([]byte, error) {
	if len(blob) > 0 && blob[0] == Version2 {
		return e.NewReWrapper(toKeyID).ReWrap(ctx, blob, ec)
	}
	var l layout
	if err := e.checkBlob("rewrap", blob, ec, &l); err != nil {
		return nil, err
	}
	from := string(l.keyID)
	if !e.p.Allowed(toKeyID) {
		return nil, newErr(ErrKeyNotAllowed, "rewrap", "target key %q is not on the allow-list (a blob may only be moved to a key this Envelope can decrypt with)", toKeyID)
	}
	dk, err := e.p.ReWrap(ctx, from, l.edk, ec, toKeyID)
	if err != nil {
		return nil, err
	}
	dk.Destroy()
	if dk.KeyID != toKeyID || len(dk.Encrypted) == 0 || len(dk.Encrypted) > MaxEDKBytes {
		return nil, newErr(ErrProvider, "rewrap", "provider returned a wrapped key of %d bytes under %q, want %q", len(dk.Encrypted), dk.KeyID, toKeyID)
	}
	plainLen := len(l.body) - TagSize
	out := make([]byte, 0, blobSize(len(l.context), len(dk.KeyID), len(dk.Encrypted), plainLen))
	out = append(out, l.aad...)
	out = binary16(out, len(dk.KeyID))
	out = append(out, dk.KeyID...)
	out = binary16(out, len(dk.Encrypted))
	out = append(out, dk.Encrypted...)
	return append(out, l.body...), nil
}

func binary16(dst []byte, n int) []byte { return append(dst, byte(n>>8), byte(n)) }

// asError returns err as an *Error when it is one.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
