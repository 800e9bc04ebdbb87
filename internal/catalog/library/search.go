package library

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"batos/internal/catalog"
	"batos/internal/catalog/fulltext"
	"batos/internal/catalog/index"
	"batos/internal/image"
	"batos/internal/store"
)

// Query is a search of the catalog.
type Query struct {
	Text string
	// K bounds the hits; DefaultK when zero, MaxK at most.
	K int
	// Methods searches the image's methods instead of the documents.
	Methods bool
	// Doc restricts the search to one document (an ID or a path); Meta
	// to documents whose metadata holds every pair.
	Doc  string
	Meta map[string]string
	// NoFragments leaves Hit.Fragment and Hit.Marks empty, for a caller
	// that reads each hit's text or source itself.
	NoFragments bool
}

// DefaultK and MaxK bound a search's hits.
const (
	DefaultK = 10
	MaxK     = 1000
)

// MaxQueryBytes bounds a query's text: a query is words, not a document.
const MaxQueryBytes = 8 << 10

// ErrQuery is returned for a query that cannot be run as given.
var ErrQuery = errors.New("catalog: bad query")

// Result is a search's answer.
type Result struct {
	// Mode is ModeHybrid when the vector search took part, else
	// ModeText; Note says why not, when it could have.
	Mode string
	Note string
	Hits []Hit
}

// Hit is one passage or method found, read from the image.
type Hit struct {
	Score                float64
	TextRank, VectorRank int
	Similarity           float32
	// A chunk: its object, its document, its place and text.
	Chunk    store.OID
	Doc      *catalog.Doc
	Position int
	Text     string
	Span     catalog.Span
	// A method: the object holding it, named by a root name where one
	// names it, its selector and source.
	Object   store.OID
	Receiver string
	Selector string
	Source   string
	// Fragment is the text around the best match, with Marks on the
	// matched words; for a hit found by its vector alone, the start of
	// the text and no marks.
	Fragment string
	Marks    []fulltext.Span
}

// Cite is how a prompt or a listing names a chunk: the document's title
// and the chunk's position, "rivers.txt#3".
func (h *Hit) Cite() string {
	if h.Doc == nil {
		return h.Receiver + "." + h.Selector
	}
	return fmt.Sprintf("%s#%d", h.Doc.Title, h.Position)
}

func (q *Query) check() (int, error) {
	if strings.TrimSpace(q.Text) == "" {
		return 0, fmt.Errorf("%w: the query has no words", ErrQuery)
	}
	if len(q.Text) > MaxQueryBytes {
		return 0, fmt.Errorf("%w: the query is %d bytes, over the limit of %d", ErrQuery, len(q.Text), MaxQueryBytes)
	}
	switch {
	case q.K < 0 || q.K > MaxK:
		return 0, fmt.Errorf("%w: k is %d, want 1 to %d", ErrQuery, q.K, MaxK)
	case q.K == 0:
		return DefaultK, nil
	}
	return q.K, nil
}

// Search runs q, embedding its text for the vector search when there is
// an embedding model (a failed embedding falls back to text search and
// says so in Result.Note).
func (l *Library) Search(ctx context.Context, q Query) (*Result, error) {
	k, err := q.check()
	if err != nil {
		return nil, err
	}
	res := &Result{Mode: ModeText, Note: l.Note()}
	var vec []float32
	if l.emb != nil && !q.Methods {
		vecs, s, err := l.emb.Embed(ctx, []string{q.Text})
		l.pend(s.Requests, s.PromptTokens, err != nil)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			res.Note = fmt.Sprintf("embedding the query failed, so search is by text alone: %v", err)
		} else {
			vec, res.Mode = vecs[0], ModeHybrid
		}
	}
	err = l.db.View(ctx, func(tx *image.Tx) error {
		return l.search(ctx, tx, q, k, vec, res)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// SearchIn runs q for code running in tx (a Starlark method): it makes
// no network call, so the vector search takes part only when the query's
// embedding is already cached; hits are read in tx, so a method sees
// passages as its own snapshot has them.
func (l *Library) SearchIn(ctx context.Context, tx *image.Tx, q Query) (*Result, error) {
	k, err := q.check()
	if err != nil {
		return nil, err
	}
	res := &Result{Mode: ModeText, Note: l.Note()}
	var vec []float32
	if l.emb != nil && !q.Methods {
		if v, ok := l.emb.Cached(q.Text); ok {
			vec, res.Mode = v, ModeHybrid
		} else {
			res.Note = "the query's embedding is not cached and methods make no network calls: search is by text alone"
		}
	}
	if err := l.search(ctx, tx, q, k, vec, res); err != nil {
		return nil, err
	}
	return res, nil
}

func (l *Library) search(ctx context.Context, tx *image.Tx, q Query, k int, vec []float32, res *Result) error {
	iq := index.Query{Text: q.Text, Vector: vec, Meta: q.Meta, NoFragments: q.NoFragments}
	if q.Methods {
		iq.Kind = index.Methods
	}
	if q.Doc != "" {
		id, err := resolveDoc(tx, q.Doc)
		if err != nil {
			return err
		}
		iq.Doc = id
	}
	// A few more than k: hits the snapshot does not have are dropped.
	iq.K = k + k/4 + 2
	hits, err := l.ix.Search(ctx, iq)
	if errors.Is(err, index.ErrDims) {
		// Vectors of another width than the index's: the model changed
		// under a running index; text still answers.
		iq.Vector, res.Mode = nil, ModeText
		res.Note = err.Error()
		hits, err = l.ix.Search(ctx, iq)
	}
	if err != nil {
		return err
	}
	if iq.Vector != nil && l.ix.Vectors() == 0 {
		// The documents were added without the model (or before it):
		// there was nothing to compare the query's vector with.
		res.Mode = ModeText
		res.Note = fmt.Sprintf("no chunk is embedded by %s yet, so search is by text alone (add the documents again to embed them)", l.EmbedModel())
	}
	var labels map[store.OID]string
	for _, h := range hits {
		if len(res.Hits) == k {
			break
		}
		found := Hit{Score: h.Score, TextRank: h.TextRank, VectorRank: h.VectorRank, Similarity: h.Similarity, Fragment: h.Fragment, Marks: h.Marks}
		if h.Selector != "" {
			o, err := tx.Object(h.Object)
			if err != nil {
				continue
			}
			v, ok := o.Peek(h.Selector)
			m, isMethod := v.(*image.Method)
			if !ok || !isMethod {
				continue
			}
			if labels == nil {
				labels = tx.NamesByOID()
			}
			found.Object, found.Selector, found.Source = h.Object, h.Selector, m.Source
			found.Receiver = labels[h.Object]
			if found.Receiver == "" {
				found.Receiver = h.Object.String()
			}
		} else {
			d, p, err := catalog.PassageAt(tx, h.Chunk)
			if err != nil {
				// Not in this snapshot's catalog: added after it, or an
				// entry a crash left in the index.
				continue
			}
			found.Chunk, found.Doc, found.Position, found.Text, found.Span = p.OID, d, p.Position, p.Text, p.Span
			if found.Fragment == "" && !q.NoFragments {
				found.Fragment = lead(p.Text, 240)
			}
		}
		res.Hits = append(res.Hits, found)
	}
	return nil
}

// lead is the start of text, cut at a word boundary within n bytes.
func lead(text string, n int) string {
	if len(text) <= n {
		return text
	}
	cut := strings.LastIndexByte(text[:n], ' ')
	if cut <= 0 {
		cut = n
		for cut > 0 && !isRuneStart(text[cut]) {
			cut--
		}
	}
	return text[:cut] + " …"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
