package envelope

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Format constants of version 1 (docs/envelope-format.md is the normative
// description; these are the limits every length is checked against before
// anything is allocated).
const (
	Version1 = 1

	MessageIDSize  = 32
	CommitmentSize = 32
	NonceSize      = 12
	TagSize        = 16
	DataKeySize    = 32

	MaxContextBytes = 8192     // canonical context, count included (KMS allows 8 KiB of context)
	MaxKeyIDBytes   = 2048     // KMS key ARNs are at most 2048 characters
	MaxEDKBytes     = 6144     // KMS ciphertext blobs are at most 6144 bytes
	MaxPlaintext    = 64 << 20 // 64 MiB per message

	// fixed part of the authenticated header: version, provider, message id,
	// context length, commitment, nonce, body length.
	fixedAADSize = 1 + 1 + MessageIDSize + 2 + CommitmentSize + NonceSize + 4

	// MaxBlobSize is the largest well-formed version-1 blob.
	MaxBlobSize = fixedAADSize + MaxContextBytes + 2 + MaxKeyIDBytes + 2 + MaxEDKBytes + MaxPlaintext + TagSize
)

// ProviderID names the key provider that wrapped a blob's data key. It is
// part of the authenticated header.
type ProviderID uint8

// Provider ids. Ids 128–254 are free for providers outside this package.
const (
	ProviderKMS   ProviderID = 1
	ProviderLocal ProviderID = 2
)

func (p ProviderID) String() string {
	switch p {
	case ProviderKMS:
		return "aws-kms"
	case ProviderLocal:
		return "local"
	}
	return fmt.Sprintf("provider-%d", uint8(p))
}

// Context is an encryption context: non-secret name/value pairs that a blob is
// bound to. Decrypt succeeds only with exactly the same pairs. Keys must be
// non-empty; keys and values must be valid UTF-8. Values are not secret (KMS
// logs them in CloudTrail): never put secrets in a context.
type Context map[string]string

// canonical returns the context's canonical encoding: a 2-byte pair count,
// then each pair sorted by key bytes as 2-byte length + key, 2-byte length +
// value. It checks every limit.
func (c Context) canonical() ([]byte, error) {
	return c.appendCanonical(nil)
}

func (c Context) appendCanonical(dst []byte) ([]byte, error) {
	type pair struct{ k, v string }
	size := 2
	var stack [8]pair
	pairs := stack[:0]
	for k, v := range c {
		if k == "" {
			return nil, newErr(ErrMalformed, "context", "empty key")
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, newErr(ErrMalformed, "context", "key or value of %q is not valid UTF-8", safeKey(k))
		}
		size += 4 + len(k) + len(v)
		if size > MaxContextBytes {
			return nil, newErr(ErrMalformed, "context", "canonical context exceeds %d bytes", MaxContextBytes)
		}
		pairs = append(pairs, pair{k, v})
	}
	if len(pairs) <= 16 { // insertion sort: contexts are usually a handful of pairs
		for i := 1; i < len(pairs); i++ {
			for j := i; j > 0 && pairs[j].k < pairs[j-1].k; j-- {
				pairs[j], pairs[j-1] = pairs[j-1], pairs[j]
			}
		}
	} else {
		slices.SortFunc(pairs, func(a, b pair) int { return strings.Compare(a.k, b.k) })
	}
	dst = slices.Grow(dst, size)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(pairs)))
	for _, p := range pairs {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(p.k)))
		dst = append(dst, p.k...)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(p.v)))
		dst = append(dst, p.v...)
	}
	return dst, nil
}

// safeKey shortens a context key for an error message.
func safeKey(k string) string {
	if len(k) > 64 {
		k = k[:64] + "…"
	}
	return strings.ToValidUTF8(k, "?")
}

// parseContext checks that b is a canonical context encoding and returns it
// as a map.
func parseContext(b []byte) (Context, error) {
	if err := checkContext(b); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(b))
	c := make(Context, n)
	p := b[2:]
	for range n {
		kl := int(binary.BigEndian.Uint16(p))
		k := string(p[2 : 2+kl])
		p = p[2+kl:]
		vl := int(binary.BigEndian.Uint16(p))
		c[k] = string(p[2 : 2+vl])
		p = p[2+vl:]
	}
	return c, nil
}

