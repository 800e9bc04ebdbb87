package fulltext

import (
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// words returns the spans of the words scan finds in input.
func words(input []byte) []Span {
	var ws []Span
	for i := 0; ; {
		start, end := scan(input, i)
		if start == end {
			return ws
		}
		ws = append(ws, Span{start, end})
		i = end
	}
}

func TestScan(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  ,.;!?  ", nil},
		{"Hello, world!", []string{"Hello", "world"}},
		{"don't John's O’Brien", []string{"don't", "John's", "O’Brien"}},
		{"'quoted' rock'n", []string{"quoted", "rock'n"}},
		{"3.14 1,000 v2 utf8 2024-01-02", []string{"3.14", "1,000", "v2", "utf8", "2024", "01", "02"}},
		{"end. Next 1. 2", []string{"end", "Next", "1", "2"}},
		{"fmt.Println describe_yourself a:b", []string{"fmt", "Println", "describe", "yourself", "a", "b"}},
		{"naïve café Zürich", []string{"naïve", "café", "Zürich"}},
		{"se\u0301gment", []string{"se\u0301gment"}},
		{"日本語テキスト", []string{"日", "本", "語", "テ", "キ", "ス", "ト"}},
		{"abc日本def", []string{"abc", "日", "本", "def"}},
		{"Съешь же", []string{"Съешь", "же"}},
		{"emoji🔥fire", []string{"emoji", "fire"}},
	}
	for _, tt := range tests {
		var got []string
		for _, w := range words([]byte(tt.in)) {
			got = append(got, tt.in[w.Start:w.End])
		}
		if diff := cmp.Diff(got, tt.want); diff != "" {
			t.Errorf("%q (-got +want):\n%s", tt.in, diff)
		}
	}
}

func TestAnalyzer(t *testing.T) {
	ix := analyzerOnly(t)
	got := ix.terms("The Running dogs' owner's connections AND the 3.14 merges")
	want := []string{"run", "dog", "owner", "connect", "3.14", "merg"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
}

func FuzzScan(f *testing.F) {
	f.Add("Hello, world! don't 3.14 日本語")
	f.Add("\xff'a'\xc3.1,")
	ix := analyzerOnly(f)
	f.Fuzz(func(t *testing.T, in string) {
		end := 0
		ws := words([]byte(in))
		for i, w := range ws {
			if w.Start < end || w.Start >= w.End || w.End > len(in) {
				t.Fatalf("word %d at [%d, %d) after %d in %d bytes", i, w.Start, w.End, end, len(in))
			}
			if utf8.ValidString(in) && !utf8.ValidString(in[w.Start:w.End]) {
				t.Fatalf("word %q cuts a character", in[w.Start:w.End])
			}
			end = w.End
		}
		// Analysis keeps the words' spans, less those it drops, and the
		// cache changes nothing.
		for round := range 2 {
			toks := ix.an.Analyze([]byte(in))
			j := 0
			for _, tok := range toks {
				for j < len(ws) && ws[j].Start < tok.Start {
					j++
				}
				if j == len(ws) || ws[j] != (Span{tok.Start, tok.End}) || len(tok.Term) == 0 {
					t.Fatalf("round %d: token %q at [%d, %d) is no word", round, tok.Term, tok.Start, tok.End)
				}
			}
		}
	})
}
