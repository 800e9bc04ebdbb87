package vector

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// corpus makes vectors like the embeddings of a catalog's chunks:
// clustered by topic, not uniform. Each is one of the topics' random unit
// centroids plus Gaussian noise of length about 1.2, normalised, so that
// two chunks of a topic have a cosine near 0.4 and of two topics near 0,
// as sentence-embedding models give for related and unrelated text (a
// vector's ten nearest among 100,000 have cosine about 0.49). It is
// deterministic in its seed.
type corpus struct {
	dims      int
	centroids [][]float32 // nil: uniform on the sphere
	sigma     float64
	r         *rand.Rand
}

const testTopics = 200

func clustered(dims int, seed uint64) *corpus {
	c := &corpus{dims: dims, sigma: 1.2 / math.Sqrt(float64(dims)), r: rand.New(rand.NewPCG(seed, 1))}
	c.centroids = make([][]float32, testTopics)
	for i := range c.centroids {
		c.centroids[i] = c.gaussian(1 / math.Sqrt(float64(dims))) // length about 1
	}
	return c
}

// uniform makes vectors uniform on the sphere: no structure for a graph
// to use, the hard case.
func uniform(dims int, seed uint64) *corpus {
	return &corpus{dims: dims, r: rand.New(rand.NewPCG(seed, 2))}
}

func (c *corpus) gaussian(sigma float64) []float32 {
	v := make([]float32, c.dims)
	for i := range v {
		v[i] = float32(c.r.NormFloat64() * sigma)
	}
	return v
}

// next returns a new vector; it is not normalised exactly, so that Add's
// normalisation is exercised.
func (c *corpus) next() []float32 {
	if c.centroids == nil {
		return c.gaussian(1)
	}
	v := c.gaussian(c.sigma)
	ctr := c.centroids[c.r.IntN(len(c.centroids))]
	var sum float64
	for i := range v {
		v[i] += ctr[i]
		sum += float64(v[i]) * float64(v[i])
	}
	s := float32(3 / math.Sqrt(sum)) // any length will do
	for i := range v {
		v[i] *= s
	}
	return v
}

// vague returns a query twice as noisy as the vectors: a topic's, but
// nearer to none of its chunks than they are to each other.
func (c *corpus) vague() []float32 {
	if c.centroids == nil {
		return c.gaussian(1)
	}
	v := c.gaussian(2 * c.sigma)
	ctr := c.centroids[c.r.IntN(len(c.centroids))]
	for i := range v {
		v[i] += ctr[i]
	}
	return v
}

func (c *corpus) take(n int) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		out[i] = c.next()
	}
	return out
}

// build adds vectors under keys 0, 1, 2, ...
func build(tb testing.TB, dims int, vs [][]float32) *Index {
	tb.Helper()
	ix := New(dims)
	for i, v := range vs {
		if err := ix.Add(uint64(i), v); err != nil {
			tb.Fatal(err)
		}
	}
	return ix
}

// check is the index's consistency check, which every test that changes
// an index ends with: keys and live nodes agree, links stay in bounds and
// within capacity, the entry is on the top level, vectors are unit.
func check(tb testing.TB, ix *Index) {
	tb.Helper()
	if err := ix.consistent(); err != nil {
		tb.Fatal(err)
	}
}

func (ix *Index) consistent() error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	g := &ix.g
	dead := 0
	for id := range g.nodes {
		n := &g.nodes[id]
		if n.dead {
			dead++
		} else if got, ok := ix.byKey[n.key]; !ok || got != uint32(id) {
			return fmt.Errorf("live node %d, key %d: byKey has %d, %v", id, n.key, got, ok)
		}
		if len(n.links) == 0 || len(n.links)-1 > g.top {
			return fmt.Errorf("node %d on level %d, top %d", id, len(n.links)-1, g.top)
		}
		for l, ls := range n.links {
			if len(ls) > g.capacity(l) {
				return fmt.Errorf("node %d: %d links on level %d", id, len(ls), l)
			}
			for _, to := range ls {
				if int(to) >= len(g.nodes) || len(g.nodes[to].links) <= l {
					return fmt.Errorf("node %d links to %d on level %d", id, to, l)
				}
			}
		}
		var sum float64
		for _, x := range g.vec(uint32(id)) {
			sum += float64(x) * float64(x)
		}
		if !(math.Abs(sum-1) <= unitSlack) {
			return fmt.Errorf("node %d: squared length %v", id, sum)
		}
	}
	if dead != g.dead || len(g.nodes)-dead != len(ix.byKey) {
		return fmt.Errorf("%d nodes, %d dead (counted %d), %d keys", len(g.nodes), dead, g.dead, len(ix.byKey))
	}
	if len(g.nodes) > 0 && len(g.nodes[g.entry].links)-1 != g.top {
		return fmt.Errorf("entry %d is not on the top level %d", g.entry, g.top)
	}
	return nil
}
