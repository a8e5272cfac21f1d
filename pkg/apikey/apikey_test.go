package apikey

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mustKey(t testing.TB, prefix string) Key {
	t.Helper()
	k, err := GenerateKey(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func caller(t testing.TB, kind, prefix string, created time.Time) *CallerSecret {
	k := mustKey(t, prefix)
	p, _ := ParseKey(k.Reveal())
	return &CallerSecret{Kind: kind, KeyID: p.KeyID, Key: k, CreatedAt: created, ExpiresAt: created.Add(90 * 24 * time.Hour)}
}

func TestGeneratedKeysParseAndCarryTheirPrefixAndKeyID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		k := mustKey(t, "acme")
		p, err := ParseKey(k.Reveal())
		if err != nil {
			t.Fatalf("generated key does not parse: %v", err)
		}
		if p.Prefix != "acme" || len(p.KeyID) != KeyIDLen || !strings.HasPrefix(k.Reveal(), "acme_"+p.KeyID+"_") {
			t.Fatalf("unexpected parts %+v", p)
		}
		if seen[k.Reveal()] {
			t.Fatal("duplicate key")
		}
		seen[k.Reveal()] = true
	}
}

func TestKeyBodyHasAtLeast128BitsOfEntropy(t *testing.T) {
	// 32 base62 characters: 32·log2(62) ≈ 190 bits; every character of the
	// alphabet must be reachable (no truncated alphabet).
	if BodyLen*595/100 < 128 { // log2(62) ≈ 5.954
		t.Fatalf("body of %d base62 characters is below 128 bits", BodyLen)
	}
	counts := map[byte]int{}
	for i := 0; i < 300; i++ {
		s := mustKey(t, "sk").Reveal()
		body := s[len(s)-ChecksumLen-BodyLen : len(s)-ChecksumLen]
		for j := 0; j < len(body); j++ {
			counts[body[j]]++
		}
	}
	if len(counts) != 62 {
		t.Fatalf("body uses %d distinct characters, want all 62", len(counts))
	}
}

func TestATypoFailsTheChecksumBeforeAnyLookup(t *testing.T) {
	k := mustKey(t, "sk").Reveal()
	// Change one character in each part; the checksum catches every one
	// without a keyring (ParseKey does no lookup).
	for _, pos := range []int{3, 3 + KeyIDLen/2, len(k) - ChecksumLen - 5, len(k) - 2} {
		b := []byte(k)
		if b[pos] == 'a' {
			b[pos] = 'b'
		} else {
			b[pos] = 'a'
		}
		if _, err := ParseKey(string(b)); !errors.Is(err, ErrChecksum) {
			t.Fatalf("typo at %d: got %v, want ErrChecksum", pos, err)
		}
	}
	// And through a keyring whose records would say "unknown key": the
	// checksum error comes first.
	ring, _ := NewKeyring(&VerifierDoc{Kind: KindAPIKey}, nil)
	b := []byte(k)
	b[4] ^= 1
	if _, err := ring.Verify(string(b), t0); !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v, want the checksum (or format) to reject the typo", err)
	}
}

func TestMalformedKeysAreRejected(t *testing.T) {
	k := mustKey(t, "sk").Reveal()
	cases := map[string]error{
		"empty":            ErrMalformed,
		"no separators":    ErrMalformed,
		"oversized":        ErrOversized,
		"uppercase prefix": ErrMalformed,
		"short body":       ErrMalformed,
		"non-base62":       ErrMalformed,
	}
	inputs := map[string]string{
		"empty":            "",
		"no separators":    strings.ReplaceAll(k, "_", ""),
		"oversized":        k + strings.Repeat("a", MaxKeyLen),
		"uppercase prefix": "SK" + k[2:],
		"short body":       k[:len(k)-1],
		"non-base62":       k[:len(k)-10] + "-" + k[len(k)-9:],
	}
	for name, want := range cases {
		if _, err := ParseKey(inputs[name]); !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", name, err, want)
		}
	}
}

