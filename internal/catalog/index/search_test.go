package index_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/catalog"
	"batos/internal/catalog/index"
	"batos/internal/llm/llmtest"
)

// TestSearchFilters restricts text, vector and hybrid searches to a
// document and to metadata.
func TestSearchFilters(t *testing.T) {
	f := newFixture(t)
	f.addEmbedded("a.txt", sentences("river", 6), map[string]string{"lang": "en", "shelf": "1"}, model)
	f.addEmbedded("b.txt", sentences("river", 6), map[string]string{"lang": "fr", "shelf": "1"}, model)
	f.addEmbedded("c.txt", sentences("river", 6), map[string]string{"lang": "en", "shelf": "2"}, model)
	f.add("d.txt", sentences("river", 6), map[string]string{"lang": "en", "shelf": "2"}) // no vectors
	ix, _ := f.open(withModel)
	vec := llmtest.WordVector("river ways", dims)
	for _, tt := range []struct {
		name string
		doc  string
		meta map[string]string
		want []string // sorted
	}{
		{"none", "", nil, []string{"a.txt", "b.txt", "c.txt", "d.txt"}},
		{"doc", catalog.IDOf("b.txt"), nil, []string{"b.txt"}},
		{"one pair", "", map[string]string{"lang": "en"}, []string{"a.txt", "c.txt", "d.txt"}},
		{"two pairs", "", map[string]string{"lang": "en", "shelf": "2"}, []string{"c.txt", "d.txt"}},
		{"doc and pair", catalog.IDOf("a.txt"), map[string]string{"shelf": "1"}, []string{"a.txt"}},
		{"doc and another pair", catalog.IDOf("a.txt"), map[string]string{"shelf": "2"}, nil},
		{"no such value", "", map[string]string{"lang": "de"}, nil},
		{"no such key", "", map[string]string{"colour": "en"}, nil},
		{"no such doc", "d0000000000000000", nil, nil},
	} {
		for _, mode := range []struct {
			name string
			q    index.Query
		}{
			{"text", index.Query{Text: "river"}},
			{"vector", index.Query{Vector: vec}},
			{"hybrid", index.Query{Text: "river", Vector: vec}},
		} {
			t.Run(tt.name+"/"+mode.name, func(t *testing.T) {
				q := mode.q
				q.Doc, q.Meta, q.K = tt.doc, tt.meta, 100
				hits := search(t, ix, q)
				got := docsFound(hits, "a.txt", "b.txt", "c.txt", "d.txt")
				slices.Sort(got)
				want := tt.want
				if mode.name == "vector" {
					// d.txt has no vectors: the vector search alone
					// cannot find it.
					want = slices.DeleteFunc(slices.Clone(want), func(s string) bool { return s == "d.txt" })
				}
				if !cmp.Equal(got, want) {
					t.Errorf("found %v, want %v", got, want)
				}
				for _, h := range hits {
					if mode.name != "text" && h.VectorRank == 0 && h.Doc != catalog.IDOf("d.txt") {
						t.Errorf("%s hit %+v not found by its vector", mode.name, h)
					}
					if mode.name == "vector" && (h.TextRank != 0 || h.Fragment != "") {
						t.Errorf("vector hit %+v has a text rank or fragment", h)
					}
				}
			})
		}
	}
}

// TestVectorFilterFetchesMore: when the filter admits only a document
// far down the vector ranking, past the depth a search asks the graph
// for, the search asks for more until it finds it.
func TestVectorFilterFetchesMore(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		f.addEmbedded(fmt.Sprintf("near%d.txt", i), sentences("river", 30), map[string]string{"shelf": "common"}, model)
	}
	far := f.addEmbedded("far.txt", "Volcanoes erupt with lava and ash. Magma rises from the mantle below.", map[string]string{"shelf": "rare"}, model)
	ix, _ := f.open(withModel)
	st, err := ix.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	q := index.Query{Vector: llmtest.WordVector("river ways", dims), K: 1}
	// The premise: far.txt's chunk is last of many more than a search's
	// depth (max(4k, 40)).
	all := search(t, ix, index.Query{Vector: q.Vector, K: 1000})
	if st.Vectors <= 60 || len(all) != st.Vectors || all[len(all)-1].Chunk != far.Chunks[0] {
		t.Fatalf("premise: %d vectors, %d hits, the last %+v; want over 60 and far.txt's last", st.Vectors, len(all), all[len(all)-1])
	}
	for _, filter := range []index.Query{
		{Meta: map[string]string{"shelf": "rare"}},
		{Doc: catalog.IDOf("far.txt")},
	} {
		q.Meta, q.Doc = filter.Meta, filter.Doc
		hits := search(t, ix, q)
		if len(hits) != 1 || hits[0].Chunk != far.Chunks[0] || hits[0].VectorRank != 1 {
			t.Errorf("filter %+v: hits %+v, want far.txt's chunk, first by vector", filter, hits)
		}
	}
}

