package fulltext

import (
	"context"
	"encoding/binary"
	"fmt"
	"github.com/blevesearch/bleve/v2"
	"runtime/debug"

	index "github.com/blevesearch/bleve_index_api"
)

// Query is a search.
type Query struct {
	// Text is the user's words, not a query language (see the package
	// comment): any string is safe.
	Text string
	// K is the most hits to return; <= 0 means 10.
	K int
	// Filter holds pairs every hit's Fields must have, exactly.
	Filter map[string]string
	// Snippet asks for Hit.Fragment and Hit.Marks.
	Snippet bool
}

// Hit is an entry a search found.
type Hit struct {
	ID    string
	Score float64 // BM25, higher is better (see the package comment)
	// Fragment is a passage of the entry's Text around its best match (at
	// most FragmentBytes, cut at word boundaries, valid UTF-8), and Marks
	// are the byte spans within Fragment of the words that matched, in
	// order, so that a terminal can bold them and a prompt can quote plain
	// text. Both are empty unless Query.Snippet was set.
	Fragment string
	Marks    []Span
}

// Span is the bytes [Start, End) of a string.
type Span struct{ Start, End int }

// Limits on a query's words: a pasted page must not become thousands of
// postings walks.
const (
	maxQueryBytes = 16 << 10
	maxQueryTerms = 32
)

// titleBoost weighs a term's score in Title against its score in Text.
const titleBoost = 2

// Search returns the entries best matching q.Text among those q.Filter
// admits, best first. A query without words has no hits. It honours ctx's
// cancellation while it collects hits.
func (ix *Index) Search(ctx context.Context, q Query) (hits []Hit, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	terms := ix.terms(q.Text)
	if len(terms) == 0 {
		return nil, nil
	}
	k := q.K
	if k <= 0 {
		k = 10
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return nil, ErrClosed
	}
	defer recoverDamage(&err, debug.SetPanicOnFault(true))
	// One snapshot for the whole search: Put and Delete go on beside it.
	r, err := ix.reader()
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer r.Close()
	top, err := ix.run(ctx, r, terms, q.Filter, k)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	var termIndex map[string]int
	if q.Snippet {
		termIndex = indexTerms(terms)
	}
	hits = make([]Hit, len(top))
	for i, s := range top {
		if hits[i], err = ix.hit(r, s, termIndex); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
	}
	return hits, nil
}

// run finds the k best entries for terms that pass filter.
func (ix *Index) run(ctx context.Context, r index.IndexReader, terms []string, filter map[string]string, k int) ([]scored, error) {
	n, err := r.DocCount()
	if err != nil || n == 0 {
		return nil, err
	}
	var cs, fs []*cursor
	defer func() {
		for _, c := range append(cs, fs...) {
			c.r.Close()
		}
	}()
	for key, v := range filter {
		c, err := newCursor(ctx, r, fieldPrefix+key, v, false)
		if err != nil {
			return nil, err
		}
		switch c.r.Count() {
		case 0:
			c.r.Close()
			return nil, nil
		case n:
			// Every entry passes (kind=chunk, say): checking costs more
			// than it filters.
			c.r.Close()
		default:
			fs = append(fs, c)
		}
	}
	st := ix.stats.Load()
	fields := [...]struct {
		name         string
		avgdl, boost float64
	}{
		{fieldTitle, average(st.Title, st.Docs), titleBoost},
		{fieldText, average(st.Text, st.Docs), 1},
	}
	for _, t := range terms {
		for _, f := range fields {
			c, err := newCursor(ctx, r, f.name, t, true)
			if err != nil {
				return nil, err
			}
			if c.doc == done {
				c.r.Close()
				continue
			}
			c.setWeights(n, c.r.Count(), f.avgdl, f.boost)
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil, nil
	}
	return topK(ctx, cs, fs, k)
}

func average(total, n uint64) float64 {
	if n == 0 {
		return 0
	}
	return float64(total) / float64(n)
}

// hit makes the Hit of a found document, with its fragment when
// termIndex (term → its index in the query) is not nil.
func (ix *Index) hit(r index.IndexReader, s scored, termIndex map[string]int) (Hit, error) {
	id := make(index.IndexInternalID, 8)
	binary.BigEndian.PutUint64(id, s.doc)
	ext, err := r.ExternalID(id)
	if err != nil {
		return Hit{}, err
	}
	h := Hit{ID: ext, Score: s.score}
	if termIndex == nil {
		return h, nil
	}
	h.Fragment, h.Marks, err = ix.fragmentOf(r, ext, termIndex)
	return h, err
}

// fragmentOf makes the fragment of entry id for the terms of termIndex;
// none for an entry r does not hold.
func (ix *Index) fragmentOf(r index.IndexReader, id string, termIndex map[string]int) (string, []Span, error) {
	d, err := r.Document(id)
	if err != nil || d == nil {
		return "", nil, err
	}
	var text string
	d.VisitFields(func(f index.Field) {
		if f.Name() == fieldText {
			text = string(f.Value()) // a copy: the value may be the segment's memory
		}
	})
	frag, marks := fragment(text, ix.words(text, termIndex), FragmentBytes)
	return frag, marks, nil
}

// indexTerms maps each of a query's terms to its index in terms.
func indexTerms(terms []string) map[string]int {
	m := make(map[string]int, len(terms))
	for i, t := range terms {
		m[t] = i
	}
	return m
}

// reader opens a reader on the index's current snapshot.
func (ix *Index) reader() (index.IndexReader, error) { return snapshotReader(ix.bi) }

// snapshotReader opens a reader on bi's current snapshot; Put and Delete
// go on beside it.
func snapshotReader(bi bleve.Index) (index.IndexReader, error) {
	adv, err := bi.Advanced()
	if err != nil {
		return nil, err
	}
	return adv.Reader()
}

// Fragments returns the hits of ids with the Fragment and Marks a search
// of text with Query.Snippet gives them (and no score): a caller that
// ranks more hits than it shows makes the fragments of those it shows
// only. An ID the index does not hold gets no fragment.
func (ix *Index) Fragments(text string, ids []string) (hits []Hit, err error) {
	hits = make([]Hit, len(ids))
	for i, id := range ids {
		hits[i].ID = id
	}
	terms := ix.terms(text)
	if len(terms) == 0 || len(ids) == 0 {
		return hits, nil
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return nil, ErrClosed
	}
	defer recoverDamage(&err, debug.SetPanicOnFault(true))
	r, err := ix.reader()
	if err != nil {
		return nil, fmt.Errorf("fragments: %w", err)
	}
	defer r.Close()
	termIndex := indexTerms(terms)
	for i := range hits {
		if hits[i].Fragment, hits[i].Marks, err = ix.fragmentOf(r, hits[i].ID, termIndex); err != nil {
			return nil, fmt.Errorf("fragments: %w", err)
		}
	}
	return hits, nil
}

// terms analyses a query's text as Title and Text were, and returns its
// distinct terms in order, within the limits.
func (ix *Index) terms(text string) []string {
	if len(text) > maxQueryBytes {
		text = text[:runeStart(text, maxQueryBytes)]
	}
	var terms []string
	seen := map[string]bool{}
	for _, tok := range ix.an.Analyze([]byte(valid(text))) {
		t := string(tok.Term)
		if t == "" || seen[t] {
			continue
		}
		seen[t] = true
		terms = append(terms, t)
		if len(terms) == maxQueryTerms {
			break
		}
	}
	return terms
}