// contextEqual reports whether the valid canonical encoding canon holds
// exactly the pairs of ec, without building ec's encoding.
func contextEqual(canon []byte, ec Context) bool {
	n := int(binary.BigEndian.Uint16(canon))
	if n != len(ec) {
		return false
	}
	p := canon[2:]
	for range n {
		kl := int(binary.BigEndian.Uint16(p))
		k := p[2 : 2+kl]
		p = p[2+kl:]
		vl := int(binary.BigEndian.Uint16(p))
		v := p[2 : 2+vl]
		p = p[2+vl:]
		got, ok := ec[string(k)]
		if !ok || got != string(v) {
			return false
		}
	}
	return true
}

// checkContext validates a canonical context encoding without allocating.
func checkContext(b []byte) error {
	if len(b) < 2 {
		return newErr(ErrMalformed, "parse", "context shorter than its count")
	}
	n := int(binary.BigEndian.Uint16(b))
	p := b[2:]
	var prev []byte
	for i := range n {
		if len(p) < 2 {
			return newErr(ErrMalformed, "parse", "context truncated at pair %d", i)
		}
		kl := int(binary.BigEndian.Uint16(p))
		if kl == 0 || len(p) < 2+kl+2 {
			return newErr(ErrMalformed, "parse", "context key %d empty or truncated", i)
		}
		k := p[2 : 2+kl]
		p = p[2+kl:]
		vl := int(binary.BigEndian.Uint16(p))
		if len(p) < 2+vl {
			return newErr(ErrMalformed, "parse", "context value %d truncated", i)
		}
		v := p[2 : 2+vl]
		p = p[2+vl:]
		if i > 0 && bytes.Compare(prev, k) >= 0 {
			return newErr(ErrMalformed, "parse", "context keys not in strictly ascending order")
		}
		if !utf8.Valid(k) || !utf8.Valid(v) {
			return newErr(ErrMalformed, "parse", "context pair %d is not valid UTF-8", i)
		}
		prev = k
	}
	if len(p) != 0 {
		return newErr(ErrMalformed, "parse", "%d bytes after the last context pair", len(p))
	}
	return nil
}

// Header is the parsed, not yet authenticated header of a blob. Nothing in
// it is secret. Its fields are authenticated only once Decrypt succeeds.
type Header struct {
	Version          int
	Provider         ProviderID
	MessageID        [MessageIDSize]byte // format 1 only (format 2 has no message id; zero)
	Context          Context             // format 1: the context; format 2: the stable context (the provider's)
	MessageContext   Context             // format 2: the context authenticated with the body only; empty in format 1
	KeyID            string              // the key that wrapped the data key: a KMS key ARN, or a local key's id
	EncryptedDataKey []byte              // the wrapped data key, as the provider returned it
	BodyLen          int                 // ciphertext plus the 16-byte tag
}

