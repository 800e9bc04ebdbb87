package image

import (
	"container/list"
	"sync"

	"batos/internal/store"
)

// stateCache is a bounded LRU of decoded object states keyed by OID and
// serial. The states this process committed keep their encoding when it
// is small (cachedEncodingLimit): the next writable transaction on the
// object compares what it would write with it, where encoding the state
// as loaded again would cost as much as encoding the new one. A revision never changes once committed, so an entry is valid
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

// cachedEncodingLimit is the largest encoding kept beside its state: a
// big state is rare and would double its memory.
const cachedEncodingLimit = 16 << 10

func newStateCache(limit int) *stateCache {
	return &stateCache{limit: limit, order: list.New(), items: make(map[cacheKey]*list.Element)}
}

// get returns the state cached under k and its encoding, if kept.
func (c *stateCache) get(k cacheKey) ([]Slot, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return nil, nil, false
	}
	c.order.MoveToFront(e)
	entry := e.Value.(*cacheEntry)
	return entry.slots, entry.data, true
}

// put caches slots under k, with data, their encoding, which neither the
// cache nor its readers ever change.
func (c *stateCache) put(k cacheKey, slots []Slot, data []byte) {
	c.replace(cacheKey{}, k, slots, data)
}

// replace is put, dropping old first, a revision k supersedes: a
// transaction on an older snapshot that still wants old loads it again,
// and the room goes to current states, which most transactions read.
func (c *stateCache) replace(old, k cacheKey, slots []Slot, data []byte) {
	if c.limit <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old.oid != 0 || old.serial != 0 {
		if e, ok := c.items[old]; ok {
			c.order.Remove(e)
			delete(c.items, old)
		}
	}
	if _, ok := c.items[k]; ok {
		return
	}
	if len(data) > cachedEncodingLimit {
		data = nil
	}
	c.items[k] = c.order.PushFront(&cacheEntry{key: k, slots: slots, data: data})
	for c.order.Len() > c.limit {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}
