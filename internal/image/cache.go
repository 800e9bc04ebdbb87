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
//
// The states this process committed keep their encoding when it is small
// (cachedEncodingLimit): the next writable transaction on the object
// compares what it would write with it, where encoding the state as
// loaded again would cost as much as encoding the new one.
//
// A big cache is split by OID into shards, each an LRU of its share of
// the limit under its own lock: every transaction's every load takes a
// lock, and with one lock senders on different cores would queue for it.
type stateCache struct {
	shards []cacheShard
}

type cacheShard struct {
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

// cacheShards is how many shards a cache of at least minShardedCache
// entries has; a smaller one has one, an exact LRU.
const (
	cacheShards     = 16
	minShardedCache = 16 * 1024
)

func newStateCache(limit int) *stateCache {
	n := 1
	if limit >= minShardedCache {
		n = cacheShards
	}
	c := &stateCache{shards: make([]cacheShard, n)}
	for i := range c.shards {
		// The shards' limits add up to limit.
		c.shards[i] = cacheShard{limit: limit / n, order: list.New(), items: make(map[cacheKey]*list.Element)}
		if i < limit%n {
			c.shards[i].limit++
		}
	}
	return c
}

// shard is the shard that caches oid's revisions.
func (c *stateCache) shard(oid store.OID) *cacheShard {
	return &c.shards[uint64(oid)%uint64(len(c.shards))]
}

// get returns the state cached under k and its encoding, if kept.
func (c *stateCache) get(k cacheKey) ([]Slot, []byte, bool) {
	s := c.shard(k.oid)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.items[k]
	if !ok {
		return nil, nil, false
	}
	s.order.MoveToFront(e)
	entry := e.Value.(*cacheEntry)
	return entry.slots, entry.data, true
}

// put caches slots under k, with data, their encoding, which neither the
// cache nor its readers ever change.
func (c *stateCache) put(k cacheKey, slots []Slot, data []byte) {
	c.replace(cacheKey{}, k, slots, data)
}

// replace is put, dropping old first, a revision of the same object k
// supersedes: a transaction on an older snapshot that still wants old
// loads it again, and the room goes to current states, which most
// transactions read.
func (c *stateCache) replace(old, k cacheKey, slots []Slot, data []byte) {
	s := c.shard(k.oid)
	if s.limit <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old.oid == k.oid && old.serial != 0 {
		if e, ok := s.items[old]; ok {
			s.order.Remove(e)
			delete(s.items, old)
		}
	}
	if _, ok := s.items[k]; ok {
		return
	}
	if len(data) > cachedEncodingLimit {
		data = nil
	}
	s.items[k] = s.order.PushFront(&cacheEntry{key: k, slots: slots, data: data})
	for s.order.Len() > s.limit {
		last := s.order.Back()
		s.order.Remove(last)
		delete(s.items, last.Value.(*cacheEntry).key)
	}
}