// TestFusion: a chunk found by both searches ranks above one the text
// search ranks first but the vector search does not find.
func TestFusion(t *testing.T) {
	f := newFixture(t)
	both := f.addEmbedded("both.txt", "The heron waits by the reeds. Frogs hide in the mud below the reeds.", nil, model)
	// Text only: not embedded, and the query's word twice and in the title.
	textOnly := f.add("heron.txt", "Heron after heron, the heron colony nests.", nil)
	f.addEmbedded("other.txt", "Cities hum with traffic and neon lights all night.", nil, model)
	ix, _ := f.open(withModel)
	q := index.Query{Text: "heron", Vector: llmtest.WordVector("The heron waits by the reeds. Frogs hide in the mud below the reeds.", dims)}

	text := search(t, ix, index.Query{Text: q.Text})
	if len(text) != 2 || text[0].Chunk != textOnly.Chunks[0] || text[1].Chunk != both.Chunks[0] {
		t.Fatalf("premise: text search found %+v, want heron.txt's chunk first, then both.txt's", text)
	}
	hits := search(t, ix, q)
	if len(hits) != 3 {
		t.Fatalf("hybrid search found %d hits, want 3: %+v", len(hits), hits)
	}
	if h := hits[0]; h.Chunk != both.Chunks[0] || h.TextRank != 2 || h.VectorRank != 1 || h.Similarity < 0.99 || h.Fragment == "" {
		t.Errorf("first hit %+v, want both.txt's chunk, second by text and first by vector", h)
	}
	if h := hits[1]; h.Chunk != textOnly.Chunks[0] || h.TextRank != 1 || h.VectorRank != 0 {
		t.Errorf("second hit %+v, want heron.txt's chunk, first by text, not by vector", h)
	}
	if h := hits[2]; h.TextRank != 0 || h.VectorRank != 2 || h.Fragment != "" {
		t.Errorf("third hit %+v, want other.txt's, by vector alone", h)
	}
	want := []float64{1.0/62 + 1.0/61, 1.0 / 61, 1.0 / 62}
	for i, h := range hits {
		if d := h.Score - want[i]; d > 1e-12 || d < -1e-12 {
			t.Errorf("hit %d scored %v, want %v", i, h.Score, want[i])
		}
	}
	if hits := search(t, ix, index.Query{Text: q.Text, Vector: q.Vector, K: 1}); len(hits) != 1 || hits[0].Chunk != both.Chunks[0] {
		t.Errorf("k=1: %+v", hits)
	}
	// Without fragments, the same hits in the same order.
	q.NoFragments = true
	bare := search(t, ix, q)
	for i := range hits {
		hits[i].Fragment, hits[i].Marks = "", nil
	}
	if diff := cmp.Diff(bare, hits); diff != "" {
		t.Errorf("without fragments (-got +want):\n%s", diff)
	}
}

