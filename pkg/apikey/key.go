package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"strings"
	"sync"

	"github.com/rotation-suite/rotation/pkg/redact"
)

// The key format is
//
//	<prefix>_<keyid>_<body><checksum>
//
// prefix is the type prefix (2–16 of [a-z0-9], starting with a letter), keyid
// the public key id (12 base62 characters, ≈71 bits, random), body 32 base62
// characters from crypto/rand (≈190 bits), and checksum the CRC32 (IEEE) of
// everything before it, as 6 base62 characters. Base62 keeps the key one
// "word" for double-click selection and URL-safe; the fixed lengths and the
// checksum let a secret scanner or a typo check recognise a key without any
// lookup.
const (
	KeyIDLen    = 12
	BodyLen     = 32
	ChecksumLen = 6
	// MaxKeyLen bounds any presented key before it is parsed.
	MaxKeyLen = 16 + 1 + KeyIDLen + 1 + BodyLen + ChecksumLen
	// MinPrefixLen and MaxPrefixLen bound the type prefix.
	MinPrefixLen = 2
	MaxPrefixLen = 16
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Errors from parsing and verification. They say what was wrong with the
// presented input and never contain it.
var (
	ErrOversized    = errors.New("apikey: key too long")
	ErrMalformed    = errors.New("apikey: malformed key")
	ErrChecksum     = errors.New("apikey: key checksum mismatch")
	ErrWrongPrefix  = errors.New("apikey: key has a prefix this service does not accept")
	ErrUnknownKey   = errors.New("apikey: unknown key id")
	ErrMismatch     = errors.New("apikey: key does not match its record")
	ErrRevoked      = errors.New("apikey: key revoked")
	ErrExpired      = errors.New("apikey: key expired")
	ErrNotYetValid  = errors.New("apikey: key not yet valid")
	ErrNoKeyring    = errors.New("apikey: no verifier records loaded")
	ErrBadSignature = errors.New("apikey: webhook signature does not verify")
	ErrStale        = errors.New("apikey: webhook timestamp outside the tolerance")
)

// ValidPrefix reports whether p can be a key's type prefix.
func ValidPrefix(p string) bool {
	if len(p) < MinPrefixLen || len(p) > MaxPrefixLen || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := 1; i < len(p); i++ {
		c := p[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Key is a plaintext API key or webhook signing key. It is redact.String:
// it redacts itself in every fmt verb (%x, %q and %#v included), in slog, in
// JSON and MarshalText, showing only the prefix and key id of a well-formed
// key ("<prefix>_<keyid>_[REDACTED]", Redacted) or "[REDACTED]" for any
// other; Reveal returns the key itself, for the Authorization header or an
// HMAC. The caller secret is encoded with the plaintext on purpose
// (CallerSecret.Encode). The zero Key holds no key (IsZero).
type Key = redact.String

// NewKey wraps s (not checked; use ParseKey to check it). The printed form
// shows the prefix and key id when s is a well-formed key.
func NewKey(s string) Key {
	if p, err := ParseKey(s); err == nil {
		return redact.NewLabelled(s, p.Prefix+"_"+p.KeyID+"_")
	}
	return redact.NewString(s)
}

// ParsedKey is the public part of a well-formed key.
type ParsedKey struct {
	Prefix string
	KeyID  string
}

// ParseKey checks s's format and checksum without any lookup and returns its
// prefix and key id (substrings of s). Errors: ErrOversized, ErrMalformed,
// ErrChecksum.
func ParseKey(s string) (ParsedKey, error) {
	if len(s) > MaxKeyLen {
		return ParsedKey{}, ErrOversized
	}
	sc := getScratch(s)
	defer scratchPool.Put(sc)
	return parseKey(s, sc)
}

// scratch holds per-call buffers, pooled so verification does not allocate.
type scratch struct {
	buf [MaxKeyLen]byte
	n   int
	sum [sha256.Size]byte
	sha hash.Hash
}

var scratchPool = sync.Pool{New: func() any { return &scratch{sha: sha256.New()} }}

// getScratch returns a scratch holding a copy of s (len(s) <= MaxKeyLen).
func getScratch(s string) *scratch {
	sc := scratchPool.Get().(*scratch)
	sc.n = copy(sc.buf[:], s)
	return sc
}

func parseKey(s string, sc *scratch) (ParsedKey, error) {
	i := strings.IndexByte(s, '_')
	if i < MinPrefixLen || i > MaxPrefixLen || !ValidPrefix(s[:i]) {
		return ParsedKey{}, ErrMalformed
	}
	rest := s[i+1:]
	if len(rest) != KeyIDLen+1+BodyLen+ChecksumLen || rest[KeyIDLen] != '_' {
		return ParsedKey{}, ErrMalformed
	}
	if !isBase62(rest[:KeyIDLen]) || !isBase62(rest[KeyIDLen+1:]) {
		return ParsedKey{}, ErrMalformed
	}
	n := len(s) - ChecksumLen
	var want [ChecksumLen]byte
	encodeChecksum(&want, crc32.ChecksumIEEE(sc.buf[:n]))
	if string(want[:]) != s[n:] {
		return ParsedKey{}, ErrChecksum
	}
	return ParsedKey{Prefix: s[:i], KeyID: rest[:KeyIDLen]}, nil
}

// GenerateKey returns a new key with the given prefix and a random key id and
// body from crypto/rand.
func GenerateKey(prefix string) (Key, error) {
	if !ValidPrefix(prefix) {
		return Key{}, fmt.Errorf("apikey: invalid prefix %q: want 2–16 of [a-z0-9], starting with a letter", prefix)
	}
	b := make([]byte, 0, len(prefix)+1+KeyIDLen+1+BodyLen+ChecksumLen)
	b = append(b, prefix...)
	b = append(b, '_')
	var err error
	if b, err = appendRandom62(b, KeyIDLen); err != nil {
		return Key{}, err
	}
	b = append(b, '_')
	if b, err = appendRandom62(b, BodyLen); err != nil {
		return Key{}, err
	}
	var sum [ChecksumLen]byte
	encodeChecksum(&sum, crc32.ChecksumIEEE(b))
	b = append(b, sum[:]...)
	return NewKey(string(b)), nil
}

// appendRandom62 appends n uniformly random base62 characters: random bytes
// below 248 (= 4·62) map without bias, the rest are drawn again.
func appendRandom62(b []byte, n int) ([]byte, error) {
	var buf [64]byte
	for n > 0 {
		if _, err := io.ReadFull(rand.Reader, buf[:]); err != nil {
			return nil, fmt.Errorf("apikey: read random: %w", err)
		}
		for _, c := range buf {
			if c >= 248 {
				continue
			}
			b = append(b, base62[c%62])
			if n--; n == 0 {
				break
			}
		}
	}
	return b, nil
}

func encodeChecksum(dst *[ChecksumLen]byte, v uint32) {
	x := uint64(v)
	for i := ChecksumLen - 1; i >= 0; i-- {
		dst[i] = base62[x%62]
		x /= 62
	}
}

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}