func TestKeysRedactThemselvesEverywhere(t *testing.T) {
	k := mustKey(t, "sk")
	secret := k.Reveal()
	var logbuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logbuf, nil)).Info("x", "key", k)
	js, _ := json.Marshal(struct{ K Key }{k})
	outs := []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %q %x", k, k, k, k, k, k), logbuf.String(), string(js)}
	body := secret[len(secret)-ChecksumLen-BodyLen:]
	for _, o := range outs {
		if strings.Contains(o, body) {
			t.Fatalf("key body leaked: %s", o)
		}
	}
	p, _ := ParseKey(secret)
	if !strings.Contains(outs[0], p.KeyID) {
		t.Fatalf("redacted form should keep the public key id: %s", outs[0])
	}
}

func apiDoc(t testing.TB, alg string, pepper []byte, recs ...*CallerSecret) (*VerifierDoc, []Record) {
	d := &VerifierDoc{Kind: KindAPIKey}
	if alg == AlgHMACSHA256 {
		d.PepperFingerprint = PepperFingerprint(pepper)
	}
	for _, c := range recs {
		r, err := NewRecord(c, alg, pepper, StatusActive)
		if err != nil {
			t.Fatal(err)
		}
		d.Records = append(d.Records, r)
	}
	return d, d.Records
}

var pepper = bytes.Repeat([]byte("p"), 32)

func TestVerifyChecksHashStatusAndWindow(t *testing.T) {
	for _, alg := range []string{AlgSHA256, AlgHMACSHA256} {
		t.Run(alg, func(t *testing.T) {
			a := caller(t, KindAPIKey, "sk", t0)
			b := caller(t, KindAPIKey, "sk", t0)
			c := caller(t, KindAPIKey, "sk", t0)
			d := caller(t, KindAPIKey, "sk", t0.Add(time.Hour))
			doc, recs := apiDoc(t, alg, pepper, a, b, c, d)
			recs[1].Status = StatusRetiring
			recs[1].NotAfter = t0.Add(24 * time.Hour)
			recs[2].Status = StatusRevoked
			ring, err := NewKeyring(doc, pepper)
			if err != nil {
				t.Fatal(err)
			}
			now := t0.Add(time.Minute)
			check := func(name string, key string, at time.Time, want error) {
				t.Helper()
				if _, err := ring.Verify(key, at); !errors.Is(err, want) && !(want == nil && err == nil) {
					t.Errorf("%s: got %v, want %v", name, err, want)
				}
			}
			check("active key", a.Key.Reveal(), now, nil)
			check("retiring key within the overlap", b.Key.Reveal(), now, nil)
			check("retiring key at its notAfter", b.Key.Reveal(), t0.Add(24*time.Hour), ErrExpired)
			check("revoked key", c.Key.Reveal(), now, ErrRevoked)
			check("key before its notBefore", d.Key.Reveal(), now, ErrNotYetValid)
			check("key within the skew before notBefore", d.Key.Reveal(), t0.Add(time.Hour-30*time.Second), nil)
			check("key after its expiry", a.Key.Reveal(), a.ExpiresAt, ErrExpired)
			check("unknown key id", mustKey(t, "sk").Reveal(), now, ErrUnknownKey)
			check("wrong prefix", mustKey(t, "pk").Reveal(), now, ErrWrongPrefix)
			// A well-formed key with a known key id but another body: the
			// attacker knows the public id, not the key.
			forged := forge(t, "sk", a.KeyID)
			check("known key id, wrong body", forged, now, ErrMismatch)
			if id, _ := ring.Verify(a.Key.Reveal(), now); id != a.KeyID {
				t.Fatalf("verify returned key id %q, want %q", id, a.KeyID)
			}
		})
	}
}

