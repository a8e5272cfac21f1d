package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Webhook signatures. A signature header reads
//
//	t=<unix seconds>,v1=<hex HMAC-SHA-256>[,v1=<hex>…]
//
// where each v1 is the HMAC-SHA-256, keyed with a signing key (the whole key
// string), of "<t>.<body>". A sender may put several v1 values (one per key);
// a receiver accepts the request if any v1 verifies under any live key and t
// is within the tolerance of its clock, which bounds replays.

// SignatureHeaderName is the conventional header carrying the signature.
const SignatureHeaderName = "Webhook-Signature"

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock.
const DefaultTolerance = 5 * time.Minute

// MaxSignatureHeaderLen bounds a presented signature header.
const MaxSignatureHeaderLen = 1024

const maxSignatures = 8

// SignatureHeader signs body at time t with secret and returns the header value.
func SignatureHeader(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	writeSigned(m, []byte(ts), body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// SignWebhook signs body with a webhook signing key.
func SignWebhook(k Key, t time.Time, body []byte) string {
	return SignatureHeader([]byte(k.Reveal()), t, body)
}

var dot = []byte{'.'}

func writeSigned(m hash.Hash, ts []byte, body []byte) {
	m.Write(ts)
	m.Write(dot)
	m.Write(body)
}

type parsedSig struct {
	sum  [sha256.Size]byte
	tsb  [20]byte
	ts   []byte
	unix int64
	sigs [maxSignatures][sha256.Size]byte
	n    int
}

var sigPool = sync.Pool{New: func() any { return new(parsedSig) }}

func parseSignatureHeader(h string, p *parsedSig) error {
	p.ts, p.unix, p.n = nil, 0, 0
	if len(h) > MaxSignatureHeaderLen {
		return ErrOversized
	}
	for h != "" {
		var part string
		part, h, _ = strings.Cut(h, ",")
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrMalformed
		}
		switch k {
		case "t":
			u, err := strconv.ParseInt(v, 10, 64)
			if err != nil || p.ts != nil || u <= 0 || len(v) > len(p.tsb) {
				return ErrMalformed
			}
			p.ts, p.unix = p.tsb[:copy(p.tsb[:], v)], u
		case "v1":
			if p.n == maxSignatures || len(v) != 2*sha256.Size {
				return ErrMalformed
			}
			if _, err := hex.Decode(p.sigs[p.n][:], []byte(v)); err != nil {
				return ErrMalformed
			}
			p.n++
		default:
			// Other schemes (v0, future versions) are ignored.
		}
	}
	if p.ts == nil || p.n == 0 {
		return ErrMalformed
	}
	return nil
}

func (p *parsedSig) fresh(now time.Time, tolerance time.Duration) bool {
	d := now.Sub(time.Unix(p.unix, 0))
	return d <= tolerance && d >= -tolerance
}

func (p *parsedSig) matches(m hash.Hash, body []byte) bool {
	m.Reset()
	writeSigned(m, p.ts, body)
	sum := m.Sum(p.sum[:0])
	ok := false
	for i := 0; i < p.n; i++ {
		// Compare with every signature, so timing does not say which matched.
		if hmac.Equal(sum[:], p.sigs[i][:]) {
			ok = true
		}
	}
	return ok
}

// VerifySignatureHeader checks a signature header over body with one secret
// (for example a registration endpoint's shared HMAC key). Errors:
// ErrOversized, ErrMalformed, ErrStale, ErrBadSignature.
func VerifySignatureHeader(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	p := sigPool.Get().(*parsedSig)
	defer sigPool.Put(p)
	if err := parseSignatureHeader(header, p); err != nil {
		return err
	}
	if !p.fresh(now, tolerance) {
		return ErrStale
	}
	if !p.matches(hmac.New(sha256.New, secret), body) {
		return ErrBadSignature
	}
	return nil
}

// VerifySignature checks a webhook signature header over body against every
// live key of a webhook keyring at time now; during the overlap that is the
// current and the previous key. It returns the key id of the key that
// verified. Errors: ErrOversized, ErrMalformed, ErrStale, ErrBadSignature,
// ErrWrongPrefix (not a webhook keyring).
func (k *Keyring) VerifySignature(header string, body []byte, now time.Time, tolerance time.Duration) (string, error) {
	if k.kind != KindWebhook {
		return "", ErrWrongPrefix
	}
	p := sigPool.Get().(*parsedSig)
	defer sigPool.Put(p)
	if err := parseSignatureHeader(header, p); err != nil {
		return "", err
	}
	if !p.fresh(now, tolerance) {
		return "", ErrStale
	}
	found := ""
	for _, e := range k.live {
		if e.secret == nil || e.check(now, k.skew) != nil {
			continue
		}
		m := e.mac()
		ok := p.matches(m, body)
		e.pool.Put(m)
		if ok && found == "" {
			found = e.keyID
		}
	}
	if found == "" {
		return "", ErrBadSignature
	}
	return found, nil
}

func (e *entry) mac() hash.Hash { return e.pool.Get().(hash.Hash) }
