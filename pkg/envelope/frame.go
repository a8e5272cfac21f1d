package envelope

import (
	"crypto/cipher"
	"encoding/binary"
	"unicode/utf8"
	"unsafe"
)

// The framing both formats share (docs/envelope-format.md §1 and §10.1): a
// version and a provider byte; canonical contexts behind 2-byte lengths;
// commitment, nonce and 4-byte body length, which end the authenticated
// header; the key section (2-byte length and key id, 2-byte length and
// wrapped data key; format 2 adds a key tag); the body, which ends the blob.
// The formats differ only in what stands between the provider byte and the
// commitment, and in the key tag.

// frame is a cursor over a blob being parsed. Every field is checked against
// its bounds and against what is left before it is sliced. (The methods that
// read several fields keep the position in a local variable, so that it
// stays in a register: parsing is on every decryption's path.)
type frame struct {
	b []byte
	p int
}

// need fails unless n more bytes are left; what names the field.
func (f *frame) need(n int, what string) error {
	if len(f.b)-f.p < n {
		return truncated(what, n, len(f.b)-f.p)
	}
	return nil
}

// take slices the next n bytes, which need has checked.
func (f *frame) take(n int) []byte {
	s := f.b[f.p : f.p+n]
	f.p += n
	return s
}

// truncated is the error of a field that does not fit in what is left.
func truncated(what string, need, left int) error {
	return newErr(ErrMalformed, "parse", "truncated in %s (need %d bytes, %d left)", what, need, left)
}

// start checks what every blob starts with — its size, version and
// provider id — and leaves the cursor after the provider byte. The checks
// are one condition on the path every blob takes; startErr says which
// failed, in the order of docs/envelope-format.md §1.
func (f *frame) start(version byte, maxSize int) (ProviderID, error) {
	b := f.b
	if len(b) < 2 || b[0] != version || len(b) > maxSize || b[1] == 0 || b[1] == 255 {
		return 0, f.startErr(version, maxSize)
	}
	f.p = 2
	return ProviderID(b[1]), nil
}

func (f *frame) startErr(version byte, maxSize int) error {
	b := f.b
	switch {
	case len(b) < 2:
		return newErr(ErrMalformed, "parse", "blob of %d bytes is shorter than its version and provider", len(b))
	case b[0] != version:
		return newErr(ErrUnsupportedVersion, "parse", "version %d (this package reads versions %d and %d)", b[0], Version1, Version2)
	case len(b) > maxSize:
		return newErr(ErrMalformed, "parse", "blob of %d bytes exceeds the %d-byte maximum", len(b), maxSize)
	}
	return newErr(ErrMalformed, "parse", "reserved provider id %d", b[1])
}

// context reads a length-prefixed canonical context. A context equal to
// want (valid by construction) is not validated again; any other is
// validated in full.
func (f *frame) context(what string, want []byte) ([]byte, error) {
	b, p := f.b, f.p
	if len(b)-p < 2 {
		return nil, truncated(what+" length", 2, len(b)-p)
	}
	n := int(binary.BigEndian.Uint16(b[p:]))
	p += 2
	if n < 2 || n > MaxContextBytes {
		return nil, newErr(ErrMalformed, "parse", "%s length %d outside 2..%d", what, n, MaxContextBytes)
	}
	if len(b)-p < n {
		return nil, truncated(what, n, len(b)-p)
	}
	c := b[p : p+n]
	f.p = p + n
	if want != nil && string(c) == string(want) {
		return c, nil
	}
	return c, checkContext(c)
}

// sealed holds the fields both formats have after their contexts: slices
// into the blob.
type sealed struct {
	commitment []byte
	nonce      []byte
	aad        []byte // the authenticated header: blob[:end of body length]
	keyID      []byte
	edk        []byte
	body       []byte // ciphertext || tag
}