// layout is a parsed blob: slices into the original bytes.
type layout struct {
	provider   ProviderID
	messageID  []byte
	context    []byte // canonical encoding
	commitment []byte
	nonce      []byte
	aad        []byte // the authenticated header: blob[:end of body length]
	keyID      []byte
	edk        []byte
	body       []byte // ciphertext || tag
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
	if len(blob) < 2 {
		return newErr(ErrMalformed, "parse", "blob of %d bytes is shorter than its version and provider", len(blob))
	}
	if blob[0] != Version1 {
		return newErr(ErrUnsupportedVersion, "parse", "version %d (this package reads versions %d and %d)", blob[0], Version1, Version2)
	}
	if len(blob) > MaxBlobSize {
		return newErr(ErrMalformed, "parse", "blob of %d bytes exceeds the %d-byte maximum", len(blob), MaxBlobSize)
	}
	l.provider = ProviderID(blob[1])
	if l.provider == 0 || l.provider == 255 {
		return newErr(ErrMalformed, "parse", "reserved provider id %d", blob[1])
	}
	p := 2
	need := func(n int, what string) error {
		if len(blob)-p < n {
			return newErr(ErrMalformed, "parse", "truncated in %s (need %d bytes, %d left)", what, n, len(blob)-p)
		}
		return nil
	}
	if err := need(MessageIDSize+2, "message id"); err != nil {
		return err
	}
	l.messageID = blob[p : p+MessageIDSize]
	p += MessageIDSize
	cl := int(binary.BigEndian.Uint16(blob[p:]))
	p += 2
	if cl < 2 || cl > MaxContextBytes {
		return newErr(ErrMalformed, "parse", "context length %d outside 2..%d", cl, MaxContextBytes)
	}
	if err := need(cl+CommitmentSize+NonceSize+4, "context"); err != nil {
		return err
	}
	l.context = blob[p : p+cl]
	p += cl
	if err := checkContext(l.context); err != nil {
		return err
	}
	l.commitment = blob[p : p+CommitmentSize]
	p += CommitmentSize
	l.nonce = blob[p : p+NonceSize]
	p += NonceSize
	bl := binary.BigEndian.Uint32(blob[p:])
	p += 4
	if bl < TagSize || bl > MaxPlaintext+TagSize {
		return newErr(ErrMalformed, "parse", "body length %d outside %d..%d", bl, TagSize, MaxPlaintext+TagSize)
	}
	l.aad = blob[:p]
	if err := need(2, "key id length"); err != nil {
		return err
	}
	kl := int(binary.BigEndian.Uint16(blob[p:]))
	p += 2
	if kl < 1 || kl > MaxKeyIDBytes {
		return newErr(ErrMalformed, "parse", "key id length %d outside 1..%d", kl, MaxKeyIDBytes)
	}
	if err := need(kl+2, "key id"); err != nil {
		return err
	}
	l.keyID = blob[p : p+kl]
	p += kl
	if !utf8.Valid(l.keyID) {
		return newErr(ErrMalformed, "parse", "key id is not valid UTF-8")
	}
	el := int(binary.BigEndian.Uint16(blob[p:]))
	p += 2
	if el < 1 || el > MaxEDKBytes {
		return newErr(ErrMalformed, "parse", "encrypted data key length %d outside 1..%d", el, MaxEDKBytes)
	}
	if err := need(el, "encrypted data key"); err != nil {
		return err
	}
	l.edk = blob[p : p+el]
	p += el
	if err := need(int(bl), "body"); err != nil {
		return err
	}
	l.body = blob[p : p+int(bl)]
	p += int(bl)
	if p != len(blob) {
		return newErr(ErrMalformed, "parse", "%d trailing bytes after the body", len(blob)-p)
	}
	return nil
}

// ParseHeader reads a blob's header without decrypting anything: format
// version, key provider, key id (ARN), context. The result is not
// authenticated; use it for routing and inventory (which blobs still name an
// old key), never for access decisions. The whole blob is checked for
// well-formedness, trailing bytes included.
func ParseHeader(blob []byte) (*Header, error) {
	if len(blob) > 0 && blob[0] == Version2 {
		var l layout2
		if err := parse2Into(blob, &l); err != nil {
			return nil, err
		}
		stable, err := parseContext(l.stable)
		if err != nil {
			return nil, err
		}
		msg, err := parseContext(l.message)
		if err != nil {
			return nil, err
		}
		return &Header{
			Version: Version2, Provider: l.provider, Context: stable, MessageContext: msg,
			KeyID: string(l.keyID), EncryptedDataKey: bytes.Clone(l.edk), BodyLen: len(l.body),
		}, nil
	}
	l, err := parse(blob)
	if err != nil {
		return nil, err
	}
	ctx, err := parseContext(l.context)
	if err != nil {
		return nil, err
	}
	h := &Header{
		Version:          Version1,
		Provider:         l.provider,
		Context:          ctx,
		MessageContext:   Context{},
		KeyID:            string(l.keyID),
		EncryptedDataKey: bytes.Clone(l.edk),
		BodyLen:          len(l.body),
	}
	copy(h.MessageID[:], l.messageID)
	return h, nil
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
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(canonCtx)))
	dst = append(dst, canonCtx...)
	dst = append(dst, commitment...)
	dst = append(dst, nonce...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(plainLen+TagSize))
	aadEnd := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(keyID)))
	dst = append(dst, keyID...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(edk)))
	dst = append(dst, edk...)
	return dst, aadEnd
}
