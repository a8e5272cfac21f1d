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
// (format 2: the same stable context) until it is MaxAge old, has encrypted
// MaxMessages messages or MaxBytes bytes; then a new key is generated. A
// message larger than MaxBytes gets a fresh, uncached key. Decryption caches unwrapped keys for MaxAge, keyed by
// the provider, key id, wrapped data key AND canonical (stable) context, so a
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
	messages atomic.Int64  // uses taken for encryption: the next sequence number
	bytes    atomic.Int64  // plaintext bytes of those uses
	uses     atomic.Uint64 // lock-free uses, to refresh the LRU position now and then
	expired  atomic.Bool   // set by timer when MaxAge has passed (real clock)
	timer    *time.Timer
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
	st       CacheStats    // misses, evictions (under mu)
	encHits  atomic.Uint64 // hits, counted without mu
	decHits  atomic.Uint64
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

// take takes one use of e (of size bytes when encrypting) and returns its
// sequence number, the entry's encryption count before it (format 2 makes
// the nonce from it). It needs no lock: the reference is taken first, so a
// concurrent eviction does not clear the key under the caller; then age and
// eviction are checked; then the counters move with atomic adds, so no two
// uses of one entry ever get the same number, and a use that would pass a
// limit is refused (the entry is spent: the next caller evicts it).
func (c *cache) take(e *cacheEntry, size int64, encrypt bool) (int64, bool) {
	e.refs.Add(1)
	if e.evicted.Load() || c.tooOld(e) {
		c.release(e)
		return 0, false
	}
	var seq int64
	if encrypt {
		seq = e.messages.Add(1) - 1
		if seq >= c.cfg.MaxMessages || e.bytes.Add(size) > c.cfg.MaxBytes {
			c.release(e)
			return 0, false
		}
		c.encHits.Add(1)
	} else {
		c.decHits.Add(1)
	}
	return seq, true
}

// lookup is the hit path: it takes one use of a usable entry, or returns nil.
func (c *cache) lookup(key []byte, size int64, encrypt bool) (*cacheEntry, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[string(key)]
	if !ok {
		return nil, 0
	}
	seq, ok := c.take(e, size, encrypt)
	if !ok {
		return nil, 0
	}
	c.lru.MoveToFront(e.elem)
	return e, seq
}

// reuse takes one use of e, which the caller remembered from an earlier
// lookup, if it is still cached and usable, without the lock or the map (the
// hot path of a Column). Every 64th such use refreshes e's LRU position.
func (c *cache) reuse(e *cacheEntry, size int64, encrypt bool) (int64, bool) {
	seq, ok := c.take(e, size, encrypt)
	if ok && e.uses.Add(1)%64 == 0 {
		c.mu.Lock()
		if !e.evicted.Load() {
			c.lru.MoveToFront(e.elem)
		}
		c.mu.Unlock()
	}
	return seq, ok
}

// get returns an entry for key holding one use and the use's sequence
// number, loading the material with one provider call however many
// goroutines miss at once (a waiter loads again only when the loading
// caller's context ended). The caller releases the entry when done with its
// material.
func (c *cache) get(ctx context.Context, key cacheKey, size int64, encrypt bool, load loader) (*cacheEntry, int64, error) {
	counted := false
	for {
		c.mu.Lock()
		if e, ok := c.entries[key]; ok {
			if seq, ok := c.take(e, size, encrypt); ok {
				c.lru.MoveToFront(e.elem)
				if counted { // the use after this caller's own load is not a hit
					if encrypt {
						c.encHits.Add(^uint64(0))
					} else {
						c.decHits.Add(^uint64(0))
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
			if c.now == nil {
				e.timer = time.AfterFunc(c.cfg.MaxAge, func() { e.expired.Store(true) })
			}
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

// tooOld reports whether e has reached MaxAge. With the real clock a timer
// started with the entry sets e.expired when MaxAge has passed, so a use
// reads an atomic flag instead of the clock (reading the clock costs more
// than 100 ns on some hosts, a twentieth of a 4 KiB round trip); the timer
// fires within the runtime's timer latency after MaxAge. A fake clock (tests)
// is read on every use.
func (c *cache) tooOld(e *cacheEntry) bool {
	if c.now != nil {
		return c.now().Sub(e.created) >= c.cfg.MaxAge
	}
	return e.expired.Load()
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
	if e.timer != nil {
		e.timer.Stop()
	}
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
	s.EncryptHits, s.DecryptHits = c.encHits.Load(), c.decHits.Load()
	s.Entries = len(c.entries)
	return s
}
