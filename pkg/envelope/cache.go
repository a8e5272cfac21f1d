package envelope

import (
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// CacheConfig bounds the data-key cache. Zero fields take the defaults
// shown; MaxAge is required. Limits above the hard maxima (MaxCacheAge,
// MaxMessagesPerDataKey, MaxBytesPerDataKey) are refused: they keep a
// cached data key within the safe use of AES-256-GCM.
//
// Encryption reuses one data key for many messages with the same context
// until it is MaxAge old, has encrypted MaxMessages messages or MaxBytes
// bytes; then a new key is generated. A message larger than MaxBytes gets a
// fresh, uncached key. Decryption caches unwrapped keys for MaxAge, keyed by a
// hash of the provider, key id, wrapped data key AND canonical context, so a
// key cached for one context never serves another. Both kinds share
// MaxEntries (least recently used goes first). Evicted keys are cleared.
type CacheConfig struct {
	MaxAge      time.Duration // required, 0 < MaxAge ≤ MaxCacheAge: how long a data key may be used
	MaxMessages int64         // messages encrypted per data key (default and maximum 2^32)
	MaxBytes    int64         // plaintext bytes encrypted per data key (default and maximum 2^32)
	MaxEntries  int           // cached data keys, encryption and decryption together (default 1000)
}

// CacheStats are the cache's counters since the Envelope was made.
type CacheStats struct {
	EncryptHits, EncryptMisses uint64 // a miss is one GenerateDataKey
	DecryptHits, DecryptMisses uint64 // a miss is one provider Decrypt
	Evictions                  uint64 // entries removed for age, use limits, size or Close
	Entries                    int    // entries now cached
}

// Hard limits of the cache (format version 2 relies on them: a cached data
// key's content key seals at most MaxMessagesPerDataKey messages with
// counter nonces, and at most MaxBytesPerDataKey bytes — 2^28 AES blocks,
// far below the bounds of NIST SP 800-38D).
const (
	MaxCacheAge           = 24 * time.Hour
	MaxMessagesPerDataKey = 1 << 32
	MaxBytesPerDataKey    = 1 << 32
)

// cacheKey is the cache's key: a domain byte and the length-prefixed fields
// that select an entry, kept as a string (map lookups by a []byte converted
// in the index expression do not allocate).
type cacheKey = string

type cacheEntry struct {
	key      cacheKey
	m        *keyMaterial
	created  time.Time
	messages int64
	bytes    int64
	refs     atomic.Int64 // callers using m; taken under cache.mu, dropped without it
	evicted  atomic.Bool  // set under cache.mu
	cleared  atomic.Bool  // m destroyed (exactly once)
	elem     *list.Element
}

type flight struct {
	done chan struct{}
	err  error
}

type cache struct {
	cfg      CacheConfig
	now      func() time.Time // nil: the real clock (tests set a fake one)
	mu       sync.Mutex
	entries  map[cacheKey]*cacheEntry
	lru      list.List // front = most recently used; values *cacheEntry
	inflight map[cacheKey]*flight
	st       CacheStats
}

func newCache(cfg CacheConfig, now func() time.Time) (*cache, error) {
	if cfg.MaxAge <= 0 || cfg.MaxAge > MaxCacheAge {
		return nil, newErr(ErrMalformed, "new", "CacheConfig.MaxAge must be positive and at most %s", MaxCacheAge)
	}
	if cfg.MaxMessages < 0 || cfg.MaxBytes < 0 || cfg.MaxEntries < 0 {
		return nil, newErr(ErrMalformed, "new", "CacheConfig limits must not be negative")
	}
	if cfg.MaxMessages > MaxMessagesPerDataKey || cfg.MaxBytes > MaxBytesPerDataKey {
		return nil, newErr(ErrMalformed, "new", "CacheConfig.MaxMessages and MaxBytes are at most %d each", int64(MaxMessagesPerDataKey))
	}
	if cfg.MaxMessages == 0 {
		cfg.MaxMessages = MaxMessagesPerDataKey
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = MaxBytesPerDataKey
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = 1000
	}
	return &cache{cfg: cfg, now: now, entries: map[cacheKey]*cacheEntry{}, inflight: map[cacheKey]*flight{}}, nil
}

// Cache keys: a domain byte (E/e: encryption under format 1/2, D/d:
// decryption of a format 1/2 blob), the provider and length-prefixed
// fields, so no two kinds of entry can collide.
func encryptKey(buf []byte, canonCtx []byte) []byte {
	buf = append(buf[:0], 'E', 0)
	return append(buf, canonCtx...)
}

func decryptKey(buf []byte, domain byte, provider ProviderID, keyID, edk, canonCtx []byte) []byte {
	buf = append(buf[:0], domain, byte(provider))
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(keyID)))
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(edk)))
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(canonCtx)))
	buf = append(buf, keyID...)
	buf = append(buf, edk...)
	return append(buf, canonCtx...)
}

type loader func(ctx context.Context) (*keyMaterial, error)

