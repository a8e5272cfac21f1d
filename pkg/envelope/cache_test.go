package envelope

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingProvider wraps a provider, counts its calls and can slow them.
type countingProvider struct {
	Provider
	delay              time.Duration
	generate, decrypts atomic.Int64
}

func (p *countingProvider) GenerateDataKey(ctx context.Context, ec Context) (*DataKey, error) {
	p.generate.Add(1)
	time.Sleep(p.delay)
	return p.Provider.GenerateDataKey(ctx, ec)
}

func (p *countingProvider) DecryptDataKey(ctx context.Context, id string, edk []byte, ec Context) (*DataKey, error) {
	p.decrypts.Add(1)
	time.Sleep(p.delay)
	return p.Provider.DecryptDataKey(ctx, id, edk, ec)
}

func countingLocal(t *testing.T, cfg CacheConfig) (*Envelope, *countingProvider, *time.Time) {
	t.Helper()
	lp, err := NewLocalProvider(fixedLocalKey(t, "dev", 7))
	if err != nil {
		t.Fatal(err)
	}
	cp := &countingProvider{Provider: lp}
	e, err := New(Config{Provider: cp, Cache: &cfg, WriteVersion: Version1})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e.cache.now = func() time.Time { return now }
	return e, cp, &now
}

func TestCache10000DecryptsOfOneBlobMakeOneKMSDecrypt(t *testing.T) {
	c := motoKMS(t)
	arn := newKey(t, c, "")
	e := kmsEnvelope(t, c, arn, nil, &CacheConfig{MaxAge: time.Hour})
	ctx, calls := counted()
	ec := Context{"secret": "prod/jwt", "kid": "k1"}
	pt := []byte("-----BEGIN PRIVATE KEY-----")
	blob, err := e.Encrypt(ctx, pt, ec)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		got, err := e.Decrypt(ctx, blob, ec)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("decrypt %d: %v", i, err)
		}
	}
	if n := c.decrypt.Load(); n != 1 {
		t.Fatalf("10,000 decrypts made %d KMS Decrypt calls, want 1", n)
	}
	if n := calls.Count("kms:Decrypt"); n != 1 {
		t.Fatalf("rotation.Call counted %d kms:Decrypt, want 1", n)
	}
	st := e.CacheStats()
	if st.DecryptMisses != 1 || st.DecryptHits != 9999 || st.EncryptMisses != 1 {
		t.Fatalf("stats %+v", st)
	}

	// A different (wrong) context: refused before the cache and KMS.
	_, err = e.Decrypt(ctx, blob, Context{"secret": "prod/jwt", "kid": "k2"})
	wantKind(t, err, ErrContextMismatch, "wrong context")
	if c.decrypt.Load() != 1 {
		t.Fatal("a wrong context reached KMS")
	}

	// The same wrapped key presented under another context (the blob
	// rewritten to claim it, caller agreeing) is a cache miss — the cached
	// key for the first context is not served — and KMS refuses it.
	l, _ := parse(blob)
	ec2 := Context{"secret": "prod/jwt", "kid": "k2"}
	canon2, _ := ec2.canonical()
	forged := rebuild(l, canon2, l.keyID, l.edk)
	_, err = e.Decrypt(ctx, forged, ec2)
	wantKind(t, err, ErrAuthentication, "cached data key under another context")
	if c.decrypt.Load() != 2 || e.CacheStats().DecryptMisses != 2 {
		t.Fatalf("context not part of the decrypt cache key: %d KMS calls, stats %+v", c.decrypt.Load(), e.CacheStats())
	}

	// A genuine blob under another context: its own miss, then hits.
	blob2, _ := e.Encrypt(ctx, pt, ec2)
	for range 100 {
		if _, err := e.Decrypt(ctx, blob2, ec2); err != nil {
			t.Fatal(err)
		}
	}
	if c.decrypt.Load() != 3 || c.generate.Load() != 2 {
		t.Fatalf("second context: %d Decrypt, %d GenerateDataKey", c.decrypt.Load(), c.generate.Load())
	}
}

