package index

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"batos/internal/catalog/fulltext"
	"batos/internal/catalog/vector"
	"batos/internal/store"
)

// Kind says what a search looks for.
type Kind int

const (
	// Chunks of documents (the default).
	Chunks Kind = iota
	// Methods of the image's objects.
	Methods
)

// Query is one search.
type Query struct {
	// Text is the user's words (not a query language).
	Text string
	// Vector is the query's embedding by the index's model, or nil for
	// text search alone.
	Vector []float32
	// K bounds the hits; 10 when zero.
	K    int
	Kind Kind
	// Doc restricts chunks to one document; Meta to documents whose
	// metadata holds every pair.
	Doc  string
	Meta map[string]string
	// NoFragments leaves Hit.Fragment and Hit.Marks empty.
	NoFragments bool
}

// Hit is one result.
type Hit struct {
	// Chunk and Doc name a chunk and its document's ID (Kind Chunks).
	Chunk store.OID
	Doc   string
	// Object and Selector name a method (Kind Methods).
	Object   store.OID
	Selector string
	// Score is the fused score: the sum over the searches that found
	// the hit of 1/(60 + its rank there).
	Score float64
	// TextRank and VectorRank are the hit's 1-based ranks in the
	// full-text and vector searches; 0 where it was not found.
	TextRank, VectorRank int
	// Similarity is the cosine similarity to Query.Vector, when the
	// vector search found the hit.
	Similarity float32
	// Fragment is the passage around the best text match with Marks on
	// the matched words; empty for a hit found by its vector alone.
	Fragment string
	Marks    []fulltext.Span
}

// rrfK is reciprocal rank fusion's constant: 60, as Cormack, Clarke and
// Büttcher found robust, damps the weight of the very top ranks.
const rrfK = 60

// ErrDims is returned for a query vector of another width than the
// index's.
var ErrDims = errors.New("index: query vector has the wrong width")

