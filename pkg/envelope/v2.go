package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
)

// Format version 2 (docs/envelope-format.md §10 is the normative
// description). What changes from version 1:
//
//   - the content key, a key-section key and the commitment are derived once
//     per data key, so a cached data key keeps a ready AES-GCM state;
//   - the nonce is a per-data-key counter (the cache entry's message count),
//     never random, so it cannot repeat under one content key;
//   - the context has two parts: the stable context (sent to the key provider
//     and thus bound to the wrapped data key) and the message context
//     (authenticated only, as GCM additional data), so one data key serves
//     many rows of a column while a value moved to another row still fails;
//   - the key section (key id, wrapped data key) is authenticated by a tag
//     under the key-section key, so no byte of a blob can change and still
//     open, while a re-wrap replaces the key section and its tag and leaves
//     the body as it is.
const (
	Version2 = 2

	KeyTagSize = 32 // HMAC-SHA-256 over the key section

	// fixed part of the version-2 authenticated header: version, provider,
	// two context lengths, commitment, nonce, body length.
	fixedAAD2Size = 1 + 1 + 2 + 2 + CommitmentSize + NonceSize + 4

	// MaxBlobSize2 is the largest well-formed version-2 blob.
	MaxBlobSize2 = fixedAAD2Size + 2*MaxContextBytes + 2 + MaxKeyIDBytes + 2 + MaxEDKBytes + KeyTagSize + MaxPlaintext + TagSize
)

const (
	extractSalt2 = "rotation-suite/envelope v2 extract"
	expandLabel2 = "rotation-suite/envelope v2 keys"
	keyTagLabel2 = "rotation-suite/envelope v2 key section"
)

// keysV2 is a data key in its version-2 form: derived once, used for every
// message under it.
type keysV2 struct {
	provider ProviderID
	stable   []byte      // canonical stable context of the key section
	aead     cipher.AEAD // AES-256-GCM under the content key
	commit   [CommitmentSize]byte
	tagKey   [32]byte         // key-section key: re-wrapping computes a new tag with it
	keyTag   [KeyTagSize]byte // tag of this entry's key section
}

// tagFor computes the key tag of another key section of the same data key.
func (k *keysV2) tagFor(provider ProviderID, stable []byte, keyID string, edk []byte) [KeyTagSize]byte {
	var t [KeyTagSize]byte
	mac := hmac.New(sha256.New, k.tagKey[:])
	mac.Write(appendKeySection(append([]byte(keyTagLabel2), Version2, byte(provider)), stable, keyID, edk))
	mac.Sum(t[:0])
	return t
}

// deriveV2 derives the version-2 keys of dataKey and the tag of the key
// section (provider, stable context, key id, wrapped key).
func deriveV2(dataKey []byte, provider ProviderID, stable []byte, keyID string, edk []byte) (*keysV2, error) {
	info := append([]byte(expandLabel2), Version2, byte(provider))
	okm, err := hkdf.Key(sha512.New, dataKey, []byte(extractSalt2), string(info), 96)
	if err != nil {
		return nil, &Error{Kind: ErrProvider, Op: "crypto", Detail: "key derivation failed"}
	}
	defer clear(okm)
	block, err := aes.NewCipher(okm[:32])
	if err != nil {
		return nil, &Error{Kind: ErrProvider, Op: "crypto", Detail: "AES key setup failed"}
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, &Error{Kind: ErrProvider, Op: "crypto", Detail: "GCM setup failed"}
	}
	k := &keysV2{provider: provider, stable: stable, aead: aead}
	copy(k.commit[:], okm[64:96])
	copy(k.tagKey[:], okm[32:64])
	k.keyTag = k.tagFor(provider, stable, keyID, edk)
	return k, nil
}

// appendKeySection appends the key-tag input after the label, version and
// provider: the stable context and the key section, each length-prefixed.
func appendKeySection(dst, stable []byte, keyID string, edk []byte) []byte {
	return appendKeyIDAndEDK(appendPrefixed(dst, stable), keyID, edk)
}

// nonceV2 is the nonce of the message with sequence number seq under one
// data key: four zero bytes and seq, big-endian.
func nonceV2(n *[NonceSize]byte, seq int64) {
	binary.BigEndian.PutUint32(n[:4], 0)
	binary.BigEndian.PutUint64(n[4:], uint64(seq))
}

// layout2 is a parsed version-2 blob: slices into the original bytes.
type layout2 struct {
	provider ProviderID
	stable   []byte // canonical stable context
	message  []byte // canonical message context
	keyTag   []byte
	sealed
}