func TestCacheConcurrentMissesMakeOneProviderCall(t *testing.T) {
	e, cp, _ := countingLocal(t, CacheConfig{MaxAge: time.Hour})
	cp.delay = 30 * time.Millisecond
	ec := Context{"a": "b"}
	ctx := context.Background()
	// Concurrent encrypts under one context share one data key.
	blobs := make([][]byte, 32)
	var wg sync.WaitGroup
	for i := range blobs {
		wg.Go(func() {
			b, err := e.Encrypt(ctx, []byte(fmt.Sprint(i)), ec)
			if err != nil {
				t.Error(err)
			}
			blobs[i] = b
		})
	}
	wg.Wait()
	if n := cp.generate.Load(); n != 1 {
		t.Fatalf("32 concurrent encrypts made %d GenerateDataKey calls, want 1", n)
	}
	// A fresh Envelope: concurrent decrypts of one blob unwrap once.
	e2, cp2, _ := countingLocal(t, CacheConfig{MaxAge: time.Hour})
	cp2.Provider = cp.Provider
	cp2.delay = 30 * time.Millisecond
	for range 32 {
		wg.Go(func() {
			if _, err := e2.Decrypt(ctx, blobs[0], ec); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := cp2.decrypts.Load(); n != 1 {
		t.Fatalf("32 concurrent decrypts made %d provider calls, want 1", n)
	}
}

func TestCacheMaxAgeExpiresEncryptAndDecryptKeys(t *testing.T) {
	e, cp, now := countingLocal(t, CacheConfig{MaxAge: time.Minute})
	ctx, ec := context.Background(), Context{"a": "b"}
	b1, _ := e.Encrypt(ctx, []byte("1"), ec)
	e.Encrypt(ctx, []byte("2"), ec)
	e.Decrypt(ctx, b1, ec)
	e.Decrypt(ctx, b1, ec)
	if cp.generate.Load() != 1 || cp.decrypts.Load() != 1 {
		t.Fatalf("within max age: %d generate, %d decrypt", cp.generate.Load(), cp.decrypts.Load())
	}
	*now = now.Add(time.Minute)
	e.Encrypt(ctx, []byte("3"), ec)
	e.Decrypt(ctx, b1, ec)
	if cp.generate.Load() != 2 || cp.decrypts.Load() != 2 {
		t.Fatalf("after max age: %d generate, %d decrypt", cp.generate.Load(), cp.decrypts.Load())
	}
}

func TestCacheMaxMessagesLimitsUsesOfOneDataKey(t *testing.T) {
	e, cp, _ := countingLocal(t, CacheConfig{MaxAge: time.Hour, MaxMessages: 3})
	ctx, ec := context.Background(), Context{"a": "b"}
	edks := map[string]int{}
	for range 7 {
		b, err := e.Encrypt(ctx, []byte("m"), ec)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := ParseHeader(b)
		edks[string(h.EncryptedDataKey)]++
	}
	if cp.generate.Load() != 3 || len(edks) != 3 {
		t.Fatalf("7 messages at 3 per key: %d generate calls, %d data keys", cp.generate.Load(), len(edks))
	}
	for _, n := range edks {
		if n > 3 {
			t.Fatalf("a data key encrypted %d messages", n)
		}
	}
	// Decryption is not limited by message count.
	b, _ := e.Encrypt(ctx, []byte("m"), ec)
	for range 10 {
		e.Decrypt(ctx, b, ec)
	}
	if cp.decrypts.Load() != 1 {
		t.Fatalf("decrypt calls %d", cp.decrypts.Load())
	}
}

func TestCacheMaxBytesLimitsBytesPerDataKey(t *testing.T) {
	e, cp, _ := countingLocal(t, CacheConfig{MaxAge: time.Hour, MaxBytes: 100})
	ctx, ec := context.Background(), Context{"a": "b"}
	for range 5 { // 40 bytes each: two per key
		if _, err := e.Encrypt(ctx, make([]byte, 40), ec); err != nil {
			t.Fatal(err)
		}
	}
	if cp.generate.Load() != 3 {
		t.Fatalf("5×40 bytes at 100 per key: %d generate calls, want 3", cp.generate.Load())
	}
	// Larger than MaxBytes: a fresh key each time, never cached.
	before, entries := cp.generate.Load(), e.CacheStats().Entries
	e.Encrypt(ctx, make([]byte, 101), ec)
	e.Encrypt(ctx, make([]byte, 101), ec)
	if cp.generate.Load() != before+2 || e.CacheStats().Entries != entries {
		t.Fatalf("oversized messages: %d generate calls, entries %d→%d", cp.generate.Load()-before, entries, e.CacheStats().Entries)
	}
}

func TestCacheMaxEntriesEvictsLeastRecentlyUsedAndClearsKeys(t *testing.T) {
	e, cp, _ := countingLocal(t, CacheConfig{MaxAge: time.Hour, MaxEntries: 2})
	ctx := context.Background()
	plain, _ := New(Config{Provider: cp.Provider, WriteVersion: Version1}) // uncached: distinct data keys
	var blobs [][]byte
	var ecs []Context
	for i := range 3 {
		ec := Context{"row": fmt.Sprint(i)}
		b, _ := plain.Encrypt(ctx, []byte("v"), ec)
		blobs, ecs = append(blobs, b), append(ecs, ec)
	}
	e.Decrypt(ctx, blobs[0], ecs[0])
	first := e.cache.lru.Front().Value.(*cacheEntry).m
	e.Decrypt(ctx, blobs[1], ecs[1])
	e.Decrypt(ctx, blobs[2], ecs[2]) // evicts blob 0's key
	if st := e.CacheStats(); st.Entries != 2 || st.Evictions != 1 {
		t.Fatalf("stats %+v", st)
	}
	if !bytes.Equal(first.prk, make([]byte, len(first.prk))) {
		t.Fatal("evicted key material was not cleared")
	}
	e.Decrypt(ctx, blobs[0], ecs[0])
	if cp.decrypts.Load() != 4 {
		t.Fatalf("re-decrypting an evicted blob: %d provider calls, want 4", cp.decrypts.Load())
	}
}

func TestCacheDoesNotClearAKeyInUseUntilReleased(t *testing.T) {
	e, _, _ := countingLocal(t, CacheConfig{MaxAge: time.Hour})
	ctx, ec := context.Background(), Context{"a": "b"}
	canon, _ := ec.canonical()
	ent, _, err := e.cache.get(ctx, string(encryptKey(nil, canon)), 1, true, func(ctx context.Context) (*keyMaterial, error) {
		return e.generate(ctx, ec)
	})
	if err != nil {
		t.Fatal(err)
	}
	m, release := ent.m, func() { e.cache.release(ent) }
	e.Close() // evicts everything
	zero := make([]byte, len(m.prk))
	if bytes.Equal(m.prk, zero) {
		t.Fatal("a key in use was cleared")
	}
	release()
	if !bytes.Equal(m.prk, zero) {
		t.Fatal("the evicted key was not cleared on release")
	}
	if e.CacheStats().Entries != 0 {
		t.Fatal("Close left entries")
	}
}

func TestCacheConfigIsValidated(t *testing.T) {
	lp, _ := NewLocalProvider(fixedLocalKey(t, "k", 1))
	for _, cc := range []CacheConfig{{}, {MaxAge: -1}, {MaxAge: time.Second, MaxEntries: -1}} {
		_, err := New(Config{Provider: lp, Cache: &cc})
		wantKind(t, err, ErrMalformed, fmt.Sprintf("cache config %+v", cc))
	}
}
