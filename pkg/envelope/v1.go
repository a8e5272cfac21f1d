package envelope

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
)

// Format version 1 (docs/envelope-format.md §1–§9): a random message id and
// nonce per message, a content key and commitment derived per message from
// the data key's PRK (derive.go), one context bound to the data key and the
// body alike, and a key section outside the authenticated header, so a
// re-wrap needs no data key.

// layout is a parsed blob: slices into the original bytes.
type layout struct {
	provider  ProviderID
	messageID []byte
	context   []byte // canonical encoding
	sealed
}

// parse splits a version-1 blob into its fields. Every length is checked
// against its hard maximum and against what is left before it is used; a
// blob must end exactly where its body ends.
func parse(blob []byte) (*layout, error) {
	var l layout
	if err := parseInto(blob, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

func parseInto(blob []byte, l *layout) error {
	f := frame{b: blob}
	var err error
	if l.provider, err = f.start(Version1, MaxBlobSize); err != nil {
		return err
	}
	if err := f.need(MessageIDSize, "message id"); err != nil {
		return err
	}
	l.messageID = f.take(MessageIDSize)
	if l.context, err = f.context("context", nil); err != nil {
		return err
	}
	bodyLen, err := f.sealed(&l.sealed)
	if err != nil {
		return err
	}
	l.body, err = f.body(bodyLen)
	return err
}

// blobSize returns the size of a blob with the given field lengths.
func blobSize(ctxLen, keyIDLen, edkLen, plainLen int) int {
	return fixedAADSize + ctxLen + 2 + keyIDLen + 2 + edkLen + plainLen + TagSize
}

// appendHeader writes the header (authenticated part and key section) to dst
// and returns it with the offset where the authenticated part ends.
func appendHeader(dst []byte, provider ProviderID, messageID, canonCtx, commitment, nonce []byte, plainLen int, keyID string, edk []byte) ([]byte, int) {
	dst = append(dst, Version1, byte(provider))
	dst = append(dst, messageID...)
	dst = appendPrefixed(dst, canonCtx)
	return appendSealing(dst, commitment, nonce, plainLen, keyID, edk)
}

func (e *Envelope) appendEncrypt1(ctx context.Context, dst, plaintext []byte, ec Context) ([]byte, error) {
	if len(plaintext) > MaxPlaintext {
		return nil, newErr(ErrMalformed, "encrypt", "plaintext of %d bytes exceeds the %d-byte maximum", len(plaintext), MaxPlaintext)
	}
	s := getScratch()
	defer putScratch(s)
	// s.buf = 'E' 0x00 ‖ canonical context: the cache key's input (encryptKey).
	full, err := ec.appendCanonical("encrypt", append(s.buf[:0], 'E', 0))
	if err != nil {
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
	bodyOff := size - len(plaintext) - TagSize
	ret, out := growFor(dst, size)
	plaintext = placeBody(out, bodyOff, plaintext)
	_, aadEnd := appendHeader(out[:0], provider, msgID, canon, s.okm[32:], nonce, len(plaintext), m.keyID, m.edk)
	gcm.Seal(out[bodyOff:bodyOff], nonce, plaintext, out[:aadEnd])
	return ret, nil
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
	dk, err := generateDataKey(ctx, e.p, ec)
	if err != nil {
		return nil, err
	}
	defer dk.Destroy()
	return newKeyMaterial(dk.Plaintext, dk.KeyID, dk.Encrypted)
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
	return openBody(dst, gcm, &l.sealed, blob)
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

// open checks blob and returns its data key material, from the cache or the
// provider; release it with e.done.
func (e *Envelope) open(ctx context.Context, op string, blob []byte, ec Context, l *layout, s *scratch) (*keyMaterial, *cacheEntry, error) {
	if err := e.checkBlob(op, blob, ec, l); err != nil {
		return nil, nil, err
	}
	load := func(ctx context.Context) (*keyMaterial, error) {
		keyID := string(l.keyID)
		dk, err := unwrapDataKey(ctx, e.p, op, keyID, l.edk, ec)
		if err != nil {
			return nil, err
		}
		defer dk.Destroy()
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
