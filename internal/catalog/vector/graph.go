package vector

import (
	"math"
	"slices"
)

// Graph parameters; the package comment says how they were chosen.
const (
	// defaultM is the most links a node keeps on levels above 0; level 0
	// keeps 2·M, as in the HNSW paper.
	defaultM = 16
	// efConstruction is the width of the search that finds a new node's
	// neighbours.
	efConstruction = 100
	// efSearch is the least width of a query's search of level 0.
	efSearch = 128
	// maxLevel caps a node's level. With M = 16, level 12 is drawn about
	// once in 16¹² insertions.
	maxLevel = 12
	// pageBits sets the number of vectors a page of storage holds (1024).
	pageBits = 10
)

// graph is a hierarchical navigable small world graph (Malkov and
// Yashunin, 2016) over unit vectors. Nodes are numbered in insertion
// order; a deleted node stays, marked dead, so that numbers and links
// never change. A graph is not safe for concurrent use; Index guards it.
type graph struct {
	dims  int
	m     int
	efc   int // efConstruction, but for tuning
	nodes []node
	pages [][]float32 // node i's vector: pages[i>>pageBits][(i&mask)·dims:]
	entry uint32      // the node searches start from (when there are nodes)
	top   int         // entry's level, the graph's highest
	dead  int         // dead nodes
}

type node struct {
	key   uint64
	dead  bool
	links [][]uint32 // links[l]: neighbours on level l; the node's level is len(links)−1
}

// vec returns node id's vector.
func (g *graph) vec(id uint32) []float32 {
	p := g.pages[id>>pageBits]
	o := int(id&(1<<pageBits-1)) * g.dims
	return p[o : o+g.dims : o+g.dims]
}

// capacity is the most links a node keeps on level l.
func (g *graph) capacity(l int) int {
	if l == 0 {
		return 2 * g.m
	}
	return g.m
}

// level draws a node's level from u, uniform in [0, 1): level l with
// probability (1−1/M)·M^−l, so each level has about 1/M of the nodes of
// the one below, the paper's choice mL = 1/ln M.
func (g *graph) level(u float64) int {
	l := int(-math.Log(1-u) / math.Log(float64(g.m)))
	return min(l, maxLevel)
}

// kill marks node id deleted.
func (g *graph) kill(id uint32) {
	if !g.nodes[id].dead {
		g.nodes[id].dead = true
		g.dead++
	}
}

// appendVec stores the vector of the node being added. A page grows by
// doubling up to its full size, so a small index stays small, a full page
// has no slack, and growing never copies other pages. (Load allocates
// each page at its final size up front.)
func (g *graph) appendVec(v []float32) {
	page := len(g.nodes) >> pageBits
	if page == len(g.pages) {
		g.pages = append(g.pages, nil)
	}
	p := g.pages[page]
	if len(p)+g.dims > cap(p) {
		np := make([]float32, len(p), min(max(2*cap(p), 4*g.dims), (1<<pageBits)*g.dims))
		copy(np, p)
		p = np
	}
	g.pages[page] = append(p, v...)
}

// insert adds a node for key with unit vector v, whose level is drawn
// from u, and returns its number.
func (g *graph) insert(key uint64, v []float32, u float64, s *scratch) uint32 {
	id := uint32(len(g.nodes))
	lv := g.level(u)
	g.appendVec(v)
	links := make([][]uint32, lv+1)
	for l := range links {
		links[l] = make([]uint32, 0, g.capacity(l))
	}
	g.nodes = append(g.nodes, node{key: key, links: links})
	if id == 0 {
		g.entry, g.top = id, lv
		return id
	}
	v = g.vec(id)
	ep := g.entry
	for l := g.top; l > lv; l-- {
		ep = g.greedy(v, ep, l)
	}
	for l := min(g.top, lv); l >= 0; l-- {
		found := g.searchLevel(v, ep, g.efc, l, false, s)
		slices.SortFunc(found, byDistance)
		// The new node takes M links on every level, leaving level 0 room
		// to gain more from nodes inserted later.
		// link reuses s.sel, so the selection is copied out first.
		s.picked = append(s.picked[:0], g.selectNeighbours(found, g.m, s)...)
		for _, c := range s.picked {
			g.nodes[id].links[l] = append(g.nodes[id].links[l], c.id)
			g.link(c.id, id, c.d, l, s)
		}
		ep = found[0].id
	}
	if lv > g.top {
		g.entry, g.top = id, lv
	}
	return id
}

// link adds a link from node a to node b, at distance d, on level l. A
// full node keeps the capacity(l) best of its links and b, chosen as
// selectNeighbours does.
func (g *graph) link(a, b uint32, d float32, l int, s *scratch) {
	ls := g.nodes[a].links[l]
	if len(ls) < g.capacity(l) {
		g.nodes[a].links[l] = append(ls, b)
		return
	}
	va := g.vec(a)
	cs := s.cands[:0]
	for _, n := range ls {
		cs = append(cs, cand{n, distance(va, g.vec(n))})
	}
	cs = append(cs, cand{b, d})
	slices.SortFunc(cs, byDistance)
	sel := g.selectNeighbours(cs, g.capacity(l), s)
	ls = ls[:0]
	for _, c := range sel {
		ls = append(ls, c.id)
	}
	g.nodes[a].links[l] = ls
	s.cands = cs[:0]
}