// forge builds a well-formed key (valid checksum) with a chosen key id.
func forge(t testing.TB, prefix, keyID string) string {
	k := mustKey(t, prefix).Reveal()
	s := prefix + "_" + keyID + k[len(prefix)+1+KeyIDLen:len(k)-ChecksumLen]
	var sum [ChecksumLen]byte
	encodeChecksum(&sum, crc32IEEE(s))
	return s + string(sum[:])
}

func TestAWrongOrMissingPepperIsAClearError(t *testing.T) {
	doc, _ := apiDoc(t, AlgHMACSHA256, pepper, caller(t, KindAPIKey, "sk", t0))
	if _, err := NewKeyring(doc, nil); err == nil {
		t.Fatal("missing pepper accepted")
	}
	if _, err := NewKeyring(doc, bytes.Repeat([]byte("q"), 32)); err == nil || !strings.Contains(err.Error(), "pepperFingerprint") {
		t.Fatalf("wrong pepper: got %v", err)
	}
}

func TestVerifierDocumentRoundTripsCanonically(t *testing.T) {
	doc, _ := apiDoc(t, AlgHMACSHA256, pepper, caller(t, KindAPIKey, "sk", t0.Add(time.Hour)), caller(t, KindAPIKey, "sk", t0))
	doc.Records[0].NotAfter = time.Time{}
	b1, err := doc.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseVerifier(b1)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := back.Encode()
	if !bytes.Equal(b1, b2) {
		t.Fatalf("not canonical:\n%s\n%s", b1, b2)
	}
}

