package catalog

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/llm/llmtest"
)

// at is the unit vector at deg degrees in the plane.
func at(deg float64) []float32 {
	r := deg * math.Pi / 180
	return []float32{float32(math.Cos(r)), float32(math.Sin(r))}
}

func TestBreakpoints(t *testing.T) {
	x, y := []float32{1, 0}, []float32{0, 1}
	fan := [][]float32{at(0), at(10), at(30), at(60), at(100)} // similarities cos 10°, 20°, 30°, 40°
	tests := []struct {
		name       string
		vecs       [][]float32
		percentile float64
		want       []int
	}{
		{"none", nil, 5, nil},
		{"one", [][]float32{x}, 5, nil},
		{"two, however far apart", [][]float32{x, y}, 5, nil},
		{"one shift", [][]float32{x, x, x, y, y, y}, 5, []int{3}},
		{"not normalized", [][]float32{{3, 0}, {0.5, 0}, {7, 0}, {0, 2}, {0, 9}, {0, 0.1}}, 5, []int{3}},
		{"opposite", [][]float32{x, x, {-1, 0}, {-1, 0}}, 5, []int{2}},
		{"all alike", [][]float32{x, x, x, x}, 50, nil},
		{"all alike, not normalized", [][]float32{{1, 1}, {2, 2}, {3, 3}}, 99, nil},
		{"ties all break", [][]float32{x, y, y, x, x}, 5, []int{1, 3}},
		{"low percentile: the least similar", fan, 5, []int{4}},
		{"median", fan, 50, []int{3, 4}},
		{"high percentile: all but the most similar", fan, 99, []int{2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Breakpoints(tt.vecs, tt.percentile)
			if err != nil {
				t.Fatalf("Breakpoints: %v", err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("breakpoints (-got +want):\n%s", diff)
			}
		})
	}
}

func TestBreakpointsErrors(t *testing.T) {
	x := []float32{1, 0}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	tests := []struct {
		name       string
		vecs       [][]float32
		percentile float64
		want       error
	}{
		{"percentile 0", [][]float32{x, x, x}, 0, ErrPercentile},
		{"percentile 100", [][]float32{x, x, x}, 100, ErrPercentile},
		{"negative percentile", [][]float32{x, x, x}, -5, ErrPercentile},
		{"percentile over 100", [][]float32{x, x, x}, 101, ErrPercentile},
		{"NaN percentile", [][]float32{x, x, x}, math.NaN(), ErrPercentile},
		{"infinite percentile", [][]float32{x, x, x}, math.Inf(1), ErrPercentile},
		{"bad percentile, no vectors", nil, 0, ErrPercentile},
		{"widths differ", [][]float32{x, x, {1, 0, 0}}, 5, ErrVectors},
		{"width 0", [][]float32{{}, {}, {}}, 5, ErrVectors},
		{"zero vector", [][]float32{x, {0, 0}, x}, 5, ErrVectors},
		{"NaN component", [][]float32{x, {nan, 1}, x}, 5, ErrVectors},
		{"infinite component", [][]float32{x, x, {1, -inf}}, 5, ErrVectors},
		{"bad vector among two", [][]float32{x, {0, 0}}, 5, ErrVectors},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Breakpoints(tt.vecs, tt.percentile)
			if !errors.Is(err, tt.want) || got != nil {
				t.Errorf("got %v, %v; want an error wrapping %v", got, err, tt.want)
			}
		})
	}
}

// TestPercentileOf checks the numpy default ("linear") against values
// np.percentile gives.
func TestPercentileOf(t *testing.T) {
	tests := []struct {
		sorted []float64
		p      float64
		want   float64
	}{
		{[]float64{1, 2, 3, 4, 7, 10}, 50, 3.5}, // numpy's documented example
		{[]float64{1, 2, 3, 4}, 5, 1.15},
		{[]float64{1, 2, 3, 4}, 95, 3.85},
		{[]float64{0.1, 0.2, 0.5, 0.7, 0.9}, 30, 0.26},
		{[]float64{-1, 1}, 75, 0.5},
		{[]float64{42}, 5, 42},
		{[]float64{1, 2, 3}, 99, 2.98},
	}
	for _, tt := range tests {
		if got := percentileOf(tt.sorted, tt.p); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("percentile %v of %v = %v, want %v", tt.p, tt.sorted, got, tt.want)
		}
	}
}

// TestBreakpointsProperties checks on random vectors that breakpoints
// are ascending and in range, that there is one unless every similarity
// is the same, and that a higher percentile keeps every breakpoint of a
// lower one.
func TestBreakpointsProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		n, dim := r.IntN(40), 1+r.IntN(6)
		vecs := make([][]float32, n)
		for i := range vecs {
			vecs[i] = make([]float32, dim)
			for j := range vecs[i] {
				vecs[i][j] = float32(r.IntN(5) - 2) // small integers: many ties
			}
			vecs[i][r.IntN(dim)] = 3 // never zero
		}
		var prev []int
		for _, p := range []float64{0.001, 1, 5, 25, 50, 75, 95, 99.999} {
			got, err := Breakpoints(vecs, p)
			if err != nil {
				t.Fatalf("Breakpoints(%v, %v): %v", vecs, p, err)
			}
			for k, i := range got {
				if i < 1 || i >= n || (k > 0 && i <= got[k-1]) {
					t.Fatalf("Breakpoints(%v, %v) = %v: not ascending in [1, %d)", vecs, p, got, n)
				}
			}
			for _, i := range prev {
				if !slices.Contains(got, i) {
					t.Fatalf("Breakpoints(%v, %v) = %v lacks %d, a breakpoint at a lower percentile", vecs, p, got, i)
				}
			}
			prev = got
		}
		if n >= 3 && prev == nil && !allAlike(vecs) {
			t.Fatalf("Breakpoints(%v) found no breakpoint at any percentile", vecs)
		}
	}
}

