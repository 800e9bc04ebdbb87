package fulltext

import (
	"context"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	index "github.com/blevesearch/bleve_index_api"
)

// analyzerOnly is an Index with nothing but its analysis, for testing
// fragments without an index.
func analyzerOnly(tb testing.TB) *Index {
	tb.Helper()
	an, err := newAnalyzer()
	if err != nil {
		tb.Fatal(err)
	}
	return &Index{an: an}
}

// snippet computes the fragment of text for query as Search does.
func snippet(ix *Index, text, query string) (string, []Span) {
	terms := ix.terms(query)
	ti := map[string]int{}
	for i, t := range terms {
		ti[t] = i
	}
	return fragment(text, ix.words(text, ti), FragmentBytes)
}

// marked returns the marked substrings of a fragment.
func marked(frag string, marks []Span) []string {
	var out []string
	for _, m := range marks {
		out = append(out, frag[m.Start:m.End])
	}
	return out
}

// checkFragmentOf checks a fragment of text and its marks for query: a
// trimmed substring of text within the budget, valid UTF-8 when text is,
// cut at word boundaries; marks in order, each a whole word whose term is
// one of the query's, and every such word marked.
func checkFragmentOf(tb testing.TB, ix *Index, text, frag string, marks []Span, query string) {
	tb.Helper()
	if len(frag) > FragmentBytes {
		tb.Errorf("fragment of %d bytes, over %d", len(frag), FragmentBytes)
	}
	at := strings.Index(text, frag)
	if at < 0 {
		tb.Fatalf("fragment %q is not in the text", frag)
	}
	if utf8.ValidString(text) && !utf8.ValidString(frag) {
		tb.Errorf("fragment %q is not valid UTF-8", frag)
	}
	if strings.TrimSpace(frag) != frag {
		tb.Errorf("fragment %q has surrounding space", frag)
	}
	terms := ix.terms(query)
	ws := ix.words(text, nil)
	inWord := func(i int) bool { // whether offset i of text is inside a word
		return slices.ContainsFunc(ws, func(w word) bool { return w.Start < i && i < w.End })
	}
	cutLongWord := len(ws) > 0 && slices.ContainsFunc(ws, func(w word) bool { return w.End-w.Start > FragmentBytes })
	if frag != "" && !cutLongWord && (inWord(at) || inWord(at+len(frag))) {
		tb.Errorf("fragment %q is not cut at word boundaries", frag)
	}
	for i, m := range marks {
		if m.Start < 0 || m.End > len(frag) || m.Start >= m.End || i > 0 && m.Start < marks[i-1].End {
			tb.Fatalf("marks %v out of order or bounds of %q", marks, frag)
		}
		if cutLongWord {
			continue
		}
		toks := ix.an.Analyze([]byte(frag[m.Start:m.End]))
		if len(toks) != 1 || !slices.Contains(terms, string(toks[0].Term)) {
			tb.Errorf("mark %q is not one word of the query %q", frag[m.Start:m.End], terms)
		}
		if inWord(at+m.Start) || inWord(at+m.End) {
			tb.Errorf("mark %q is not a whole word", frag[m.Start:m.End])
		}
	}
	if cutLongWord {
		return
	}
	ti := map[string]int{}
	for i, t := range terms {
		ti[t] = i
	}
	for _, w := range ix.words(text, ti) {
		if w.term >= 0 && w.Start >= at && w.End <= at+len(frag) &&
			!slices.Contains(marks, Span{w.Start - at, w.End - at}) {
			tb.Errorf("word %q matches but is not marked in %q (marks %v)", text[w.Start:w.End], frag, marks)
		}
	}
}

// checkFragment checks a hit's fragment against the entry's stored text.
func checkFragment(tb testing.TB, ix *Index, h Hit, query string) {
	tb.Helper()
	d, err := ix.bi.Document(h.ID)
	if err != nil || d == nil {
		tb.Fatalf("entry %s: %v", h.ID, err)
	}
	var text string
	d.VisitFields(func(f index.Field) {
		if f.Name() == fieldText {
			text = string(f.Value())
		}
	})
	checkFragmentOf(tb, ix, text, h.Fragment, h.Marks, query)
}

