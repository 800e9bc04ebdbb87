package catalog

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// genText makes a deterministic document of sentences of 1 to 40 words,
// with now and then a paragraph break or a huge "sentence" without stops.
func genText(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(60) {
		words := 1 + r.IntN(40)
		if r.IntN(20) == 0 {
			words = 300 + r.IntN(600)
		}
		for w := range words {
			if w > 0 {
				b.WriteByte(' ')
			}
			b.WriteString([]string{"alpha", "be", "gamma", "delta", "epsilon", "z"}[r.IntN(6)])
		}
		if words < 300 {
			b.WriteByte('.')
		}
		b.WriteString([]string{" ", " ", "\n", "\n\n"}[r.IntN(4)])
	}
	return b.String()
}

// checkChunks checks the properties Group promises.
func checkChunks(t testing.TB, units []Unit, cs []Chunk, b Bounds) {
	t.Helper()
	b = b.withDefaults()
	next := 0
	for i, c := range cs {
		if c.Tokens > b.MaxTokens || c.Tokens != Tokens(c.Text) {
			t.Fatalf("chunk %d: %d tokens (text %d), want at most %d", i, c.Tokens, Tokens(c.Text), b.MaxTokens)
		}
		if c.From > next || c.From < next-1 || c.To <= c.From {
			t.Fatalf("chunk %d holds units [%d, %d), want from %d (or %d for a cut unit)", i, c.From, c.To, next, next-1)
		}
		for _, u := range units[c.From:c.To] {
			if u.Section != c.Section {
				t.Fatalf("chunk %d in section %d holds a unit of section %d", i, c.Section, u.Section)
			}
		}
		next = c.To
		if c.Tokens >= b.MinTokens {
			continue
		}
		// A small chunk is alone in its section or its neighbours are too full.
		for _, j := range []int{i - 1, i + 1} {
			if j >= 0 && j < len(cs) && cs[j].Section == c.Section && c.Tokens+cs[j].Tokens < b.MaxTokens-1 {
				t.Errorf("chunk %d (%d tokens) is under the minimum %d beside chunk %d (%d tokens)", i, c.Tokens, b.MinTokens, j, cs[j].Tokens)
			}
		}
	}
	if next != len(units) {
		t.Fatalf("chunks end at unit %d, want %d", next, len(units))
	}
}

func TestGroupBoundsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 200 {
		src := genText(r)
		doc := parse(t, "gen.txt", src, KindText)
		b := Bounds{MinTokens: 5 + r.IntN(40)}
		b.MaxTokens = 2*b.MinTokens + r.IntN(200)
		var breaks []int
		for i := range doc.Units {
			if r.IntN(4) == 0 {
				breaks = append(breaks, i)
			}
		}
		cs := Group(doc.Units, breaks, b)
		checkChunks(t, doc.Units, cs, b)
		if len(doc.Units) > 0 && len(cs) == 0 {
			t.Fatalf("case %d: units but no chunks", n)
		}
		for _, c := range cs {
			if c.Span.End > len(src) || c.Span.Start < 0 {
				t.Fatalf("case %d: chunk span %v out of %d bytes", n, c.Span, len(src))
			}
		}
	}
}

// units makes sentence units of the given sizes in bytes (one paragraph).
func units(sizes ...int) []Unit {
	var us []Unit
	at := 0
	for i, n := range sizes {
		text := strings.Repeat("x", n-1) + "."
		us = append(us, Unit{Kind: UnitSentence, Text: text, Span: Span{at, at + n}, Block: i == 0})
		at += n + 1
	}
	return us
}

func ranges(cs []Chunk) [][2]int {
	var rs [][2]int
	for _, c := range cs {
		rs = append(rs, [2]int{c.From, c.To})
	}
	return rs
}