// TestMethodSearch finds methods by the words of their selectors and
// sources, apart from chunks, until they are deleted.
func TestMethodSearch(t *testing.T) {
	f := newFixture(t)
	f.add("notes.txt", "We describe the world as we find it. Describe it again.", nil)
	f.setMethod("helper", "describe_yourself", "def describe_yourself(self):\n    return 'a teapot'")
	f.setMethod("genesis", "count_sheep", "def count_sheep(self, n):\n    return n + 1")
	ix, _ := f.open(nil)
	helper, genesis := f.oidOf("helper"), f.oidOf("genesis")
	for _, tt := range []struct {
		words string
		want  []string
	}{
		{"describe", []string{methodName(helper, "describe_yourself")}},
		{"describe_yourself", []string{methodName(helper, "describe_yourself")}},
		{"teapot", []string{methodName(helper, "describe_yourself")}},
		{"sheep", []string{methodName(genesis, "count_sheep")}},
		{"genesis", []string{methodName(genesis, "count_sheep")}}, // the receiver's name
		{"world", nil},
	} {
		if got := methodsFound(search(t, ix, index.Query{Text: tt.words, Kind: index.Methods})); !cmp.Equal(got, tt.want) {
			t.Errorf("methods %q: found %v, want %v", tt.words, got, tt.want)
		}
	}
	for _, h := range search(t, ix, index.Query{Text: "describe"}) {
		if h.Selector != "" || h.Doc != catalog.IDOf("notes.txt") {
			t.Errorf("a chunk search found %+v", h)
		}
	}
	// A vector in a method query is ignored: methods have none.
	hits := search(t, ix, index.Query{Text: "describe", Kind: index.Methods, Vector: llmtest.WordVector("describe", dims)})
	if len(hits) != 1 || hits[0].VectorRank != 0 {
		t.Errorf("method search with a vector: %+v", hits)
	}

	f.deleteSlot("helper", "describe_yourself")
	if hits := search(t, ix, index.Query{Text: "describe teapot", Kind: index.Methods}); len(hits) != 0 {
		t.Errorf("after the delete, found %+v", hits)
	}
	f.checkConsistent(ix, nil, probe{"methods", index.Query{Text: "describe sheep teapot", Kind: index.Methods}})
}

func TestQueryVectorWidth(t *testing.T) {
	f := newFixture(t)
	f.addEmbedded("a.txt", sentences("river", 3), nil, model)
	ix, _ := f.open(withModel)
	_, err := ix.Search(context.Background(), index.Query{Text: "river", Vector: []float32{1, 0, 0}})
	if !errors.Is(err, index.ErrDims) {
		t.Errorf("a query vector of 3 dimensions: %v, want ErrDims", err)
	}
}

// TestSearchConcurrentWithCommits searches and syncs from other
// goroutines while commits are made (run it with -race): every search
// made after a commit has returned sees it.
func TestSearchConcurrentWithCommits(t *testing.T) {
	f := newFixture(t)
	f.addEmbedded("base.txt", sentences("river", 6), nil, model)
	ix, _ := f.open(withModel)
	ctx := context.Background()
	const docs = 10
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	done := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := ix.Search(ctx, index.Query{Text: "river word", Vector: llmtest.WordVector("river", dims)}); err != nil {
					errs <- err
					return
				}
				if err := ix.Sync(ctx); err != nil {
					errs <- err
					return
				}
				if _, err := ix.Stats(ctx); err != nil {
					errs <- err
					return
				}
				ix.Docs()
			}
		})
	}
	for i := range docs {
		word := fmt.Sprintf("word%d", i)
		f.addEmbedded(word+".txt", sentences(word, 3), nil, model)
		f.setMethod("helper", word+"_now", "def "+word+"_now(self):\n    return 1")
		if got := docsFound(search(t, ix, index.Query{Text: word}), word+".txt"); !cmp.Equal(got, []string{word + ".txt"}) {
			t.Errorf("right after adding %s.txt, found %v", word, got)
		}
		if got := methodsFound(search(t, ix, index.Query{Text: word, Kind: index.Methods})); len(got) != 1 {
			t.Errorf("right after setting %s_now, found %v", word, got)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(ix.Docs()); got != 1+docs {
		t.Errorf("%d documents indexed, want %d", got, 1+docs)
	}
	f.checkConsistent(ix, withModel, probe{"words", index.Query{Text: "word0 word9 river", Vector: llmtest.WordVector("word2", dims)}},
		probe{"methods", index.Query{Text: "word3 word7", Kind: index.Methods}})
}
