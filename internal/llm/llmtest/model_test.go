package llmtest_test

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
)

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}

func norm(v []float32) float64 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	return math.Sqrt(n)
}

func TestWordVector(t *testing.T) {
	const dim = 256
	sail := llmtest.WordVector("The crew trimmed the sail as the wind rose.", dim)
	// Case, punctuation, stop words and order do not matter.
	if got := llmtest.WordVector("wind, SAIL; rose: crew trimmed", dim); !cmp.Equal(got, sail) {
		t.Errorf("same words differently written: got %v, want %v", got, sail)
	}
	for _, tt := range []struct {
		name     string
		a, b     string
		min, max float64
	}{
		{"shared words", "the wind filled the sail", "a sail needs wind", 0.5, 1},
		{"some shared", "the wind filled the sail", "the wind blew the bread off the table", 0.1, 0.8},
		{"no shared words", "the wind filled the sail", "knead the dough and bake the bread", -0.3, 0.3},
		{"only stop words differ", "the sail", "a sail", 1 - 1e-6, 1 + 1e-6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := cosine(llmtest.WordVector(tt.a, dim), llmtest.WordVector(tt.b, dim))
			if c < tt.min || c > tt.max {
				t.Errorf("cosine %q, %q = %.3f, want in [%g, %g]", tt.a, tt.b, c, tt.min, tt.max)
			}
		})
	}
	for _, text := range []string{"", "the and of", "...", "sail", "Ünïcödé wörds 42"} {
		for _, d := range []int{1, 2, 16, 256} {
			v := llmtest.WordVector(text, d)
			if len(v) != d || math.Abs(norm(v)-1) > 1e-6 {
				t.Errorf("WordVector(%q, %d): width %d, norm %g; want a unit vector of width %d", text, d, len(v), norm(v), d)
			}
		}
	}
	if empty, stops := llmtest.WordVector("", 8), llmtest.WordVector("of the", 8); !cmp.Equal(empty, stops) {
		t.Errorf("texts without words: got %v and %v, want one fixed vector", empty, stops)
	}
}

func TestModelVectors(t *testing.T) {
	inputs := []string{"wind and sail", "bread"}
	for _, tt := range []struct {
		name    string
		vectors func(string, int) []float32
	}{{"default", nil}, {"words", llmtest.WordVector}} {
		t.Run(tt.name, func(t *testing.T) {
			m := &llmtest.Model{Dim: 32, Vectors: tt.vectors}
			resp, err := m.Embed(t.Context(), &llm.EmbedRequest{Model: "e", Input: inputs})
			if err != nil {
				t.Fatal(err)
			}
			want := tt.vectors
			if want == nil {
				want = llmtest.HashVector
			}
			if diff := cmp.Diff(resp.Vectors, [][]float32{want(inputs[0], 32), want(inputs[1], 32)}); diff != "" {
				t.Errorf("vectors (-got +want):\n%s", diff)
			}
		})
	}
}