// blobSize2 returns the size of a version-2 blob with the given lengths.
func blobSize2(stableLen, msgLen, keyIDLen, edkLen, plainLen int) int {
	return fixedAAD2Size + stableLen + msgLen + 2 + keyIDLen + 2 + edkLen + KeyTagSize + plainLen + TagSize
}

// parse2Into splits a version-2 blob into its fields, checking every length
// against its maximum and what is left before using it, both contexts for
// canonical form and disjoint keys, and that nothing follows the body.
func parse2Into(blob []byte, l *layout2) error { return parse2(blob, l, nil, nil) }

// parse2 is parse2Into for a caller that expects the canonical contexts
// wantStable and wantMsg (valid and disjoint by construction): a context
// equal to the expected one needs no second validation. Any other context is
// validated in full, so the result is the same as parse2Into's.
func parse2(blob []byte, l *layout2, wantStable, wantMsg []byte) error {
	f := frame{b: blob}
	var err error
	if l.provider, err = f.start(Version2, MaxBlobSize2); err != nil {
		return err
	}
	if l.stable, err = f.context("stable context", wantStable); err != nil {
		return err
	}
	if l.message, err = f.context("message context", wantMsg); err != nil {
		return err
	}
	expected := wantStable != nil && string(l.stable) == string(wantStable) && string(l.message) == string(wantMsg)
	if !expected && !disjoint(l.stable, l.message) {
		return newErr(ErrMalformed, "parse", "a context key is in both the stable and the message context")
	}
	bodyLen, err := f.sealed(&l.sealed)
	if err != nil {
		return err
	}
	if err := f.need(KeyTagSize, "key tag"); err != nil {
		return err
	}
	l.keyTag = f.take(KeyTagSize)
	l.body, err = f.body(bodyLen)
	return err
}

// appendHeader2 writes a version-2 header (everything before the body) and
// returns it with the offset where the GCM additional data ends.
func appendHeader2(dst []byte, provider ProviderID, stable, message []byte, k *keysV2, nonce []byte, plainLen int, keyID string, edk []byte) ([]byte, int) {
	dst = append(dst, Version2, byte(provider))
	dst = appendPrefixed(dst, stable)
	dst = appendPrefixed(dst, message)
	dst, aadEnd := appendSealing(dst, k.commit[:], nonce, plainLen, keyID, edk)
	return append(dst, k.keyTag[:]...), aadEnd
}

// seal2 appends one version-2 blob to dst. stable, message and nonce must
// not overlap dst's spare capacity; plaintext may.
func seal2(dst []byte, m *keyMaterial, provider ProviderID, stable, message []byte, seq int64, plaintext []byte) []byte {
	var nonce [NonceSize]byte
	nonceV2(&nonce, seq)
	k := m.v2
	nonceOff := fixedAAD2Size - 4 - NonceSize + len(stable) + len(message)
	size := blobSize2(len(stable), len(message), len(m.keyID), len(m.edk), len(plaintext))
	bodyOff := size - len(plaintext) - TagSize
	ret, out := growFor(dst, size)
	plaintext = placeBody(out, bodyOff, plaintext)
	_, aadEnd := appendHeader2(out[:0], provider, stable, message, k, nonce[:], len(plaintext), m.keyID, m.edk)
	// The nonce is passed from its place in the header: a local array would
	// escape through the interface call and cost an allocation.
	k.aead.Seal(out[bodyOff:bodyOff], out[nonceOff:nonceOff+NonceSize], plaintext, out[:aadEnd])
	return ret
}

// open2 checks the commitment and the key tag of l against m's keys and
// opens the body into dst (see AppendDecrypt for the aliasing rules).
func open2(dst []byte, m *keyMaterial, l *layout2, blob []byte) (Secret, error) {
	k := m.v2
	if !eq32(&k.commit, l.commitment) {
		return nil, newErr(ErrAuthentication, "decrypt", "key commitment does not match the data key")
	}
	if !eq32(&k.keyTag, l.keyTag) {
		return nil, newErr(ErrAuthentication, "decrypt", "key section was modified")
	}
	return openBody(dst, k.aead, &l.sealed, blob)
}

func constEq(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// eq32 compares 32 bytes in constant time, a word at a time (b is always 32
// bytes: the parser cut it so).
func eq32(a *[32]byte, b []byte) bool {
	_ = b[31]
	var d uint64
	for i := 0; i < 32; i += 8 {
		d |= binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:])
	}
	return d == 0 // one branch on the accumulated difference: no early exit
}
