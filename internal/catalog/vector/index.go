package vector

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/coder/hnsw"
)

// Sentinel errors. Callers test for them with errors.Is.
var (
	// ErrDims is returned for a vector the index cannot use: of another
	// width than the index's, empty, with a NaN or infinite component, or
	// all zeros (which has no direction to compare).
	ErrDims = errors.New("vector: wrong width, or not a finite nonzero vector")
	// ErrDamaged is returned by Load for a file that is there but cannot
	// be read as an index: truncated, of another format or version, or
	// failing its checksum or its consistency checks.
	ErrDamaged = errors.New("vector: index file damaged")
)

// Hit is one result of Search or Exact.
type Hit struct {
	Key   uint64  // the caller's key (a chunk's object ID)
	Score float32 // cosine similarity, higher is closer
}

// Index is an approximate nearest-neighbour index of unit vectors by
// cosine similarity, each under a caller's key.
//
// Any number of goroutines may call Search, Exact, Len, Dims and Save at
// once; Add and Delete may be called from other goroutines too, and wait
// for those in progress (a reader-writer lock guards the graph).
type Index struct {
	dims int // fixed at New; read without the lock

	// scratch holds the visited sets and heaps of searches, one per
	// concurrent search (Add's come from here too).
	scratch sync.Pool

	mu    sync.RWMutex
	g     graph
	byKey map[uint64]uint32 // a live key's node
	rng   *rand.Rand        // draws the levels of new nodes

	// Tests lower these to exercise the graph and its rebuilding on
	// small sets.
	scanBelow  int // Search scans up to this many vectors (exactBelow)
	compactMin int // the fewest dead nodes compacting waits for (compactMin)
	ef         int // efSearch, but for tuning
}

// New returns an empty index of vectors of dims components. dims must be
// 1 to 16,384 (4 times the widest common embedding models); New panics
// otherwise.
func New(dims int) *Index {
	if dims < 1 || dims > maxDims {
		panic(fmt.Sprintf("vector.New: %d dimensions, want 1 to %d", dims, maxDims))
	}
	return newIndex(dims, defaultM, 0)
}

// maxDims bounds an index's width; Load refuses a file claiming more.
const maxDims = 1 << 14

func newIndex(dims, m int, seed uint64) *Index {
	return &Index{
		dims:  dims,
		g:     graph{dims: dims, m: m, efc: efConstruction},
		byKey: map[uint64]uint32{},
		// A fixed seed makes a sequence of Adds build the same graph every
		// run, so a recall measured once holds again. An adversary would
		// have to know the seed and choose the order of insertions to make
		// levels degenerate; embeddings of documents are not that.
		rng:        rand.New(rand.NewPCG(seed, 0x6261746f73766563)),
		scanBelow:  exactBelow,
		compactMin: compactMin,
		ef:         efSearch,
	}
}

// Dims returns the width of the index's vectors.
func (ix *Index) Dims() int { return ix.dims }

// Len returns the number of keys in the index.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.byKey)
}

// Add puts v under key, replacing the vector key had. The index keeps a
// normalised copy of v; v is not retained.
func (ix *Index) Add(key uint64, v []float32) error {
	u, err := ix.unit(v)
	if err != nil {
		return fmt.Errorf("add key %d: %w", key, err)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	// A replaced vector is a deleted node plus a new one: the graph never
	// moves a node, so no link needs fixing.
	if old, ok := ix.byKey[key]; ok {
		ix.g.kill(old)
	}
	s := ix.getScratch()
	defer ix.putScratch(s)
	ix.byKey[key] = ix.g.insert(key, u, ix.rng.Float64(), s)
	ix.compactLocked(s)
	return nil
}

// Delete removes key and its vector. It reports whether key was there.
func (ix *Index) Delete(key uint64) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	id, ok := ix.byKey[key]
	if !ok {
		return false
	}
	delete(ix.byKey, key)
	ix.g.kill(id)
	if ix.g.dead > len(ix.byKey) {
		s := ix.getScratch()
		defer ix.putScratch(s)
		ix.compactLocked(s)
	}
	return true
}

// compactLocked rebuilds the graph from the live nodes once deleted nodes
// outnumber them. Deleted nodes stay in the graph as stepping stones
// (searches pass through them but never return them), which keeps the
// graph as well connected as it was built; past half dead, searches waste
// more than half their steps and the memory is mostly garbage. Rebuilding
// costs an insertion per live node, and happens only after at least as
// many deletions, so it adds at most one insertion per deletion over
// time; but the Add or Delete that triggers it holds the lock for as long
// (40 to 50 s for 100,000 vectors of 384 dimensions).
func (ix *Index) compactLocked(s *scratch) {
	if ix.g.dead <= len(ix.byKey) || ix.g.dead < ix.compactMin {
		return
	}
	old := ix.g
	ix.g = graph{dims: old.dims, m: old.m, efc: old.efc}
	for id := range old.nodes {
		n := &old.nodes[id]
		if !n.dead {
			ix.byKey[n.key] = ix.g.insert(n.key, old.vec(uint32(id)), ix.rng.Float64(), s)
		}
	}
}

