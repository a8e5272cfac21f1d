package envelope

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"testing"
	"time"
)

// Benchmarks: envelope Encrypt/Decrypt with a cached data key (local
// provider; with KMS a cached key makes the same work) beside raw
// AES-256-GCM Seal/Open of the same sizes with one key and a reused output
// buffer — the pure cost of the cipher. Results: docs/bench/envelope.md.

var benchSizes = []int{64, 1 << 10, 4 << 10, 64 << 10, 1 << 20}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

var benchContext = Context{"table": "payees", "column": "bank_account", "row": "1234567"}

func benchEnvelope(b *testing.B) *Envelope {
	return localEnvelope(b, &CacheConfig{MaxAge: time.Hour})
}

func BenchmarkEnvelopeEncrypt(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			e := benchEnvelope(b)
			ctx, pt := context.Background(), make([]byte, n)
			if _, err := e.Encrypt(ctx, pt, benchContext); err != nil { // warm the cache
				b.Fatal(err)
			}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Encrypt(ctx, pt, benchContext); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEnvelopeDecrypt(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			e := benchEnvelope(b)
			ctx := context.Background()
			blob, _ := e.Encrypt(ctx, make([]byte, n), benchContext)
			if _, err := e.Decrypt(ctx, blob, benchContext); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Decrypt(ctx, blob, benchContext); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEnvelopeRoundTrip is Encrypt then Decrypt of the result.
func BenchmarkEnvelopeRoundTrip(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			e := benchEnvelope(b)
			ctx, pt := context.Background(), make([]byte, n)
			e.Encrypt(ctx, pt, benchContext)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				blob, err := e.Encrypt(ctx, pt, benchContext)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.Decrypt(ctx, blob, benchContext); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The append forms into reused buffers: what a caller that keeps its
// buffers pays.
func BenchmarkEnvelopeAppendEncrypt(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			e := benchEnvelope(b)
			ctx, pt := context.Background(), make([]byte, n)
			blob, err := e.AppendEncrypt(ctx, nil, pt, benchContext) // warm the cache, size the buffer
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if blob, err = e.AppendEncrypt(ctx, blob[:0], pt, benchContext); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEnvelopeAppendDecrypt(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			e := benchEnvelope(b)
			ctx := context.Background()
			blob, _ := e.Encrypt(ctx, make([]byte, n), benchContext)
			out, err := e.AppendDecrypt(ctx, nil, blob, benchContext)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if out, err = e.AppendDecrypt(ctx, out[:0], blob, benchContext); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEnvelopeAppendRoundTrip is AppendEncrypt then AppendDecrypt,
// both into reused buffers.
func BenchmarkEnvelopeAppendRoundTrip(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			e := benchEnvelope(b)
			ctx, pt := context.Background(), make([]byte, n)
			blob, _ := e.AppendEncrypt(ctx, nil, pt, benchContext)
			out := make([]byte, 0, n)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if blob, err = e.AppendEncrypt(ctx, blob[:0], pt, benchContext); err != nil {
					b.Fatal(err)
				}
				if out, err = e.AppendDecrypt(ctx, out[:0], blob, benchContext); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func rawGCM(b *testing.B) cipher.AEAD {
	key := make([]byte, 32)
	rand.Read(key)
	block, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(block)
	return g
}

func BenchmarkRawGCMSeal(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			g, nonce, pt := rawGCM(b), make([]byte, 12), make([]byte, n)
			out := make([]byte, 0, n+16)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				out = g.Seal(out[:0], nonce, pt, nil)
			}
		})
	}
}

func BenchmarkRawGCMOpen(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			g, nonce := rawGCM(b), make([]byte, 12)
			ct := g.Seal(nil, nonce, make([]byte, n), nil)
			out := make([]byte, 0, n)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if out, err = g.Open(out[:0], nonce, ct, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRawGCMRoundTrip is Seal then Open.
func BenchmarkRawGCMRoundTrip(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			g, nonce, pt := rawGCM(b), make([]byte, 12), make([]byte, n)
			ct, out := make([]byte, 0, n+16), make([]byte, 0, n)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				ct = g.Seal(ct[:0], nonce, pt, nil)
				var err error
				if out, err = g.Open(out[:0], nonce, ct, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The per-message fixed costs, for the table's notes.
func BenchmarkDerivePooledHMAC(b *testing.B) {
	m, _ := newKeyMaterial(make([]byte, 32), "k", []byte{1})
	id := make([]byte, MessageIDSize)
	var okm [okmSize]byte
	b.ReportAllocs()
	for b.Loop() {
		m.expandInto(&okm, ProviderKMS, id)
	}
}

func BenchmarkDeriveStdlibHKDFExpand(b *testing.B) {
	m, _ := newKeyMaterial(make([]byte, 32), "k", []byte{1})
	id := make([]byte, MessageIDSize)
	b.ReportAllocs()
	for b.Loop() {
		m.expandStdlib(ProviderKMS, id)
	}
}

func BenchmarkNewAESGCM(b *testing.B) {
	key := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		newGCM(key)
	}
}

// BenchmarkInterleaved runs, in alternating blocks of 16 inside one
// benchmark so all four see the same machine load:
//   - envelope round trips (Encrypt+Decrypt, cached data key, new output
//     slices as the API returns; "env"),
//   - envelope round trips with the append forms into reused buffers
//     (AppendEncrypt+AppendDecrypt; "app"),
//   - raw AES-256-GCM Seal+Open with one key into reused buffers (the pure
//     cipher cost; "raw"),
//   - raw AES-256-GCM Seal+Open with one key into new slices (Seal(nil…),
//     Open(nil…): the cipher plus the allocation any returning API pays;
//     "rawalloc").
//
// The order is env, app, rawalloc, raw, so each buffer-reusing block follows
// a block that allocates (and may find the garbage collector running):
// neither of the two the goals compare is favoured. It reports ns per round
// trip for each and the ratios. On a shared machine
// this is the figure the 2× goal is judged by (app against raw: both reuse
// their buffers). Its allocs/op are those of all four together; the
// separate benchmarks above report each one's.
func BenchmarkInterleaved(b *testing.B) {
	const block = 16
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			e := benchEnvelope(b)
			ctx, pt := context.Background(), make([]byte, n)
			e.Encrypt(ctx, pt, benchContext)
			g, nonce := rawGCM(b), make([]byte, 12)
			ct, out := make([]byte, 0, n+16), make([]byte, 0, n)
			ablob, _ := e.AppendEncrypt(ctx, nil, pt, benchContext)
			aout := make([]byte, 0, n)
			var envT, appT, rawT, allocT time.Duration
			b.SetBytes(int64(4 * 2 * block * n))
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				for range block {
					blob, err := e.Encrypt(ctx, pt, benchContext)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := e.Decrypt(ctx, blob, benchContext); err != nil {
						b.Fatal(err)
					}
				}
				ta := time.Now()
				for range block {
					var err error
					if ablob, err = e.AppendEncrypt(ctx, ablob[:0], pt, benchContext); err != nil {
						b.Fatal(err)
					}
					if aout, err = e.AppendDecrypt(ctx, aout[:0], ablob, benchContext); err != nil {
						b.Fatal(err)
					}
				}
				t1 := time.Now()
				for range block {
					c := g.Seal(nil, nonce, pt, nil)
					if _, err := g.Open(nil, nonce, c, nil); err != nil {
						b.Fatal(err)
					}
				}
				t2 := time.Now()
				for range block {
					ct = g.Seal(ct[:0], nonce, pt, nil)
					var err error
					if out, err = g.Open(out[:0], nonce, ct, nil); err != nil {
						b.Fatal(err)
					}
				}
				t3 := time.Now()
				envT += ta.Sub(t0)
				appT += t1.Sub(ta)
				allocT += t2.Sub(t1)
				rawT += t3.Sub(t2)
			}
			ops := float64(b.N * block)
			b.ReportMetric(float64(envT.Nanoseconds())/ops, "env-ns/rt")
			b.ReportMetric(float64(appT.Nanoseconds())/ops, "app-ns/rt")
			b.ReportMetric(float64(rawT.Nanoseconds())/ops, "raw-ns/rt")
			b.ReportMetric(float64(allocT.Nanoseconds())/ops, "rawalloc-ns/rt")
			b.ReportMetric(float64(envT)/float64(rawT), "x-raw")
			b.ReportMetric(float64(envT)/float64(allocT), "x-rawalloc")
			b.ReportMetric(float64(appT)/float64(rawT), "app-x-raw")
		})
	}
}

// BenchmarkInterleavedAppend alternates blocks of 16 envelope round trips
// with the append forms (AppendEncrypt+AppendDecrypt into reused buffers,
// cached data key) and 16 raw AES-256-GCM Seal+Open round trips into reused
// buffers, with nothing else allocating: the comparison the goals are judged
// by. app-GB/s is 2×size per envelope round trip (each byte encrypted and
// decrypted once). allocs/op counts one block pair (16 envelope round trips;
// raw GCM allocates nothing).
func BenchmarkInterleavedAppend(b *testing.B) {
	const block = 16
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			e := benchEnvelope(b)
			ctx, pt := context.Background(), make([]byte, n)
			blob, _ := e.AppendEncrypt(ctx, nil, pt, benchContext)
			plain := make([]byte, 0, n)
			g, nonce := rawGCM(b), make([]byte, 12)
			ct, out := make([]byte, 0, n+16), make([]byte, 0, n)
			var appT, rawT time.Duration
			b.SetBytes(int64(2 * 2 * block * n))
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				for range block {
					var err error
					if blob, err = e.AppendEncrypt(ctx, blob[:0], pt, benchContext); err != nil {
						b.Fatal(err)
					}
					if plain, err = e.AppendDecrypt(ctx, plain[:0], blob, benchContext); err != nil {
						b.Fatal(err)
					}
				}
				t1 := time.Now()
				for range block {
					ct = g.Seal(ct[:0], nonce, pt, nil)
					var err error
					if out, err = g.Open(out[:0], nonce, ct, nil); err != nil {
						b.Fatal(err)
					}
				}
				t2 := time.Now()
				appT += t1.Sub(t0)
				rawT += t2.Sub(t1)
			}
			ops := float64(b.N * block)
			b.ReportMetric(float64(appT.Nanoseconds())/ops, "app-ns/rt")
			b.ReportMetric(float64(rawT.Nanoseconds())/ops, "raw-ns/rt")
			b.ReportMetric(float64(appT)/float64(rawT), "x-raw")
			b.ReportMetric(2*float64(n)*ops/float64(appT.Nanoseconds()), "app-GB/s")
			b.ReportMetric(2*float64(n)*ops/float64(rawT.Nanoseconds()), "raw-GB/s")
		})
	}
}
