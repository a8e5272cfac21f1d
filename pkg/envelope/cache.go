package envelope

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// CacheConfig bounds the data-key cache. Zero fields take the defaults
// shown; MaxAge is required.
//
// Encryption reuses one data key for many messages with the same context
// until it is MaxAge old, has encrypted MaxMessages messages or MaxBytes
// bytes; then a new key is generated. A message larger than MaxBytes gets a
// fresh, uncached key. Decryption caches unwrapped keys for MaxAge, keyed by a
// hash of the provider, key id, wrapped data key AND canonical context, so a
// key cached for one context never serves another. Both kinds share
// MaxEntries (least recently used goes first). Evicted keys are cleared.
type CacheConfig struct {
	MaxAge      time.Duration // required, > 0: how long a data key may be used
	MaxMessages int64         // messages encrypted per data key (default 2^32)
	MaxBytes    int64         // plaintext bytes encrypted per data key (default 2^62)
	MaxEntries  int           // cached data keys, encryption and decryption together (default 1000)
}

// CacheStats are the cache's counters since the Envelope was made.
type CacheStats struct {
	EncryptHits, EncryptMisses uint64 // a miss is one GenerateDataKey
	DecryptHits, DecryptMisses uint64 // a miss is one provider Decrypt
	Evictions                  uint64 // entries removed for age, use limits, size or Close
	Entries                    int    // entries now cached
}

type cacheKey [sha256.Size]byte

type cacheEntry struct {
	key      cacheKey
	m        *keyMaterial
	created  time.Time
	messages int64
	bytes    int64
	refs     int
	evicted  bool
	elem     *list.Element
}

type flight struct {
	done chan struct{}
	err  error
}

type cache struct {
	cfg      CacheConfig
	now      func() time.Time
	mu       sync.Mutex
	entries  map[cacheKey]*cacheEntry
	lru      list.List // front = most recently used; values *cacheEntry
	inflight map[cacheKey]*flight
	st       CacheStats
}

func newCache(cfg CacheConfig, now func() time.Time) (*cache, error) {
	if cfg.MaxAge <= 0 {
		return nil, newErr(ErrMalformed, "new", "CacheConfig.MaxAge must be positive")
	}
	if cfg.MaxMessages < 0 || cfg.MaxBytes < 0 || cfg.MaxEntries < 0 {
		return nil, newErr(ErrMalformed, "new", "CacheConfig limits must not be negative")
	}
	if cfg.MaxMessages == 0 {
		cfg.MaxMessages = 1 << 32
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 1 << 62
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = 1000
	}
	return &cache{cfg: cfg, now: now, entries: map[cacheKey]*cacheEntry{}, inflight: map[cacheKey]*flight{}}, nil
}

// Cache keys: SHA-256 over a domain byte, the provider and length-prefixed
// fields, so encryption and decryption entries can never collide.
func encryptKey(buf []byte, canonCtx []byte) cacheKey {
	buf = append(buf[:0], 'E', 0)
	buf = append(buf, canonCtx...)
	return sha256.Sum256(buf)
}

func decryptKey(buf []byte, provider ProviderID, keyID, edk, canonCtx []byte) cacheKey {
	buf = append(buf[:0], 'D', byte(provider))
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(keyID)))
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(edk)))
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(canonCtx)))
	buf = append(buf, keyID...)
	buf = append(buf, edk...)
	buf = append(buf, canonCtx...)
	return sha256.Sum256(buf)
}

type loader func(ctx context.Context) (*keyMaterial, error)

// usable reports whether e may serve one more use (of size bytes when
// encrypting). Called with c.mu held.
func (c *cache) usable(e *cacheEntry, size int64, encrypt bool) bool {
	if c.now().Sub(e.created) >= c.cfg.MaxAge {
		return false
	}
	if encrypt && (e.messages+1 > c.cfg.MaxMessages || e.bytes+size > c.cfg.MaxBytes) {
		return false
	}
	return true
}

// lookup is the hit path: it takes one use of a usable entry, or returns nil.
func (c *cache) lookup(key cacheKey, size int64, encrypt bool) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !c.usable(e, size, encrypt) {
		return nil
	}
	e.messages++
	e.bytes += size
	e.refs++
	c.lru.MoveToFront(e.elem)
	if encrypt {
		c.st.EncryptHits++
	} else {
		c.st.DecryptHits++
	}
	return e
}

// get returns an entry for key holding one use, loading the material with
// one provider call however many goroutines miss at once. The caller
// releases the entry when done with its material.
func (c *cache) get(ctx context.Context, key cacheKey, size int64, encrypt bool, load loader) (*cacheEntry, error) {
	if e := c.lookup(key, size, encrypt); e != nil {
		return e, nil
	}
	counted := false
	for {
		c.mu.Lock()
		if e, ok := c.entries[key]; ok {
			if c.usable(e, size, encrypt) {
				e.messages++
				e.bytes += size
				e.refs++
				c.lru.MoveToFront(e.elem)
				if !counted {
					if encrypt {
						c.st.EncryptHits++
					} else {
						c.st.DecryptHits++
					}
				}
				c.mu.Unlock()
				return e, nil
			}
			c.evictLocked(e)
		}
		if f, ok := c.inflight[key]; ok {
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, &Error{Kind: ErrProvider, Op: "cache", Detail: "gave up waiting for the data key", Cause: ctx.Err()}
			}
			if f.err != nil && (ctx.Err() != nil || !isContextErr(f.err)) {
				return nil, f.err // the provider's answer holds for every waiter
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
			e := &cacheEntry{key: key, m: m, created: c.now()}
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
			return nil, err
		}
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// evictLocked removes e from the cache; its key is cleared as soon as no
// caller uses it any more.
func (c *cache) evictLocked(e *cacheEntry) {
	if e.evicted {
		return
	}
	e.evicted = true
	delete(c.entries, e.key)
	c.lru.Remove(e.elem)
	c.st.Evictions++
	if e.refs == 0 {
		e.m.destroy()
	}
}

func (c *cache) release(e *cacheEntry) {
	c.mu.Lock()
	e.refs--
	if e.evicted && e.refs == 0 {
		e.m.destroy()
	}
	c.mu.Unlock()
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