// selectNeighbours picks at most m of cs, sorted nearest first, by the
// paper's heuristic (its algorithm 4): a candidate is kept only if it is
// nearer to the new node than to every candidate kept before it. On
// clustered data this keeps links that leave the cluster, which plain
// nearest-m selection drops, and recall with them. The result shares no
// memory with cs.
func (g *graph) selectNeighbours(cs []cand, m int, s *scratch) []cand {
	sel := s.sel[:0]
	for _, c := range cs {
		if len(sel) == m {
			break
		}
		vc, keep := g.vec(c.id), true
		for _, k := range sel {
			if distance(vc, g.vec(k.id)) < c.d {
				keep = false
				break
			}
		}
		if keep {
			sel = append(sel, c)
		}
	}
	s.sel = sel
	return sel
}

// greedy walks level l from ep to the node nearest v that it can reach
// by steps that each get nearer.
func (g *graph) greedy(v []float32, ep uint32, l int) uint32 {
	best := distance(v, g.vec(ep))
	for moved := true; moved; {
		moved = false
		for _, n := range g.nodes[ep].links[l] {
			if d := distance(v, g.vec(n)); d < best {
				best, ep, moved = d, n, true
			}
		}
	}
	return ep
}

// search returns up to ef live nodes near unit vector v (unsorted).
func (g *graph) search(v []float32, ef int, s *scratch) []cand {
	if len(g.nodes) == 0 {
		return nil
	}
	ep := g.entry
	for l := g.top; l > 0; l-- {
		ep = g.greedy(v, ep, l)
	}
	return g.searchLevel(v, ep, ef, 0, true, s)
}

// searchLevel is the paper's beam search of one level (its algorithm 2):
// from ep, it keeps the ef nearest nodes found and expands the nearest
// unexpanded one until that is farther than all ef. With liveOnly, dead
// nodes are expanded but not kept, so the beam holds ef live nodes. The
// result is in s and valid until s is used again.
func (g *graph) searchLevel(v []float32, ep uint32, ef, l int, liveOnly bool, s *scratch) []cand {
	s.seen.reset(len(g.nodes))
	todo, found := s.todo[:0], s.found[:0]
	d := distance(v, g.vec(ep))
	s.seen.add(ep)
	todo.push(cand{ep, d})
	if !liveOnly || !g.nodes[ep].dead {
		found.push(cand{ep, d})
	}
	for len(todo) > 0 {
		c := todo.pop()
		if len(found) >= ef && c.d > found[0].d {
			break
		}
		for _, n := range g.nodes[c.id].links[l] {
			if !s.seen.add(n) {
				continue
			}
			d := distance(v, g.vec(n))
			if len(found) >= ef && d >= found[0].d {
				continue
			}
			todo.push(cand{n, d})
			if liveOnly && g.nodes[n].dead {
				continue
			}
			found.push(cand{n, d})
			if len(found) > ef {
				found.pop()
			}
		}
	}
	s.todo, s.found = todo, found
	return found
}

// cand is a node and its distance to what is searched for.
type cand struct {
	id uint32
	d  float32
}

func byDistance(a, b cand) int {
	switch {
	case a.d < b.d:
		return -1
	case a.d > b.d:
		return 1
	}
	return int(a.id) - int(b.id)
}

// minHeap holds the candidates to expand, nearest on top.
type minHeap []cand

func (h *minHeap) push(c cand) {
	*h = append(*h, c)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if q[p].d <= q[i].d {
			break
		}
		q[p], q[i] = q[i], q[p]
		i = p
	}
}

func (h *minHeap) pop() cand {
	q := *h
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q = q[:n]
	for i := 0; ; {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && q[c+1].d < q[c].d {
			c++
		}
		if q[i].d <= q[c].d {
			break
		}
		q[i], q[c] = q[c], q[i]
		i = c
	}
	*h = q
	return top
}

// maxHeap holds the nearest nodes found, the farthest of them on top.
type maxHeap []cand

func (h *maxHeap) push(c cand) {
	*h = append(*h, c)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if q[p].d >= q[i].d {
			break
		}
		q[p], q[i] = q[i], q[p]
		i = p
	}
}

func (h *maxHeap) pop() cand {
	q := *h
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	*h = q[:n]
	h.down(0)
	return top
}

// down restores the heap order below i after q[i] got nearer.
func (h maxHeap) down(i int) {
	n := len(h)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n && h[c+1].d > h[c].d {
			c++
		}
		if h[i].d >= h[c].d {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// scratch is one search's working memory, reused across searches.
type scratch struct {
	seen   visited
	todo   minHeap
	found  maxHeap
	cands  []cand
	sel    []cand
	picked []cand
}

// visited is a set of node numbers that empties in O(1): a node is in it
// when its mark equals the current epoch.
type visited struct {
	marks []uint32
	epoch uint32
}

func (v *visited) reset(n int) {
	if len(v.marks) < n {
		v.marks = make([]uint32, n+n/4)
		v.epoch = 0
	}
	v.epoch++
	if v.epoch == 0 { // wrapped: old marks could equal the new epoch
		clear(v.marks)
		v.epoch = 1
	}
}

// add puts id in the set and reports whether it was not there.
func (v *visited) add(id uint32) bool {
	if v.marks[id] == v.epoch {
		return false
	}
	v.marks[id] = v.epoch
	return true
}
