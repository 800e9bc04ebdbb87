package fulltext

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// filler is text of the given words, padded with words no query uses to
// n words, so that entries compare at equal lengths.
func filler(n int, words ...string) string {
	out := slices.Clone(words)
	for i := len(out); i < n; i++ {
		out = append(out, fmt.Sprintf("pad%c%c", 'a'+i%26, 'a'+i/26%26))
	}
	return strings.Join(out, " ")
}

func TestRelevance(t *testing.T) {
	ix := newTestIndex(t)
	var es []Entry
	// "common" is in every entry but the last two, "zebra" in one.
	for i := range 30 {
		es = append(es, Entry{ID: fmt.Sprintf("f%d", i), Text: filler(20, "common")})
	}
	es = append(es,
		Entry{ID: "rare", Text: filler(20, "zebra")},
		Entry{ID: "title", Title: "Kubernetes operators", Text: filler(20)},
		Entry{ID: "body", Title: "Something else", Text: filler(20, "kubernetes")},
		Entry{ID: "short", Text: filler(5, "walrus")},
		Entry{ID: "long", Text: filler(60, "walrus")},
		Entry{ID: "twice", Text: filler(20, "narwhal", "narwhal")},
		Entry{ID: "once", Text: filler(20, "narwhal")},
		Entry{ID: "both", Text: filler(20, "apple", "banana")},
		Entry{ID: "apple", Text: filler(20, "apple")},
		Entry{ID: "banana", Text: filler(20, "banana")},
	)
	put(t, ix, es...)
	tests := []struct {
		name, query string
		want        []string // the first hits, in order
	}{
		{"a rarer term ranks higher", "common zebra", []string{"rare"}},
		{"a title match outranks a body match", "kubernetes", []string{"title", "body"}},
		{"a shorter text ranks higher", "walrus", []string{"short", "long"}},
		{"more occurrences rank higher", "narwhal", []string{"twice", "once"}},
		{"words are OR-ed, more matched ranks higher", "apple banana", []string{"both"}},
		{"case does not matter", "KUBERNETES", []string{"title", "body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(t, ix, Query{Text: tt.query, K: 50})
			if len(got) < len(tt.want) || !slices.Equal(got[:len(tt.want)], tt.want) {
				t.Errorf("%q: got %v, want it to start %v", tt.query, got, tt.want)
			}
		})
	}
	if got := ids(t, ix, Query{Text: "apple banana", K: 50}); len(got) != 3 {
		t.Errorf("apple banana: got %v, want both, apple, banana", got)
	}
}

func TestStemming(t *testing.T) {
	ix := newTestIndex(t)
	put(t, ix,
		Entry{ID: "runs", Text: "The process runs daily."},
		Entry{ID: "running", Text: "Running the merges takes time."},
		Entry{ID: "connection", Title: "Connections", Text: "Each connected client holds one."},
		Entry{ID: "possessive", Text: "The index's segments."},
	)
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"running", []string{"running", "runs"}},
		{"run", []string{"running", "runs"}},
		{"connect", []string{"connection"}},
		{"indexes", []string{"possessive"}},
	} {
		got := ids(t, ix, Query{Text: tt.query})
		slices.Sort(got)
		slices.Sort(tt.want)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q: got %v, want %v", tt.query, got, tt.want)
		}
	}
}

// TestScore checks a score against BM25 worked by hand.
func TestScore(t *testing.T) {
	ix := newTestIndex(t)
	put(t, ix,
		Entry{ID: "a", Text: "otter otter river"},     // 3 tokens, tf 2
		Entry{ID: "b", Text: "river bank mud stones"}, // 4 tokens
		Entry{ID: "c", Text: "mud"},                   // 1 token
	)
	hits, err := ix.Search(context.Background(), Query{Text: "otter"})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 || hits[0].ID != "a" {
		t.Fatalf("got %v, want a", hits)
	}
	n, df, tf, dl, avgdl := 3.0, 1.0, 2.0, 3.0, 8.0/3
	idf := math.Log(1 + (n-df+0.5)/(df+0.5))
	want := idf * tf * (bm25K1 + 1) / (tf + bm25K1*(1-bm25B+bm25B*dl/avgdl))
	if math.Abs(hits[0].Score-want) > 1e-9 {
		t.Errorf("score %v, want %v", hits[0].Score, want)
	}
}

