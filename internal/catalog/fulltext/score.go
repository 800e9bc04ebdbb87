package fulltext

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/binary"
	"math"
	"slices"

	index "github.com/blevesearch/bleve_index_api"
)

// BM25's parameters, Lucene's and Elasticsearch's defaults.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// done is the document number of a cursor past its last posting.
const done = math.MaxUint64

// A cursor walks the postings of one term in one field, in document order.
type cursor struct {
	r   index.TermFieldReader
	tfd index.TermFieldDoc
	doc uint64 // the current posting's document, or done
	buf [8]byte

	// Scoring (a filter's cursor does not score): a posting with term
	// frequency tf in a field of dl tokens scores
	// weight·tf·(k1+1) / (tf + k + kl·dl), at most ub.
	weight, k, kl, ub float64
}

// newCursor opens the postings of term in field and places the cursor on
// the first. A cursor that scores gets its BM25 weights from n (entries),
// avgdl (the field's average length) and boost.
func newCursor(ctx context.Context, r index.IndexReader, field, term string, scoring bool) (*cursor, error) {
	tfr, err := r.TermFieldReader(ctx, []byte(term), field, scoring, scoring, false)
	if err != nil {
		return nil, err
	}
	c := &cursor{r: tfr}
	if err := c.next(); err != nil {
		tfr.Close()
		return nil, err
	}
	return c, nil
}

// setWeights makes c score by BM25 with n entries, df of which hold the
// term, in a field of average length avgdl, times boost.
func (c *cursor) setWeights(n, df uint64, avgdl, boost float64) {
	idf := math.Log(1 + (float64(n)-float64(df)+0.5)/(float64(df)+0.5))
	c.weight = boost * idf
	c.k = bm25K1 * (1 - bm25B)
	c.kl = bm25K1 * bm25B / max(avgdl, 1)
	c.ub = c.weight * (bm25K1 + 1)
}

func (c *cursor) next() error {
	tfd, err := c.r.Next(&c.tfd)
	c.place(tfd)
	return err
}

// advance moves c to the first posting at or after doc. It never moves
// back: scorch would restart the postings from the beginning.
func (c *cursor) advance(doc uint64) error {
	if c.doc >= doc {
		return nil
	}
	binary.BigEndian.PutUint64(c.buf[:], doc)
	tfd, err := c.r.Advance(c.buf[:], &c.tfd)
	c.place(tfd)
	return err
}

func (c *cursor) place(tfd *index.TermFieldDoc) {
	if tfd == nil {
		c.doc = done
		return
	}
	c.doc = binary.BigEndian.Uint64(tfd.ID)
}

// score is the BM25 score of the current posting.
func (c *cursor) score() float64 {
	tf := float64(c.tfd.Freq)
	// zap keeps a field's length as the norm 1/√length.
	dl := math.Round(1 / (c.tfd.Norm * c.tfd.Norm))
	return c.weight * tf * (bm25K1 + 1) / (tf + c.k + c.kl*dl)
}

// scored is a document and its score.
type scored struct {
	doc   uint64
	score float64
}

// topK returns the k best-scoring documents that have a posting in some
// cursor of cs and in every cursor of filters, best first (ties: the lower
// document number first). It is exact, and prunes by MaxScore (Turtle and
// Flood, 1995): once k documents are in hand, the cursors whose bounds
// together cannot lift a document above the k-th score no longer propose
// documents; they are only consulted, by skipping ahead, for documents
// the others propose. A common word in a query then costs little.
func topK(ctx context.Context, cs, filters []*cursor, k int) ([]scored, error) {
	slices.SortFunc(cs, func(a, b *cursor) int { return cmp.Compare(a.ub, b.ub) })
	// bound[i] is the most the cursors cs[:i] can add to a score.
	bound := make([]float64, len(cs)+1)
	for i, c := range cs {
		bound[i+1] = bound[i] + c.ub
	}
	h := &minHeap{}
	theta := math.Inf(-1) // a document must score above theta to enter
	ess := 0              // cs[ess:] are essential: they propose documents
	for steps := 1; ; steps++ {
		if steps%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		d := uint64(done)
		for _, c := range cs[ess:] {
			d = min(d, c.doc)
		}
		if d == done {
			break
		}
		if len(filters) > 0 {
			fd, err := align(filters, d)
			if err != nil {
				return nil, err
			}
			if fd != d {
				for _, c := range cs[ess:] {
					if err := c.advance(fd); err != nil {
						return nil, err
					}
				}
				continue
			}
		}
		score := 0.0
		for _, c := range cs[ess:] {
			if c.doc == d {
				score += c.score()
				if err := c.next(); err != nil {
					return nil, err
				}
			}
		}
		for i := ess - 1; i >= 0 && score+bound[i+1] > theta; i-- {
			c := cs[i]
			if err := c.advance(d); err != nil {
				return nil, err
			}
			if c.doc == d {
				score += c.score()
			}
		}
		if h.Len() < k {
			heap.Push(h, scored{d, score})
		} else if score > theta {
			(*h)[0] = scored{d, score}
			heap.Fix(h, 0)
		} else {
			continue
		}
		if h.Len() == k {
			theta = (*h)[0].score
			for ess < len(cs) && bound[ess+1] <= theta {
				ess++
			}
		}
	}
	out := []scored(*h)
	slices.SortFunc(out, func(a, b scored) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.doc, b.doc)
	})
	return out, nil
}

// align moves the filter cursors to the first document at or after d that
// all of them hold, and returns it (done: none).
func align(filters []*cursor, d uint64) (uint64, error) {
	for {
		agreed := true
		for _, f := range filters {
			if err := f.advance(d); err != nil {
				return done, err
			}
			if f.doc != d {
				d, agreed = f.doc, false
			}
			if d == done {
				return done, nil
			}
		}
		if agreed {
			return d, nil
		}
	}
}

// minHeap holds the best documents so far, the worst on top: lowest score,
// and of equal scores the later document (documents arrive in order, so an
// equal score never displaces an earlier one).
type minHeap []scored

func (h minHeap) Len() int { return len(h) }
func (h minHeap) Less(i, j int) bool {
	if h[i].score != h[j].score {
		return h[i].score < h[j].score
	}
	return h[i].doc > h[j].doc
}
func (h minHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(x any)   { *h = append(*h, x.(scored)) }
func (h *minHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
