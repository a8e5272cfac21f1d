package envelope

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha512"
	"hash"
	"sync"
)

// Key schedule of format 1 (docs/envelope-format.md §3; format 2 is in v2.go):
//
//	PRK        = HKDF-Extract(SHA-512, salt = extractSalt, IKM = data key)     once per data key
//	OKM        = HKDF-Expand(SHA-512, PRK, info = expandLabel ‖ version ‖ provider ‖ message id, 64)
//	content key = OKM[0:32], commitment = OKM[32:64]
//
// The extract step runs once per data key (the PRK is what the cache keeps);
// each message then costs one HMAC-SHA-512. Because 64 bytes is one SHA-512
// output, HKDF-Expand is exactly T(1) = HMAC(PRK, info ‖ 0x01); expandInto
// computes that with a pooled HMAC whose pad state is precomputed, and
// TestDeriveMatchesStdlibHKDF proves it equal to crypto/hkdf.Expand.
const (
	extractSalt = "rotation-suite/envelope v1 extract"
	expandLabel = "rotation-suite/envelope v1 key+commitment"
	infoSize    = len(expandLabel) + 2 + MessageIDSize
	okmSize     = 64
)

// keyMaterial is a data key in its derived form: the PRK. It redacts itself.
type keyMaterial struct {
	prk   []byte // HKDF PRK from the data key; cleared by destroy
	keyID string // the key that wrapped it (ARN or local id)
	edk   []byte // the wrapped data key
	macs  sync.Pool
	v2    *keysV2 // format-2 keys (then prk is nil); destroy clears the key-tag key and drops the AES state
}

func newKeyMaterial(dataKey []byte, keyID string, edk []byte) (*keyMaterial, error) {
	prk, err := hkdf.Extract(sha512.New, dataKey, []byte(extractSalt))
	if err != nil {
		return nil, &Error{Kind: ErrProvider, Op: "crypto", Detail: "key derivation failed"}
	}
	m := &keyMaterial{prk: prk, keyID: keyID, edk: edk}
	m.macs.New = func() any { return &deriver{h: hmac.New(sha512.New, m.prk)} }
	return m, nil
}

// destroy clears the PRK. Pooled HMAC states keep a precomputed pad of it
// until the garbage collector frees them (best effort, as documented).
func (m *keyMaterial) destroy() {
	clear(m.prk)
	m.macs = sync.Pool{}
	if m.v2 != nil {
		clear(m.v2.tagKey[:])
		m.v2.aead = nil // the AES key schedule stays until the collector frees it
	}
}

// newKeyMaterial2 derives the format-2 keys of dataKey for the key section
// (provider, stable context, key id, wrapped key) it belongs to.
func newKeyMaterial2(dataKey []byte, provider ProviderID, stable []byte, keyID string, edk []byte) (*keyMaterial, error) {
	k, err := deriveV2(dataKey, provider, stable, keyID, edk)
	if err != nil {
		return nil, err
	}
	return &keyMaterial{keyID: keyID, edk: edk, v2: k}, nil
}

func (m *keyMaterial) String() string   { return "envelope.keyMaterial{[REDACTED]}" }
func (m *keyMaterial) GoString() string { return m.String() }

// appendInfo appends the HKDF info of one message.
func appendInfo(dst []byte, provider ProviderID, messageID []byte) []byte {
	dst = append(dst, expandLabel...)
	dst = append(dst, Version1, byte(provider))
	return append(dst, messageID...)
}

// deriver is one pooled HMAC keyed with the PRK, with room for the info.
type deriver struct {
	h    hash.Hash
	info [infoSize + 1]byte
}

// expandInto writes the 64-byte OKM for one message into okm.
func (m *keyMaterial) expandInto(okm *[okmSize]byte, provider ProviderID, messageID []byte) {
	d := m.macs.Get().(*deriver)
	info := appendInfo(d.info[:0], provider, messageID)
	info = append(info, 1) // HKDF-Expand block counter
	d.h.Reset()
	d.h.Write(info)
	d.h.Sum(okm[:0]) // the next user resets it first
	m.macs.Put(d)
}

// expandStdlib is the same derivation through crypto/hkdf; tests and the
// benchmark of the derivation cost use it.
func (m *keyMaterial) expandStdlib(provider ProviderID, messageID []byte) ([]byte, error) {
	var ib [infoSize]byte
	return hkdf.Expand(sha512.New, m.prk, string(appendInfo(ib[:0], provider, messageID)), okmSize)
}