func TestFilter(t *testing.T) {
	ix := newTestIndex(t)
	put(t, ix,
		Entry{ID: "c1", Text: "merge the segments", Fields: map[string]string{"kind": "chunk", "doc": "d1", "meta.lang": "en"}},
		Entry{ID: "c2", Text: "merge the segments", Fields: map[string]string{"kind": "chunk", "doc": "d2", "meta.lang": "de"}},
		Entry{ID: "m1", Text: "merge the segments", Fields: map[string]string{"kind": "method", "receiver": "Index"}},
		Entry{ID: "e1", Text: "merge the segments", Fields: map[string]string{"kind": "chunk", "doc": "", "meta.lang": "EN"}},
	)
	tests := []struct {
		name   string
		filter map[string]string
		want   []string
	}{
		{"none", nil, []string{"c1", "c2", "e1", "m1"}},
		{"one pair", map[string]string{"kind": "chunk"}, []string{"c1", "c2", "e1"}},
		{"two pairs", map[string]string{"kind": "chunk", "doc": "d2"}, []string{"c2"}},
		{"dotted key", map[string]string{"meta.lang": "en"}, []string{"c1"}},
		{"exact, not analysed", map[string]string{"meta.lang": "EN"}, []string{"e1"}},
		{"empty value", map[string]string{"doc": ""}, []string{"e1"}},
		{"a field no entry has", map[string]string{"colour": "red"}, nil},
		{"a value no entry has", map[string]string{"kind": "poem"}, nil},
		{"pairs that exclude each other", map[string]string{"kind": "method", "doc": "d1"}, nil},
		{"a pair every entry has", map[string]string{"kind": "chunk", "meta.lang": "de"}, []string{"c2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(t, ix, Query{Text: "merging segment", Filter: tt.filter})
			slices.Sort(got)
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

func TestK(t *testing.T) {
	ix := newTestIndex(t)
	put(t, ix, sampleEntries(30)...)
	for _, tt := range []struct{ k, want int }{{0, 10}, {-5, 10}, {1, 1}, {25, 25}, {100, 30}, {math.MaxInt, 30}} {
		if got := len(ids(t, ix, Query{Text: "segment", K: tt.k})); got != tt.want {
			t.Errorf("K %d: got %d hits, want %d", tt.k, got, tt.want)
		}
	}
}

// TestHostileQueries checks that no text is taken for a query language
// and none fails: a query's words are only words.
func TestHostileQueries(t *testing.T) {
	ix := newTestIndex(t)
	put(t, ix, sampleEntries(12)...)
	put(t, ix, Entry{ID: "title", Title: "title", Text: "text about AND and OR", Fields: map[string]string{"kind": "x"}})
	long := strings.Repeat("segment merges ", 1000)
	tests := []struct {
		name, text string
		like       string // the same hits as this plain query; "" for none
	}{
		{"empty", "", ""},
		{"spaces", " \t\n ", ""},
		{"stop words only", "the and of a", ""},
		{"AND", "AND", ""},
		{"punctuation only", `!!!???...,;:'"()[]{}<>/\|-_+=*&^%$#@~` + "`", ""},
		{"quote", `"segment`, "segment"},
		{"quoted phrase", `"segment number"`, "segment number"},
		{"field syntax", "title:segment", "title segment"},
		{"id field", "_id:c1", "c1"},
		{"boolean syntax", "+segment -merges", "segment merges"},
		{"parentheses", "(segment OR chunk) AND NOT merges", "segment chunk merges"},
		{"wildcards", "seg* ch?nk", "seg ch nk"},
		{"fuzzy and boost", "segment~2 chunk^10", "segment 2 chunk 10"},
		{"regexp", "/seg.*/", "seg"},
		{"backslashes", `\\segment\`, "segment"},
		{"invalid UTF-8", "\xff\xfesegment\xc3", "segment"},
		{"NUL bytes", "seg\x00ment\x00", "seg ment"},
		{"emoji and RTL", "🔥 segment \u202e مرحبا", "segment مرحبا"},
		{"combining marks", "se\u0301gment", "se\u0301gment"},
		{"10 KB of words", long, "segment merges"},
		{"64 KB of one word", strings.Repeat("x", 64<<10), ""},
		{"many distinct words", strings.Repeat("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu ", 200) + "segment", ""},
		{"numbers", "3.14 1,000 0x1F", "3.14 1,000 0x1F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := Query{Text: tt.text, K: 100, Snippet: true}
			hits, err := ix.Search(context.Background(), q)
			if err != nil {
				t.Fatalf("search: %v", err)
			}
			for _, h := range hits {
				checkFragment(t, ix, h, tt.text)
			}
			if tt.like == "" && strings.TrimSpace(tt.text) != "" && tt.name != "many distinct words" && len(hits) > 0 {
				t.Errorf("got %d hits, want none", len(hits))
			}
			if tt.like != "" {
				if diff := cmp.Diff(ids(t, ix, Query{Text: tt.text, K: 100}), ids(t, ix, Query{Text: tt.like, K: 100})); diff != "" {
					t.Errorf("hits unlike %q's (-got +want):\n%s", tt.like, diff)
				}
			}
		})
	}
}

func TestQueryTermLimit(t *testing.T) {
	ix := newTestIndex(t)
	var words []string
	for i := range 100 {
		words = append(words, fmt.Sprintf("word%d", i))
	}
	terms := ix.terms(strings.Join(words, " the "))
	if len(terms) != maxQueryTerms || terms[0] != "word0" || terms[maxQueryTerms-1] != fmt.Sprintf("word%d", maxQueryTerms-1) {
		t.Errorf("got %d terms %v, want the first %d", len(terms), terms, maxQueryTerms)
	}
	if got := ix.terms(strings.Repeat("é", maxQueryBytes)); len(got) != 1 {
		t.Errorf("a long word cut at the byte limit: got %v", got)
	}
}

// TestPruningIsExact checks topK's pruned answers against every entry
// scored, on a corpus with Zipf-distributed words.
func TestPruningIsExact(t *testing.T) {
	ix := newTestIndex(t)
	c := newCorpus(7)
	for i := 0; i < 1500; i += 500 {
		put(t, ix, c.entries(i, i+500)...)
	}
	adv, err := ix.bi.Advanced()
	must(t, err)
	r, err := adv.Reader()
	must(t, err)
	defer r.Close()
	ctx := context.Background()
	for q := range 60 {
		words := make([]string, 1+q%5)
		for i := range words {
			words[i] = c.word()
		}
		terms := ix.terms(strings.Join(words, " "))
		var filter map[string]string
		if q%3 == 1 {
			filter = map[string]string{"doc": fmt.Sprintf("d%d", q)}
		}
		if q%3 == 2 {
			filter = map[string]string{"kind": "chunk", "meta.lang": "en"}
		}
		all, err := ix.run(ctx, r, terms, filter, math.MaxInt)
		must(t, err)
		for _, k := range []int{1, 3, 10, 40} {
			got, err := ix.run(ctx, r, terms, filter, k)
			must(t, err)
			want := all[:min(k, len(all))]
			if len(got) != len(want) {
				t.Fatalf("query %v k %d: %d hits, want %d", terms, k, len(got), len(want))
			}
			for i := range got {
				if got[i].doc != want[i].doc || math.Abs(got[i].score-want[i].score) > 1e-9 {
					t.Fatalf("query %v k %d: hit %d is %v, want %v", terms, k, i, got[i], want[i])
				}
			}
		}
	}
}

// cancelLater is a context that reports cancellation from its nth call
// of Err on.
type cancelLater struct {
	context.Context
	n atomic.Int32
}

func (c *cancelLater) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func TestCancel(t *testing.T) {
	ix := newTestIndex(t)
	es := make([]Entry, 3000)
	for i := range es {
		es[i] = Entry{ID: fmt.Sprint(i), Text: "segment"}
	}
	put(t, ix, es...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ix.Search(ctx, Query{Text: "segment"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before: got %v, want context.Canceled", err)
	}
	later := &cancelLater{Context: context.Background()}
	later.n.Store(1) // Search's own first look passes
	if _, err := ix.Search(later, Query{Text: "segment"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled during: got %v, want context.Canceled", err)
	}
}
