package catalog

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// texts gives the units' text.
func texts(units []Unit) []string {
	var ts []string
	for _, u := range units {
		ts = append(ts, u.Text)
	}
	return ts
}

// checkSpans checks that each unit's span is in range, after the previous
// one, and slices back to its text (valid UTF-8 input only).
func checkSpans(t testing.TB, data []byte, units []Unit) {
	t.Helper()
	last := 0
	for i, u := range units {
		if u.Span.Start < last || u.Span.End <= u.Span.Start || u.Span.End > len(data) {
			t.Fatalf("unit %d span %v: want within [%d, %d] and not empty", i, u.Span, last, len(data))
		}
		if utf8.Valid(data) && string(data[u.Span.Start:u.Span.End]) != u.Text {
			t.Errorf("unit %d: source at %v is %q, want %q", i, u.Span, data[u.Span.Start:u.Span.End], u.Text)
		}
		last = u.Span.End
	}
}

func parse(t testing.TB, name, src string, kind Kind) *Document {
	t.Helper()
	doc, err := Parse(name, []byte(src), kind)
	if err != nil {
		t.Fatalf("Parse(%q): %v", name, err)
	}
	checkSpans(t, []byte(src), doc.Units)
	return doc
}

func TestKindOf(t *testing.T) {
	for name, want := range map[string]Kind{
		"README.md": KindMarkdown, "notes.MARKDOWN": KindMarkdown, "main.go": KindCode,
		"lib.py": KindCode, "x.star": KindCode, "BUILD": KindCode, "app.ts": KindCode,
		"notes.txt": KindText, "LICENSE": KindText,
	} {
		if got := KindOf(name); got != want {
			t.Errorf("KindOf(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseKindOverride(t *testing.T) {
	src := "# Not a heading.\nJust text."
	doc := parse(t, "notes.md", src, KindText)
	if doc.Kind != KindText || doc.Units[0].Kind != UnitSentence {
		t.Errorf("got kind %v, first unit %v; want text, sentence", doc.Kind, doc.Units[0].Kind)
	}
	if doc := parse(t, "notes.md", src, KindAuto); doc.Kind != KindMarkdown {
		t.Errorf("got kind %v, want markdown", doc.Kind)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, src := range []string{"", "  \n\n\t\n"} {
		for _, k := range []Kind{KindText, KindMarkdown, KindCode} {
			doc := parse(t, "x.go", src, k)
			if len(doc.Units) != 0 {
				t.Errorf("%v %q: got %d units, want 0", k, src, len(doc.Units))
			}
			if cs := Group(doc.Units, nil, Bounds{}); len(cs) != 0 {
				t.Errorf("%v %q: got %d chunks, want 0", k, src, len(cs))
			}
		}
	}
}

func TestParseBinary(t *testing.T) {
	tests := map[string]struct {
		data []byte
		want string
	}{
		"NUL":      {[]byte("text\x00more"), "NUL byte at offset 4"},
		"controls": {[]byte(strings.Repeat("\x01\x02\x03ab", 100)), "control bytes or invalid UTF-8"},
		"invalid":  {[]byte(strings.Repeat("\xff\xfe\x80abc", 100)), "control bytes or invalid UTF-8"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("f.txt", tt.data, KindAuto)
			if !errors.Is(err, ErrBinary) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want ErrBinary saying %q", err, tt.want)
			}
		})
	}
}

func TestParseInvalidUTF8(t *testing.T) {
	src := []byte("Caf\xe9 is open. The \xff\xfe menu is long. It ends.")
	doc, err := Parse("f.txt", src, KindText)
	if err != nil {
		t.Fatal(err)
	}
	if doc.InvalidAt != 3 || doc.Invalid != 3 {
		t.Errorf("got first invalid at %d, %d invalid; want 3, 3", doc.InvalidAt, doc.Invalid)
	}
	want := []string{"Caf\uFFFD is open.", "The \uFFFD\uFFFD menu is long.", "It ends."}
	if diff := cmp.Diff(texts(doc.Units), want); diff != "" {
		t.Errorf("units (-got +want):\n%s", diff)
	}
	// Spans count original bytes.
	wantSpans := []Span{{0, 13}, {14, 34}, {35, 43}}
	var got []Span
	for _, u := range doc.Units {
		got = append(got, u.Span)
	}
	if diff := cmp.Diff(got, wantSpans); diff != "" {
		t.Errorf("spans (-got +want):\n%s", diff)
	}
	if s := string(src[35:43]); s != "It ends." {
		t.Errorf("source at last span is %q", s)
	}
	if doc := parse(t, "f.txt", "Valid.", KindText); doc.InvalidAt != -1 {
		t.Errorf("valid input: got InvalidAt %d, want -1", doc.InvalidAt)
	}
}

func TestCutRepairedUnit(t *testing.T) {
	src := []byte(strings.Repeat("abcdefghijklmnopq\xff ", 20)) // 1 byte in 19 invalid
	doc, err := Parse("f.txt", src, KindText)
	if err != nil {
		t.Fatal(err)
	}
	cs := Group(doc.Units, nil, Bounds{MinTokens: 2, MaxTokens: 10})
	last := 0
	for _, c := range cs {
		if c.Span.Start < last || c.Span.End < c.Span.Start || c.Span.End > len(src) {
			t.Fatalf("chunk span %v after %d, want within %d bytes", c.Span, last, len(src))
		}
		if got := strings.ToValidUTF8(string(src[c.Span.Start:c.Span.End]), "\uFFFD"); got != c.Text {
			t.Errorf("source at %v repairs to %q, want %q", c.Span, got, c.Text)
		}
		last = c.Span.End
	}
}
