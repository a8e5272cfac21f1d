package envelope

import (
	"bytes"
	"encoding/binary"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Context is an encryption context: non-secret name/value pairs that a blob is
// bound to. Decrypt succeeds only with exactly the same pairs. Keys must be
// non-empty; keys and values must be valid UTF-8. Values are not secret (KMS
// logs them in CloudTrail): never put secrets in a context.
type Context map[string]string

// emptyContext is the canonical encoding of the empty context.
var emptyContext = []byte{0, 0}

// canonical returns the context's canonical encoding (docs/envelope-format.md
// §3, the same in both formats): a 2-byte pair count, then each pair sorted
// by key bytes as 2-byte length + key, 2-byte length + value. It checks every
// limit.
func (c Context) canonical() ([]byte, error) {
	return c.appendCanonical("context", nil)
}

// appendCanonical appends the canonical encoding to dst; its errors name
// the operation op.
func (c Context) appendCanonical(op string, dst []byte) ([]byte, error) {
	type pair struct{ k, v string }
	size := 2
	var stack [8]pair
	pairs := stack[:0]
	for k, v := range c {
		if k == "" {
			return nil, newErr(ErrMalformed, op, "empty key")
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, newErr(ErrMalformed, op, "key or value of %q is not valid UTF-8", safeKey(k))
		}
		size += 4 + len(k) + len(v)
		if size > MaxContextBytes {
			return nil, newErr(ErrMalformed, op, "canonical context exceeds %d bytes", MaxContextBytes)
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
		dst = appendPrefixed(dst, p.k)
		dst = appendPrefixed(dst, p.v)
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

// nextPair splits the first pair off p, the pairs of a canonical encoding
// that checkContext accepted (or that this package wrote).
func nextPair(p []byte) (k, v, rest []byte) {
	kl := int(binary.BigEndian.Uint16(p))
	k = p[2 : 2+kl]
	p = p[2+kl:]
	vl := int(binary.BigEndian.Uint16(p))
	return k, p[2 : 2+vl], p[2+vl:]
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
		var k, v []byte
		k, v, p = nextPair(p)
		c[string(k)] = string(v)
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
		var k, v []byte
		k, v, p = nextPair(p)
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

// disjoint reports whether two valid canonical contexts share no key (both
// are sorted, so one merge pass). It runs on every format-2 encryption, so
// it reads only the keys, and compares them with compareBytes, which is
// inlined (bytes.Compare is a call into assembly that costs more than these
// short keys).
func disjoint(a, b []byte) bool {
	na, nb := int(binary.BigEndian.Uint16(a)), int(binary.BigEndian.Uint16(b))
	pa, pb := a[2:], b[2:]
	next := func(p []byte) (k, rest []byte) {
		kl := int(binary.BigEndian.Uint16(p))
		k = p[2 : 2+kl]
		p = p[2+kl:]
		vl := int(binary.BigEndian.Uint16(p))
		return k, p[2+vl:]
	}
	var ka, kb []byte
	if na > 0 {
		ka, pa = next(pa)
	}
	if nb > 0 {
		kb, pb = next(pb)
	}
	for na > 0 && nb > 0 {
		switch c := compareBytes(ka, kb); {
		case c == 0:
			return false
		case c < 0:
			if na--; na > 0 {
				ka, pa = next(pa)
			}
		default:
			if nb--; nb > 0 {
				kb, pb = next(pb)
			}
		}
	}
	return true
}

func compareBytes(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
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
