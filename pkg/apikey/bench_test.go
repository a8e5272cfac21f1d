package apikey

import (
	"context"
	"testing"
	"time"
)

// BenchmarkVerify measures the per-request cost of verifying an API key
// against a loaded keyring (two live records, as during the overlap).
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{AlgSHA256, AlgHMACSHA256} {
		b.Run(alg, func(b *testing.B) {
			cur := caller(b, KindAPIKey, "sk", t0)
			prev := caller(b, KindAPIKey, "sk", t0)
			doc, _ := apiDoc(b, alg, pepper, cur, prev)
			ring, err := NewKeyring(doc, pepper)
			if err != nil {
				b.Fatal(err)
			}
			key := cur.Key.Reveal()
			now := t0.Add(time.Hour)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ring.Verify(key, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("typo-rejected-by-checksum", func(b *testing.B) {
		ring, _ := NewKeyring(&VerifierDoc{Kind: KindAPIKey}, nil)
		k := []byte(mustKey(b, "sk").Reveal())
		if k[len(k)-10] == 'a' { // still base62, checksum fails
			k[len(k)-10] = 'b'
		} else {
			k[len(k)-10] = 'a'
		}
		key := string(k)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ring.Verify(key, t0); err != ErrChecksum {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifySignature measures verifying a webhook signature over a
// 1 KiB body with two live keys, signed by the newer one.
func BenchmarkVerifySignature(b *testing.B) {
	cur := caller(b, KindWebhook, "whsec", t0)
	prev := caller(b, KindWebhook, "whsec", t0)
	doc := &VerifierDoc{Kind: KindWebhook}
	for _, c := range []*CallerSecret{prev, cur} {
		r, _ := NewRecord(c, "", nil, StatusActive)
		doc.Records = append(doc.Records, r)
	}
	ring, err := NewKeyring(doc, nil)
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	now := t0.Add(time.Hour)
	h := SignWebhook(cur.Key, now, body)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.VerifySignature(h, body, now, DefaultTolerance); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifierThroughTheCache is Verify as a service calls it: the
// keyring comes from a secretcache (a hit), hmac-sha256 records.
func BenchmarkVerifierThroughTheCache(b *testing.B) {
	cur := caller(b, KindAPIKey, "sk", t0)
	src := &memSource{vals: map[string]string{"v": encodeDocTB(b, cur), "p": string(pepper)}}
	clk := &fakeClock{t: t0.Add(time.Hour)}
	v, err := NewVerifier(context.Background(), VerifierConfig{Source: src, SecretID: "v", PepperSecretID: "p", Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	key := cur.Key.Reveal()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}

func encodeDocTB(tb testing.TB, recs ...*CallerSecret) string {
	doc, _ := apiDoc(tb, AlgHMACSHA256, pepper, recs...)
	b, err := doc.Encode()
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