func TestMalformedDocumentsAreRejectedWithoutEchoingValues(t *testing.T) {
	c := caller(t, KindAPIKey, "sk", t0)
	good, _ := c.Encode()
	doc, _ := apiDoc(t, AlgSHA256, nil, c)
	vgood, _ := doc.Encode()
	edit := func(b []byte, f func(m map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
	callerCases := map[string][]byte{
		"not JSON":             []byte("{" + c.Key.Reveal()),
		"wrong schema version": edit(good, func(m map[string]any) { m["schemaVersion"] = 2 }),
		"unknown kind":         edit(good, func(m map[string]any) { m["kind"] = "password" }),
		"unknown field":        edit(good, func(m map[string]any) { m["extra"] = 1 }),
		"bad checksum":         edit(good, func(m map[string]any) { m["key"] = flipLast(m["key"].(string)) }),
		"keyId mismatch":       edit(good, func(m map[string]any) { m["keyId"] = "AAAAAAAAAAAA" }),
		"missing expiresAt":    edit(good, func(m map[string]any) { delete(m, "expiresAt") }),
		"oversized":            append([]byte(`{"schemaVersion":1,"kind":"apikey","pad":"`), bytes.Repeat([]byte("x"), MaxDocBytes)...),
		"trailing data":        append(append([]byte{}, good...), []byte(" {}")...),
	}
	for name, b := range callerCases {
		_, err := ParseCaller(b)
		if !errors.Is(err, ErrDocument) {
			t.Errorf("caller %s: got %v", name, err)
		} else if strings.Contains(err.Error(), c.Key.Reveal()[5:]) {
			t.Errorf("caller %s: error echoes the key", name)
		}
	}
	rec := func(f func(r map[string]any)) []byte {
		return edit(vgood, func(m map[string]any) { f(m["keys"].([]any)[0].(map[string]any)) })
	}
	verifierCases := map[string][]byte{
		"not JSON":               []byte("[]"),
		"wrong schema version":   edit(vgood, func(m map[string]any) { m["schemaVersion"] = 0 }),
		"plaintext in an apikey": rec(func(r map[string]any) { r["secret"] = c.Key.Reveal() }),
		"short hash":             rec(func(r map[string]any) { r["hash"] = "AAAA" }),
		"unknown status":         rec(func(r map[string]any) { r["status"] = "maybe" }),
		"unknown alg":            rec(func(r map[string]any) { r["alg"] = "md5" }),
		"bad keyId":              rec(func(r map[string]any) { r["keyId"] = "../../etc" }),
		"duplicate keyId":        edit(vgood, func(m map[string]any) { ks := m["keys"].([]any); m["keys"] = append(ks, ks[0]) }),
	}
	for name, b := range verifierCases {
		if _, err := ParseVerifier(b); !errors.Is(err, ErrDocument) {
			t.Errorf("verifier %s: got %v", name, err)
		}
	}
}

func TestWebhookSignaturesVerifyUnderEitherLiveKeyAndRejectReplays(t *testing.T) {
	cur := caller(t, KindWebhook, "whsec", t0.Add(time.Hour))
	prev := caller(t, KindWebhook, "whsec", t0)
	old := caller(t, KindWebhook, "whsec", t0.Add(-time.Hour))
	doc := &VerifierDoc{Kind: KindWebhook}
	for i, c := range []*CallerSecret{cur, prev, old} {
		r, err := NewRecord(c, "", nil, []string{StatusActive, StatusRetiring, StatusRevoked}[i])
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			r.NotAfter = t0.Add(25 * time.Hour)
		}
		doc.Records = append(doc.Records, r)
	}
	raw, _ := doc.Encode()
	doc, err := ParseVerifier(raw)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := NewKeyring(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"event":"paid"}`)
	now := t0.Add(2 * time.Hour)
	for _, c := range []*CallerSecret{cur, prev} {
		h := SignWebhook(c.Key, now, body)
		if id, err := ring.VerifySignature(h, body, now, DefaultTolerance); err != nil || id != c.KeyID {
			t.Fatalf("signature by %s: id %q err %v", c.KeyID, id, err)
		}
	}
	if _, err := ring.VerifySignature(SignWebhook(old.Key, now, body), body, now, DefaultTolerance); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("revoked key: %v", err)
	}
	after := t0.Add(26 * time.Hour)
	if _, err := ring.VerifySignature(SignWebhook(prev.Key, after, body), body, after, DefaultTolerance); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("previous key after the overlap: %v", err)
	}
	h := SignWebhook(cur.Key, now, body)
	if _, err := ring.VerifySignature(h, body, now.Add(DefaultTolerance+time.Second), DefaultTolerance); !errors.Is(err, ErrStale) {
		t.Fatalf("replay after the tolerance: %v", err)
	}
	if _, err := ring.VerifySignature(h, []byte(`{"event":"refund"}`), now, DefaultTolerance); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("changed body: %v", err)
	}
	for name, bad := range map[string]string{
		"no timestamp": "v1=" + strings.Repeat("0", 64),
		"no v1":        "t=1",
		"oversized":    "t=1," + strings.Repeat("v1="+strings.Repeat("0", 64)+",", 20),
		"short v1":     "t=1,v1=00",
	} {
		if _, err := ring.VerifySignature(bad, body, now, DefaultTolerance); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrOversized) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestWebhookRecordsHoldTheKeyAndAPIKeyRecordsNever(t *testing.T) {
	a := caller(t, KindAPIKey, "sk", t0)
	doc, _ := apiDoc(t, AlgSHA256, nil, a)
	b, _ := doc.Encode()
	if bytes.Contains(b, []byte(a.Key.Reveal())) {
		t.Fatal("API-key verifier document holds the plaintext key")
	}
	w := caller(t, KindWebhook, "whsec", t0)
	r, _ := NewRecord(w, "", nil, StatusActive)
	if r.Secret.Reveal() != w.Key.Reveal() || r.Hash != nil {
		t.Fatal("a webhook record must hold the key itself")
	}
}

// flipLast changes the key's last character (part of the checksum) to a
// different base62 character, so the edit always breaks the checksum.
func flipLast(k string) string {
	last := byte('x')
	if k[len(k)-1] == last {
		last = 'y'
	}
	return k[:len(k)-1] + string(last)
}