// Search syncs the indexes and runs q: full text and, when q has a
// vector and the index has vectors, nearest neighbours, fused by
// reciprocal rank fusion.
func (ix *Index) Search(ctx context.Context, q Query) ([]Hit, error) {
	if err := ix.Sync(ctx); err != nil {
		return nil, err
	}
	k := q.K
	if k <= 0 {
		k = 10
	}
	// Each search ranks more than k, so that fusion can promote a hit
	// the other ranked high.
	depth := max(4*k, 40)
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if err := ix.usableLocked(); err != nil {
		return nil, err
	}
	filter := map[string]string{}
	switch q.Kind {
	case Methods:
		filter[fieldKind] = kindMethod
	default:
		filter[fieldKind] = kindChunk
		if q.Doc != "" {
			filter[fieldDoc] = q.Doc
		}
		for k, v := range q.Meta {
			filter[metaPrefix+k] = v
		}
	}
	fused := map[string]*Hit{}
	var order []string
	hit := func(id string) *Hit {
		h, ok := fused[id]
		if !ok {
			h = ix.hitFor(id)
			fused[id] = h
			order = append(order, id)
		}
		return h
	}
	if strings.TrimSpace(q.Text) != "" {
		// Fragments are made below, for the hits kept only.
		ths, err := ix.text.Search(ctx, fulltext.Query{Text: q.Text, K: depth, Filter: filter})
		if err != nil {
			return nil, err
		}
		for i, th := range ths {
			h := hit(th.ID)
			if h == nil {
				continue
			}
			h.TextRank = i + 1
			h.Score += 1 / float64(rrfK+i+1)
		}
	}
	if q.Vector != nil && q.Kind == Chunks && ix.vec != nil {
		if len(q.Vector) != ix.vec.Dims() {
			return nil, fmt.Errorf("%w: %d dimensions, the index's model %s gives %d", ErrDims, len(q.Vector), ix.st.Model, ix.vec.Dims())
		}
		vhs, err := ix.vectorSearch(q, depth)
		if err != nil {
			return nil, err
		}
		for i, vh := range vhs {
			h := hit(chunkID(store.OID(vh.Key)))
			if h == nil {
				continue
			}
			h.VectorRank, h.Similarity = i+1, vh.Score
			h.Score += 1 / float64(rrfK+i+1)
		}
	}
	out := make([]Hit, 0, len(order))
	for _, id := range order {
		if h := fused[id]; h != nil {
			out = append(out, *h)
		}
	}
	slices.SortStableFunc(out, func(a, b Hit) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	if len(out) > k {
		out = out[:k]
	}
	if !q.NoFragments {
		if err := ix.fragments(q.Text, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fragments gives the hits the text search found their Fragment and
// Marks; with the mutex held, shared at least.
func (ix *Index) fragments(text string, hits []Hit) error {
	var ids []string
	var at []int
	for i, h := range hits {
		if h.TextRank == 0 {
			continue // found by its vector alone
		}
		id := chunkID(h.Chunk)
		if h.Selector != "" {
			id = methodID(h.Object, h.Selector)
		}
		ids, at = append(ids, id), append(at, i)
	}
	if len(ids) == 0 {
		return nil
	}
	fs, err := ix.text.Fragments(text, ids)
	if err != nil {
		return err
	}
	for j, f := range fs {
		hits[at[j]].Fragment, hits[at[j]].Marks = f.Fragment, f.Marks
	}
	return nil
}

// vectorSearch returns up to depth nearest chunks that pass q's filters:
// the graph cannot filter, so it asks for more until enough pass or it
// has seen every vector.
func (ix *Index) vectorSearch(q Query, depth int) ([]vector.Hit, error) {
	n := depth
	for {
		vhs, err := ix.vec.Search(q.Vector, n)
		if err != nil {
			return nil, err
		}
		if q.Doc == "" && len(q.Meta) == 0 {
			return vhs, nil
		}
		kept := vhs[:0:0]
		for _, vh := range vhs {
			if ix.passes(store.OID(vh.Key), q) {
				kept = append(kept, vh)
			}
		}
		if len(kept) >= depth || len(vhs) < n || n >= ix.vec.Len() {
			if len(kept) > depth {
				kept = kept[:depth]
			}
			return kept, nil
		}
		n *= 8
	}
}

// passes reports whether chunk belongs to a document q's filters allow.
func (ix *Index) passes(chunk store.OID, q Query) bool {
	id, ok := ix.chunkDoc[chunk]
	if !ok {
		return false
	}
	if q.Doc != "" && id != q.Doc {
		return false
	}
	d := ix.st.Docs[id]
	for k, v := range q.Meta {
		if d.Meta[k] != v {
			return false
		}
	}
	return true
}

// hitFor makes the hit an entry's ID names; nil for an ID the state does
// not know (an entry a crash left behind), which is not shown.
func (ix *Index) hitFor(id string) *Hit {
	switch {
	case strings.HasPrefix(id, "c"):
		n, err := strconv.ParseUint(id[1:], 10, 64)
		if err != nil {
			return nil
		}
		doc, ok := ix.chunkDoc[store.OID(n)]
		if !ok {
			return nil
		}
		return &Hit{Chunk: store.OID(n), Doc: doc}
	case strings.HasPrefix(id, "m"):
		if !ix.methodIDs[id] {
			return nil
		}
		num, sel, ok := strings.Cut(id[1:], ".")
		n, err := strconv.ParseUint(num, 10, 64)
		if !ok || err != nil {
			return nil
		}
		return &Hit{Object: store.OID(n), Selector: sel}
	}
	return nil
}

// Vectors returns the number of chunk vectors indexed: when it is 0, a
// query's vector takes no part in a search.
func (ix *Index) Vectors() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.vec == nil {
		return 0
	}
	return ix.vec.Len()
}

// Docs returns the IDs of the documents indexed, sorted.
func (ix *Index) Docs() []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return slices.Sorted(maps.Keys(ix.st.Docs))
}