// usable reports whether e may serve one more use (of size bytes when
// encrypting). Called with c.mu held.
func (c *cache) usable(e *cacheEntry, size int64, encrypt bool) bool {
	if c.age(e) >= c.cfg.MaxAge {
		return false
	}
	if encrypt && (e.messages+1 > c.cfg.MaxMessages || e.bytes+size > c.cfg.MaxBytes) {
		return false
	}
	return true
}

// lookup is the hit path: it takes one use of a usable entry, or returns nil.
// The entry's message count before this use is the use's sequence number
// (format 2 makes its nonce from it): under c.mu, so no two uses of one
// entry get the same number.
func (c *cache) lookup(key []byte, size int64, encrypt bool) (*cacheEntry, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[string(key)]
	if !ok || !c.usable(e, size, encrypt) {
		return nil, 0
	}
	seq := e.messages
	e.messages++
	e.bytes += size
	e.refs.Add(1)
	c.lru.MoveToFront(e.elem)
	if encrypt {
		c.st.EncryptHits++
	} else {
		c.st.DecryptHits++
	}
	return e, seq
}

// reuse takes one use of e, which the caller remembered from an earlier
// lookup, if it is still cached and usable; it returns the sequence number
// of the use. It saves the map lookup on a hot path (Column).
func (c *cache) reuse(e *cacheEntry, size int64, encrypt bool) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.evicted.Load() || !c.usable(e, size, encrypt) {
		return 0, false
	}
	seq := e.messages
	e.messages++
	e.bytes += size
	e.refs.Add(1)
	c.lru.MoveToFront(e.elem)
	if encrypt {
		c.st.EncryptHits++
	} else {
		c.st.DecryptHits++
	}
	return seq, true
}

// get returns an entry for key holding one use and the use's sequence
// number, loading the material with one provider call however many
// goroutines miss at once. The caller releases the entry when done with its
// material.
func (c *cache) get(ctx context.Context, key cacheKey, size int64, encrypt bool, load loader) (*cacheEntry, int64, error) {
	counted := false
	for {
		c.mu.Lock()
		if e, ok := c.entries[key]; ok {
			if c.usable(e, size, encrypt) {
				seq := e.messages
				e.messages++
				e.bytes += size
				e.refs.Add(1)
				c.lru.MoveToFront(e.elem)
				if !counted {
					if encrypt {
						c.st.EncryptHits++
					} else {
						c.st.DecryptHits++
					}
				}
				c.mu.Unlock()
				return e, seq, nil
			}
			c.evictLocked(e)
		}
		if f, ok := c.inflight[key]; ok {
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, 0, &Error{Kind: ErrProvider, Op: "cache", Detail: "gave up waiting for the data key", Cause: ctx.Err()}
			}
			if f.err != nil && (ctx.Err() != nil || !isContextErr(f.err)) {
				return nil, 0, f.err // the provider's answer holds for every waiter
			}
			continue // take a use of the loaded entry, or load again if the leader's context ended
		}
		f := &flight{done: make(chan struct{})}
		c.inflight[key] = f
		if encrypt {
			c.st.EncryptMisses++
		} else {
			c.st.DecryptMisses++
		}
		counted = true
		c.mu.Unlock()

		m, err := load(ctx)

		c.mu.Lock()
		delete(c.inflight, key)
		f.err = err
		if err == nil {
			e := &cacheEntry{key: key, m: m, created: c.clock()}
			if old, ok := c.entries[key]; ok {
				c.evictLocked(old)
			}
			c.entries[key] = e
			e.elem = c.lru.PushFront(e)
			for len(c.entries) > c.cfg.MaxEntries {
				c.evictLocked(c.lru.Back().Value.(*cacheEntry))
			}
		}
		c.mu.Unlock()
		close(f.done)
		if err != nil {
			return nil, 0, err
		}
	}
}

func (c *cache) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// age is how long ago e was created. With the real clock it reads only the
// monotonic clock (time.Since), which costs half of time.Now on the hot path.
func (c *cache) age(e *cacheEntry) time.Duration {
	if c.now != nil {
		return c.now().Sub(e.created)
	}
	return time.Since(e.created)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// evictLocked removes e from the cache; its key is cleared as soon as no
// caller uses it any more.
func (c *cache) evictLocked(e *cacheEntry) {
	if e.evicted.Load() {
		return
	}
	e.evicted.Store(true)
	delete(c.entries, e.key)
	c.lru.Remove(e.elem)
	c.st.Evictions++
	if e.refs.Load() == 0 {
		e.clear()
	}
}

// release drops one use of e without taking the lock. evictLocked stores
// evicted before it loads refs, release drops refs before it loads evicted
// (sequentially consistent atomics), so whichever runs last sees both and the
// key is cleared once no caller uses it; cleared makes it happen once.
func (c *cache) release(e *cacheEntry) {
	if e.refs.Add(-1) == 0 && e.evicted.Load() {
		e.clear()
	}
}

func (e *cacheEntry) clear() {
	if e.cleared.CompareAndSwap(false, true) {
		e.m.destroy()
	}
}

func (c *cache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		c.evictLocked(e)
	}
}

func (c *cache) stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.Entries = len(c.entries)
	return s
}