// sealed reads the commitment, the nonce and the body length, which end the
// authenticated header, and the key section up to the wrapped data key. It
// returns the body length; the caller reads the body (format 2 after its key
// tag).
func (f *frame) sealed(s *sealed) (bodyLen int, err error) {
	b, p := f.b, f.p
	if len(b)-p < CommitmentSize+NonceSize+4 {
		return 0, truncated("commitment, nonce and body length", CommitmentSize+NonceSize+4, len(b)-p)
	}
	s.commitment = b[p : p+CommitmentSize]
	p += CommitmentSize
	s.nonce = b[p : p+NonceSize]
	p += NonceSize
	bl := binary.BigEndian.Uint32(b[p:])
	p += 4
	if bl < TagSize || bl > MaxPlaintext+TagSize {
		return 0, newErr(ErrMalformed, "parse", "body length %d outside %d..%d", bl, TagSize, MaxPlaintext+TagSize)
	}
	s.aad = b[:p]
	if len(b)-p < 2 {
		return 0, truncated("key id length", 2, len(b)-p)
	}
	kl := int(binary.BigEndian.Uint16(b[p:]))
	p += 2
	if kl < 1 || kl > MaxKeyIDBytes {
		return 0, newErr(ErrMalformed, "parse", "key id length %d outside 1..%d", kl, MaxKeyIDBytes)
	}
	if len(b)-p < kl+2 {
		return 0, truncated("key id", kl+2, len(b)-p)
	}
	s.keyID = b[p : p+kl]
	p += kl
	if !utf8.Valid(s.keyID) {
		return 0, newErr(ErrMalformed, "parse", "key id is not valid UTF-8")
	}
	el := int(binary.BigEndian.Uint16(b[p:]))
	p += 2
	if el < 1 || el > MaxEDKBytes {
		return 0, newErr(ErrMalformed, "parse", "encrypted data key length %d outside 1..%d", el, MaxEDKBytes)
	}
	if len(b)-p < el {
		return 0, truncated("encrypted data key", el, len(b)-p)
	}
	s.edk = b[p : p+el]
	f.p = p + el
	return int(bl), nil
}

// body reads the body, which must end the blob. (Small enough to be
// inlined; bodyErr says what is wrong.)
func (f *frame) body(n int) ([]byte, error) {
	if len(f.b) != f.p+n {
		return nil, f.bodyErr(n)
	}
	return f.b[f.p:], nil
}

func (f *frame) bodyErr(n int) error {
	left := len(f.b) - f.p
	if left < n {
		return truncated("body", n, left)
	}
	return newErr(ErrMalformed, "parse", "%d trailing bytes after the body", left-n)
}

// appendPrefixed appends b behind its 2-byte length (a context, a key id, a
// wrapped data key).
func appendPrefixed[T string | []byte](dst []byte, b T) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}

// appendKeyIDAndEDK appends the key section without format 2's key tag.
func appendKeyIDAndEDK(dst []byte, keyID string, edk []byte) []byte {
	return appendPrefixed(appendPrefixed(dst, keyID), edk)
}

// appendSealing appends what follows the contexts: commitment, nonce, body
// length and the key section (without a key tag). It returns the offset in
// dst where the authenticated header ends.
func appendSealing(dst, commitment, nonce []byte, plainLen int, keyID string, edk []byte) ([]byte, int) {
	dst = append(dst, commitment...)
	dst = append(dst, nonce...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(plainLen+TagSize))
	aadEnd := len(dst)
	return appendKeyIDAndEDK(dst, keyID, edk), aadEnd
}

// withKeySection returns a new blob: the authenticated header aad, a new key
// section (tag is nil in format 1) and the body, unchanged. Re-wrapping
// writes it.
func withKeySection(aad []byte, keyID string, edk, tag, body []byte) []byte {
	out := make([]byte, 0, len(aad)+2+len(keyID)+2+len(edk)+len(tag)+len(body))
	out = append(out, aad...)
	out = appendKeyIDAndEDK(out, keyID, edk)
	out = append(out, tag...)
	return append(out, body...)
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

// placeBody returns the plaintext to seal into the body at out[bodyOff:],
// out being the new bytes of the blob: when plaintext overlaps them it is
// first moved to where its ciphertext goes (copy is a memmove), so it can be
// sealed in place, an exact overlap GCM allows. The caller then writes the
// header before the body, and seals.
func placeBody(out []byte, bodyOff int, plaintext []byte) []byte {
	if overlaps(out, plaintext) {
		return out[bodyOff : bodyOff+copy(out[bodyOff:], plaintext)]
	}
	return plaintext
}

// openBody opens the body of s, a part of blob, and appends the plaintext to
// dst (see AppendDecrypt for the aliasing rules). When dst's spare capacity
// overlaps blob, the body is opened in place (an exact overlap GCM allows;
// the header it authenticates lies before the body) and the plaintext then
// moved.
func openBody(dst []byte, aead cipher.AEAD, s *sealed, blob []byte) (Secret, error) {
	ret, out := growFor(dst, len(s.body)-TagSize)
	if overlaps(out, blob) {
		pt, err := aead.Open(s.body[:0], s.nonce, s.body, s.aad)
		if err != nil {
			return nil, errModified()
		}
		copy(out, pt)
		return ret, nil
	}
	if _, err := aead.Open(out[:0], s.nonce, s.body, s.aad); err != nil {
		return nil, errModified()
	}
	return ret, nil
}

func errModified() error {
	return newErr(ErrAuthentication, "decrypt", "header or body was modified")
}