// allAlike reports whether the neighbours of vecs are all equally
// similar.
func allAlike(vecs [][]float32) bool {
	norms, _ := checkVectors(vecs)
	first := cosine(vecs[0], vecs[1], norms[0], norms[1])
	for i := 1; i+1 < len(vecs); i++ {
		if cosine(vecs[i], vecs[i+1], norms[i], norms[i+1]) != first {
			return false
		}
	}
	return true
}

// topics are eight sentences on each of three subjects, each subject
// with its own words, and each sentence sharing words with the one
// before it. One word ("salt") crosses the first shift, so that the two
// shifts differ in sharpness and a lower percentile keeps only the
// sharper one: were both similarities 0, they would tie and always
// break together.
var topics = [][]string{
	{
		"The boat left the harbor at dawn with a fresh wind.",
		"Wind filled the sail and the boat heeled over.",
		"The crew trimmed the sail to the wind and coiled each rope on deck.",
		"On deck the crew watched the tide climb near the harbor.",
		"A strong tide pushed the boat toward the rocks by the harbor.",
		"The skipper ordered the crew to lower the sail and anchor the boat.",
		"The anchor held the boat against wind and tide.",
		"By night the crew, caked in salt, raised the anchor, rowed back to the harbor and tied the boat.",
	},
	{
		"Baking bread starts with flour, water, salt and yeast.",
		"Mix the flour and yeast into a soft dough.",
		"Knead the soft dough until it feels smooth and springy.",
		"Let the dough rise until it doubles, then shape a loaf.",
		"Heat the oven before the loaf of dough goes in to bake.",
		"Bake the loaf in a hot oven until the crust is brown.",
		"A brown crust and soft crumb mark good bread.",
		"Soft butter and sugar turn a plain bread dough into sweet rolls.",
	},
	{
		"Every spring the income tax return is due.",
		"The return lists income from wages, interest and dividends.",
		"Each deduction lowers the taxable income on the return.",
		"A larger deduction can move income into a lower bracket.",
		"Each bracket has its own tax rate on income.",
		"The marginal rate applies only to income above the bracket threshold.",
		"Payroll withholding on income often exceeds the tax owed, so a refund follows.",
		"An audit checks that the refund and every deduction from income were claimed correctly.",
	},
}

// TestSemanticChunks chunks a document with known topic shifts as the
// catalog does: Parse, embed each unit (a bag of words standing in for
// a model), Breakpoints, Group.
func TestSemanticChunks(t *testing.T) {
	var doc []string
	for _, sentences := range topics {
		doc = append(doc, sentences...)
	}
	parsed, err := Parse("topics.txt", []byte(strings.Join(doc, " ")), KindText)
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed.Units) != len(doc) {
		t.Fatalf("got %d units, want %d sentences", len(parsed.Units), len(doc))
	}
	vecs := make([][]float32, len(parsed.Units))
	for i, u := range parsed.Units {
		vecs[i] = llmtest.WordVector(u.Text, 1024)
	}
	// Small enough a minimum that every breakpoint is taken, big enough a
	// maximum that size forces no other cut.
	bounds := Bounds{MinTokens: 1, MaxTokens: 1024}
	chunk := func(percentile float64) ([]int, []Chunk) {
		t.Helper()
		breaks, err := Breakpoints(vecs, percentile)
		if err != nil {
			t.Fatalf("Breakpoints at %v: %v", percentile, err)
		}
		cs := Group(parsed.Units, breaks, bounds)
		checkChunks(t, parsed.Units, cs, bounds)
		return breaks, cs
	}

	breaks, cs := chunk(DefaultPercentile)
	if diff := cmp.Diff(breaks, []int{8, 16}); diff != "" {
		t.Errorf("breakpoints at the default percentile (-got +want):\n%s", diff)
	}
	var got [][2]int
	for _, c := range cs {
		got = append(got, [2]int{c.From, c.To})
	}
	if diff := cmp.Diff(got, [][2]int{{0, 8}, {8, 16}, {16, 24}}); diff != "" {
		t.Errorf("chunks' units (-got +want):\n%s", diff)
	}
	for i, c := range cs {
		if want := strings.Join(topics[i], " "); c.Text != want {
			t.Errorf("chunk %d: got %q, want %q", i, c.Text, want)
		}
	}

	lower, lowerChunks := chunk(1)
	if diff := cmp.Diff(lower, []int{16}); diff != "" || len(lowerChunks) != 2 {
		t.Errorf("at percentile 1, %d chunks (want 2) and breakpoints (-got +want):\n%s", len(lowerChunks), diff)
	}
	higher, higherChunks := chunk(50)
	if len(higher) <= len(breaks) || len(higherChunks) <= len(cs) {
		t.Errorf("at percentile 50: breakpoints %v and %d chunks, want more than %v and %d", higher, len(higherChunks), breaks, len(cs))
	}
	for _, i := range breaks {
		if !slices.Contains(higher, i) {
			t.Errorf("at percentile 50: breakpoints %v lack the topic shift at %d", higher, i)
		}
	}
}
