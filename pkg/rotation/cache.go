package rotation

import (
	"container/list"
	"sync"
)

// versionCache keeps secret versions by (secret ARN, version id). A version's
// value never changes once written, so a cached value is always right; labels
// are never cached. Bounded by entry count, least recently used first out.
type versionCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of cacheKey, front = most recent
	items map[cacheKey]*list.Element
}

type cacheKey struct{ arn, id string }

type cacheEntry struct {
	key cacheKey
	v   *Version
}

func newVersionCache(max int) *versionCache {
	return &versionCache{max: max, order: list.New(), items: map[cacheKey]*list.Element{}}
}

func (c *versionCache) get(arn, id string) *Version {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[cacheKey{arn, id}]
	if !ok {
		return nil
	}
	c.order.MoveToFront(el)
	v := *el.Value.(*cacheEntry).v
	v.Stages = nil // labels move; never serve them from the cache
	return &v
}

func (c *versionCache) put(arn string, v *Version) {
	if arn == "" || v == nil || v.ID == "" {
		return
	}
	k := cacheKey{arn, v.ID}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		el.Value.(*cacheEntry).v = v
		c.order.MoveToFront(el)
		return
	}
	c.items[k] = c.order.PushFront(&cacheEntry{key: k, v: v})
	for c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).key)
	}
}

func (c *versionCache) forget(arn, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[cacheKey{arn, id}]; ok {
		c.order.Remove(el)
		delete(c.items, cacheKey{arn, id})
	}
}