func TestFragment(t *testing.T) {
	ix := analyzerOnly(t)
	long := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 20)
	tests := []struct {
		name, text, query string
		frag              string // "" to check only the properties
		marks             []string
	}{
		{"short text whole", "  The dog runs home.\n", "running", "The dog runs home.", []string{"runs"}},
		{"no match: the beginning", long, "zebra", "", nil},
		{"the match in the middle", long + "The zebra was here. " + long, "zebra", "", []string{"zebra"}},
		{"the window with most terms", long + "zebra " + long + "zebra and a walrus met. " + long + "walrus " + long, "zebra walrus", "", []string{"zebra", "walrus"}},
		{"match at the end", long + "finally the walrus", "walrus", "", []string{"walrus"}},
		{"match at the start", "Walrus " + long, "walrus", "", []string{"Walrus"}},
		{"stems and possessives", "The index's merges were merged while merging.", "merge index", "The index's merges were merged while merging.", []string{"index's", "merges", "merged", "merging"}},
		{"punctuation kept whole", "(zebra).", "zebra", "(zebra).", []string{"zebra"}},
		{"multibyte", strings.Repeat("Съешь же ещё этих мягких французских булок. ", 10) + "Зебра " + strings.Repeat("да выпей чаю. ", 20), "зебра", "", []string{"Зебра"}},
		{"ideographs", strings.Repeat("日本語の文章です。", 20) + "猫" + strings.Repeat("日本語の文章です。", 20), "猫", "", []string{"猫"}},
		{"one word over the budget", strings.Repeat("a", 300) + " zebra", "zebra", "", []string{"zebra"}},
		{"a matched word over the budget", "x " + strings.Repeat("é", 200), strings.Repeat("é", 200), "", nil},
		{"no words at all", strings.Repeat("!? ", 200), "zebra", "", nil},
		{"empty", "", "zebra", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frag, marks := snippet(ix, tt.text, tt.query)
			t.Logf("%q %v", frag, marks)
			checkFragmentOf(t, ix, tt.text, frag, marks, tt.query)
			if tt.frag != "" && frag != tt.frag {
				t.Errorf("fragment %q, want %q", frag, tt.frag)
			}
			if tt.marks != nil {
				if diff := cmp.Diff(marked(frag, marks), tt.marks); diff != "" {
					t.Errorf("marked words (-got +want):\n%s", diff)
				}
			}
			if tt.text != "" && strings.TrimSpace(tt.text) != "" && frag == "" {
				t.Error("empty fragment of a text with words")
			}
		})
	}
}

// TestFragmentCentred checks that a lone match gets context on both sides.
func TestFragmentCentred(t *testing.T) {
	ix := analyzerOnly(t)
	long := strings.Repeat("lorem ipsum dolor sit amet ", 30)
	text := long + "zebra " + long
	frag, marks := snippet(ix, text, "zebra")
	if len(marks) != 1 {
		t.Fatalf("marks %v", marks)
	}
	before, after := marks[0].Start, len(frag)-marks[0].End
	if before < 80 || after < 80 {
		t.Errorf("%d bytes before the match and %d after in %q, want it about centred", before, after, frag)
	}
	if len(frag) < FragmentBytes-20 {
		t.Errorf("fragment of %d bytes, want near %d", len(frag), FragmentBytes)
	}
}

func TestSearchFragments(t *testing.T) {
	ix := newTestIndex(t)
	long := strings.Repeat("Background words fill this chunk of text. ", 15)
	put(t, ix,
		Entry{ID: "a", Title: "Merging", Text: long + "Scorch merges segments in the background while searches run. " + long},
		Entry{ID: "b", Title: "Segments", Text: "Short."},
		Entry{ID: "c", Text: "Ünïcödé segments: 日本語 segments."},
	)
	hits, err := ix.Search(context.Background(), Query{Text: "merging segments", Snippet: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 3 {
		t.Fatalf("got %d hits, want 3", len(hits))
	}
	for _, h := range hits {
		checkFragment(t, ix, h, "merging segments")
		switch h.ID {
		case "a":
			if diff := cmp.Diff(marked(h.Fragment, h.Marks), []string{"merges", "segments"}); diff != "" {
				t.Errorf("a's marks (-got +want):\n%s", diff)
			}
		case "b":
			if h.Fragment != "Short." || len(h.Marks) != 0 {
				t.Errorf("b (title match only): got %q %v, want its text unmarked", h.Fragment, h.Marks)
			}
		}
	}
	// Fragments makes the same fragments for the hits asked for, and
	// none for an entry the index does not hold.
	want := map[string]Hit{}
	for _, h := range hits {
		want[h.ID] = h
	}
	fs, err := ix.Fragments("merging segments", []string{"c", "gone", "a"})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"c", "gone", "a"} {
		w := want[id]
		if fs[i].ID != id || fs[i].Fragment != w.Fragment || !cmp.Equal(fs[i].Marks, w.Marks) {
			t.Errorf("Fragments' %d: %+v, want %s's %q %v", i, fs[i], id, w.Fragment, w.Marks)
		}
	}
	hits, err = ix.Search(context.Background(), Query{Text: "merging segments"})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hits {
		if h.Fragment != "" || h.Marks != nil {
			t.Errorf("%s: a fragment without Snippet", h.ID)
		}
	}
}

func FuzzFragment(f *testing.F) {
	f.Add("The dog runs home.", "running")
	f.Add(strings.Repeat("Lorem ipsum dolor sit amet. ", 30)+"zebra", "zebra lorem")
	f.Add("x "+strings.Repeat("é", 200), strings.Repeat("é", 200))
	f.Add("日本語の文章です。猫", "猫")
	f.Add("\xff\xfe bad \xc3 bytes", "bad bytes")
	f.Add("don't 3.14 1,000 fmt.Println describe_yourself", "don't println describe 3.14")
	ix := analyzerOnly(f)
	f.Fuzz(func(t *testing.T, text, query string) {
		text = valid(text) // as Put stores it
		frag, marks := snippet(ix, text, query)
		checkFragmentOf(t, ix, text, frag, marks, query)
	})
}