// compactMin is the fewest deleted nodes worth a rebuild: under it, a
// few dead stepping stones cost less than rebuilding.
const compactMin = 256

// Search returns the (about) k vectors closest to q, best first. It is
// approximate: a close vector may be missing, and the next one in its
// place (the package comment gives the measured recall). It returns
// min(k, Len()) hits.
func (ix *Index) Search(q []float32, k int) ([]Hit, error) {
	u, err := ix.unit(q)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	if k <= 0 {
		return nil, nil
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	live := len(ix.byKey)
	// A scan beats the graph when it would visit a good part of the
	// vectors anyway: for few vectors, or for a k near their number.
	if live <= ix.scanBelow || (ix.scanBelow > 0 && k >= live/exactFraction) {
		return ix.exactLocked(u, k), nil
	}
	s := ix.getScratch()
	defer ix.putScratch(s)
	found := ix.g.search(u, max(ix.ef, k), s)
	if len(found) < min(k, live) {
		// The graph holds every live node, but a node whose in-links were
		// all pruned is unreachable; a complete answer beats a fast one.
		return ix.exactLocked(u, k), nil
	}
	return hits(&ix.g, found, k), nil
}

// exactBelow is the number of vectors up to which Search scans them all:
// at 384 dimensions a scan of 1,000 costs about what a graph search at
// efSearch 64 does, 75µs (measured).
const exactBelow = 1000

// exactFraction makes Search scan when k is at least 1/exactFraction of
// the vectors: the graph search visits several times k nodes.
const exactFraction = 8

// Exact returns the k vectors closest to q, best first, by comparing q
// with every vector. It sees the same vectors as Search, so their results
// can be compared to measure Search's recall.
func (ix *Index) Exact(q []float32, k int) ([]Hit, error) {
	u, err := ix.unit(q)
	if err != nil {
		return nil, fmt.Errorf("exact search: %w", err)
	}
	if k <= 0 {
		return nil, nil
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.exactLocked(u, k), nil
}

func (ix *Index) exactLocked(u []float32, k int) []Hit {
	var h maxHeap // the k best so far, worst on top
	for id := range ix.g.nodes {
		if ix.g.nodes[id].dead {
			continue
		}
		d := distance(u, ix.g.vec(uint32(id)))
		if len(h) < k {
			h.push(cand{uint32(id), d})
		} else if d < h[0].d {
			h[0] = cand{uint32(id), d}
			h.down(0)
		}
	}
	return hits(&ix.g, h, k)
}

// hits sorts found best first and keeps k; equal scores go by key, so
// that Search and Exact order ties alike.
func hits(g *graph, found []cand, k int) []Hit {
	out := make([]Hit, len(found))
	for i, c := range found {
		out[i] = Hit{Key: g.nodes[c.id].key, Score: 1 - c.d}
	}
	slices.SortFunc(out, func(a, b Hit) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	})
	return out[:min(k, len(out))]
}

// unit checks v and returns a unit-length copy of it.
func (ix *Index) unit(v []float32) ([]float32, error) {
	if len(v) != ix.dims {
		return nil, fmt.Errorf("%w: %d components, the index has %d", ErrDims, len(v), ix.dims)
	}
	// The norm is summed in float64: squares of large float32s overflow
	// float32, and the sum of many small ones loses precision.
	var sum float64
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("%w: component %d is %v", ErrDims, i, x)
		}
		sum += float64(x) * float64(x)
	}
	if sum == 0 {
		return nil, fmt.Errorf("%w: all components are zero", ErrDims)
	}
	norm := math.Sqrt(sum)
	u := make([]float32, len(v))
	for i, x := range v {
		u[i] = float32(float64(x) / norm)
	}
	return u, nil
}

// distance is the cosine distance, 1 − cosine similarity, of unit
// vectors. It is coder/hnsw's, which computes it with SIMD instructions
// (github.com/viterin/vek) about 4.5 times as fast as a plain Go loop on
// 384 dimensions; a search spends most of its time here.
func distance(a, b []float32) float32 { return hnsw.CosineDistance(a, b) }

func (ix *Index) getScratch() *scratch {
	if s, ok := ix.scratch.Get().(*scratch); ok {
		return s
	}
	return &scratch{}
}

func (ix *Index) putScratch(s *scratch) { ix.scratch.Put(s) }
