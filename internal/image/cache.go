package image

import (
	"container/list"
	"sync"

	"batos/internal/store"
)

// stateCache is a bounded LRU of decoded object states keyed by OID and
// serial. A revision never changes once committed, so an entry is valid
// for as long as it stays: no invalidation is needed. States in the cache
// are shared and must not be mutated; writable transactions clone them.
type stateCache struct {
	mu    sync.Mutex
	limit int
	order *list.List // front is most recently used
	items map[cacheKey]*list.Element
}

type cacheKey struct {
	oid    store.OID
	serial store.TID
}

type cacheEntry struct {
	key   cacheKey
	slots []Slot
}

func newStateCache(limit int) *stateCache {
	return &stateCache{limit: limit, order: list.New(), items: make(map[cacheKey]*list.Element)}
}

func (c *stateCache) get(k cacheKey) ([]Slot, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).slots, true
}

func (c *stateCache) put(k cacheKey, slots []Slot) {
	if c.limit <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; ok {
		return
	}
	c.items[k] = c.order.PushFront(&cacheEntry{key: k, slots: slots})
	for c.order.Len() > c.limit {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}
