package image

import (
	"container/list"
	"sync"

	"batos/internal/store"
)

// stateCache is a bounded LRU of decoded object states keyed by OID and
// serial, with the encoding of the states this process committed (the
// next Update of such an object compares what it writes with it instead
// of encoding the state again). A revision never changes once committed, so an entry is valid
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
	data  []byte // the state's encoding, or nil
}

func newStateCache(limit int) *stateCache {
	return &stateCache{limit: limit, order: list.New(), items: make(map[cacheKey]*list.Element)}
}

func (c *stateCache) get(k cacheKey) (slots []Slot, data []byte, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return nil, nil, false
	}
	c.order.MoveToFront(e)
	ce := e.Value.(*cacheEntry)
	return ce.slots, ce.data, true
}

// put caches the state of k; data is its encoding, if known, which no
// one may change.
func (c *stateCache) put(k cacheKey, slots []Slot, data []byte) {
	if c.limit <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; ok {
		return
	}
	c.items[k] = c.order.PushFront(&cacheEntry{key: k, slots: slots, data: data})
	for c.order.Len() > c.limit {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}