func TestGroupBreaks(t *testing.T) {
	b := Bounds{MinTokens: 10, MaxTokens: 100} // 30 to 300 bytes
	us := units(30, 30, 30, 30, 30, 30, 30, 30)
	tests := map[string]struct {
		breaks []int
		want   [][2]int
	}{
		"none":     {nil, [][2]int{{0, 8}}},
		"honoured": {[]int{3, 5}, [][2]int{{0, 3}, {3, 5}, {5, 8}}},
		"adjacent": {[]int{2, 3}, [][2]int{{0, 2}, {2, 3}, {3, 8}}},
		"first":    {[]int{0, 7}, [][2]int{{0, 7}, {7, 8}}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cs := Group(us, tt.breaks, b)
			checkChunks(t, us, cs, b)
			if diff := cmp.Diff(ranges(cs), tt.want); diff != "" {
				t.Errorf("chunks (-got +want):\n%s", diff)
			}
		})
	}
}

func TestGroupBreaksUnderMinimumIgnored(t *testing.T) {
	b := Bounds{MinTokens: 20, MaxTokens: 100} // 60 to 300 bytes
	us := units(30, 30, 30, 30)                // 10 tokens each
	cs := Group(us, []int{1, 2, 3}, b)         // a break at 1 would leave 10 tokens
	if diff := cmp.Diff(ranges(cs), [][2]int{{0, 2}, {2, 4}}); diff != "" {
		t.Errorf("chunks (-got +want):\n%s", diff)
	}
}

func TestGroupHugeUnitIsCut(t *testing.T) {
	b := Bounds{MinTokens: 5, MaxTokens: 20} // 60 bytes
	words := strings.Repeat("word ", 50)     // 250 bytes
	src := "Short one. " + words + "end. Tail."
	doc := parse(t, "f.txt", src, KindText)
	cs := Group(doc.Units, nil, b)
	checkChunks(t, doc.Units, cs, b)
	for _, c := range cs {
		if strings.Contains(c.Text, "wor ") || strings.HasPrefix(c.Text, "ord") {
			t.Errorf("chunk %q cuts a word", c.Text)
		}
		if got := src[c.Span.Start:c.Span.End]; !strings.Contains(strings.Join(strings.Fields(got), " "), strings.Join(strings.Fields(c.Text), " ")) {
			t.Errorf("chunk %q: source at span is %q", c.Text, got)
		}
	}
	if len(cs) < 5 {
		t.Errorf("got %d chunks, want at least 5 for %d bytes", len(cs), len(src))
	}
	// No space at all: cut at rune boundaries.
	cs = Group([]Unit{{Text: strings.Repeat("é", 100), Span: Span{0, 200}}}, nil, b)
	for _, c := range cs {
		if c.Tokens > 20 || strings.ContainsRune(c.Text, '\uFFFD') {
			t.Errorf("chunk %q: %d tokens", c.Text, c.Tokens)
		}
	}
}

func TestGroupTinyTrailing(t *testing.T) {
	b := Bounds{MinTokens: 10, MaxTokens: 100}
	us := units(200, 3) // a 1-token sentence after a full one
	if diff := cmp.Diff(ranges(Group(us, nil, b)), [][2]int{{0, 2}}); diff != "" {
		t.Errorf("chunks (-got +want):\n%s", diff)
	}
	us = units(298, 3) // too full to take it: it stays alone
	if diff := cmp.Diff(ranges(Group(us, nil, b)), [][2]int{{0, 1}, {1, 2}}); diff != "" {
		t.Errorf("chunks (-got +want):\n%s", diff)
	}
	us = units(3) // a tiny document is one tiny chunk
	if diff := cmp.Diff(ranges(Group(us, nil, b)), [][2]int{{0, 1}}); diff != "" {
		t.Errorf("chunks (-got +want):\n%s", diff)
	}
}

func TestBoundsValidate(t *testing.T) {
	for _, b := range []Bounds{{MinTokens: 60, MaxTokens: 100}, {MinTokens: -1}, {MaxTokens: 10}} {
		if err := b.Validate(); !errors.Is(err, ErrBounds) {
			t.Errorf("%+v: got %v, want ErrBounds", b, err)
		}
	}
	if err := (Bounds{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
