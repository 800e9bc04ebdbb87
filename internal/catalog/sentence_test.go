package catalog

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSentences(t *testing.T) {
	tests := map[string]struct {
		src  string
		want []string
	}{
		"title":     {"Dr. Smith went home. He slept.", []string{"Dr. Smith went home.", "He slept."}},
		"eg":        {"Use a tool, e.g. a hammer. Then stop.", []string{"Use a tool, e.g. a hammer.", "Then stop."}},
		"decimal":   {"Pi is 3.14 or so. It is irrational.", []string{"Pi is 3.14 or so.", "It is irrational."}},
		"initials":  {"J. R. R. Tolkien wrote books. They sold.", []string{"J. R. R. Tolkien wrote books.", "They sold."}},
		"quote":     {`He said "Stop." Then he left.`, []string{`He said "Stop."`, "Then he left."}},
		"ellipsis":  {"He paused... then went on. The end.", []string{"He paused... then went on.", "The end."}},
		"questions": {"Is it? Yes! Good.", []string{"Is it?", "Yes!", "Good."}},
		"times":     {"Mr. Jones came at 5 p.m. on Monday. It rained.", []string{"Mr. Jones came at 5 p.m. on Monday.", "It rained."}},
		"paragraphs": {"First line\nwraps here.\n\nNo period here\n\nLast.",
			[]string{"First line\nwraps here.", "No period here", "Last."}},
		"unicode": {"Ünïcödé works. Ça va? Oui.", []string{"Ünïcödé works.", "Ça va?", "Oui."}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			doc := parse(t, "f.txt", tt.src, KindText)
			if diff := cmp.Diff(texts(doc.Units), tt.want); diff != "" {
				t.Errorf("sentences (-got +want):\n%s", diff)
			}
		})
	}
}

func TestSentenceBlocks(t *testing.T) {
	doc := parse(t, "f.txt", "One. Two.\n\nThree.", KindText)
	var got []bool
	for _, u := range doc.Units {
		got = append(got, u.Block)
	}
	if diff := cmp.Diff(got, []bool{true, false, true}); diff != "" {
		t.Errorf("Block (-got +want):\n%s", diff)
	}
}

// FuzzParse checks that units of every kind have spans in range, ordered,
// not overlapping, and (for valid UTF-8) slicing back to their text.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Dr. Smith went home. He slept.", "# A\n\ntext. more.\n```\ncode\n", "func f() {}\n\ntype T int\n",
		"Caf\xe9. x", "Title\n===\nBody...", "def f():\n  pass\n@d\nclass C: pass", "", "\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, k uint8) {
		kind := Kind(k%3) + KindText
		doc, err := Parse("f.go", data, kind)
		if err != nil {
			return
		}
		checkSpans(t, data, doc.Units)
		for _, c := range Group(doc.Units, nil, Bounds{MinTokens: 2, MaxTokens: 8}) {
			if c.Tokens > 8 || c.Span.Start < 0 || c.Span.End > len(data) || c.Span.Start > c.Span.End {
				t.Fatalf("chunk %+v out of bounds for %d bytes", c, len(data))
			}
		}
	})
}
