package image

import (
	"testing"

	"batos/internal/store"
)

func TestStateCacheShardsKeepTheLimit(t *testing.T) {
	for _, limit := range []int{1, 10, minShardedCache - 1, minShardedCache, minShardedCache + 7} {
		c := newStateCache(limit)
		sum := 0
		for i := range c.shards {
			sum += c.shards[i].limit
		}
		if sum != limit {
			t.Errorf("limit %d: the shards' limits add up to %d", limit, sum)
		}
		for oid := range store.OID(3 * limit) {
			c.put(cacheKey{oid, 1}, nil, nil)
		}
		held := 0
		for i := range c.shards {
			held += c.shards[i].order.Len()
			if len(c.shards[i].items) != c.shards[i].order.Len() {
				t.Fatalf("limit %d: shard %d indexes %d entries of %d", limit, i, len(c.shards[i].items), c.shards[i].order.Len())
			}
		}
		if held != limit {
			t.Errorf("limit %d: %d entries held after %d puts", limit, held, 3*limit)
		}
		// The most recent entries are kept in each shard.
		if _, _, ok := c.get(cacheKey{store.OID(3*limit - 1), 1}); !ok {
			t.Errorf("limit %d: the last entry put is gone", limit)
		}
	}
}

func TestStateCacheReplaceDropsTheSupersededRevision(t *testing.T) {
	c := newStateCache(100)
	old, next := cacheKey{7, 10}, cacheKey{7, 20}
	c.put(old, []Slot{{Name: "v", Value: Int(1)}}, []byte{1})
	c.replace(old, next, []Slot{{Name: "v", Value: Int(2)}}, []byte{2})
	if _, _, ok := c.get(old); ok {
		t.Error("the superseded revision is still cached")
	}
	slots, data, ok := c.get(next)
	if !ok || len(slots) != 1 || !Equal(slots[0].Value, Int(2)) || len(data) != 1 || data[0] != 2 {
		t.Errorf("the new revision: %v %v %v", slots, data, ok)
	}
	// Another object's revision of the same serial is not touched.
	other := cacheKey{8, 10}
	c.put(other, nil, nil)
	c.replace(cacheKey{9, 10}, cacheKey{9, 30}, nil, nil)
	if _, _, ok := c.get(other); !ok {
		t.Error("replace dropped another object's revision")
	}
	// An encoding past the limit is not kept.
	c.put(cacheKey{10, 1}, nil, make([]byte, cachedEncodingLimit+1))
	if _, data, _ := c.get(cacheKey{10, 1}); data != nil {
		t.Errorf("kept a %d-byte encoding", len(data))
	}
}
