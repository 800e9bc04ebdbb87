package openai

import (
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
)

func TestEmbed(t *testing.T) {
	model := &llmtest.Model{Dim: 8}
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: model, Flavor: llmtest.VLLM, Models: []string{"embedder"}})
	c := newClient(t, fake.URL, nil)
	inputs := []string{"alpha", "beta gamma", "alpha"}
	resp, err := c.Embed(t.Context(), &llm.EmbedRequest{Model: "embedder", Input: inputs})
	if err != nil {
		t.Fatalf("Embed: %v", err)
	}
	var want [][]float32
	for _, in := range inputs {
		want = append(want, llmtest.HashVector(in, 8))
	}
	if diff := cmp.Diff(resp.Vectors, want); diff != "" {
		t.Errorf("vectors (-got +want):\n%s", diff)
	}
	if resp.Model != "embedder" || resp.Usage.PromptTokens != 4 || resp.Timings.Latency <= 0 {
		t.Errorf("got model %q, usage %+v, latency %v", resp.Model, resp.Usage, resp.Timings.Latency)
	}
	if diff := cmp.Diff(model.Embeds(), []llm.EmbedRequest{{Model: "embedder", Input: inputs}}); diff != "" {
		t.Errorf("requests the model saw (-got +want):\n%s", diff)
	}
	if want := `{"model":"embedder","input":["alpha","beta gamma","alpha"]}`; string(fake.Requests()[0].Body) != want {
		t.Errorf("body on the wire %s, want %s", fake.Requests()[0].Body, want)
	}

	// No inputs, no call.
	resp, err = c.Embed(t.Context(), &llm.EmbedRequest{Model: "embedder"})
	if err != nil || len(resp.Vectors) != 0 || len(fake.Requests()) != 1 {
		t.Errorf("empty input: got %v, %v after %d requests", resp, err, len(fake.Requests()))
	}
}

func TestEmbedAnswers(t *testing.T) {
	tests := []struct {
		name string
		body string
		want [][]float32
	}{
		{"out of order", `{"data":[{"index":2,"embedding":[3,3]},{"index":0,"embedding":[1,1]},{"index":1,"embedding":[2,2]}]}`,
			[][]float32{{1, 1}, {2, 2}, {3, 3}}},
		{"too few", `{"data":[{"index":0,"embedding":[1,1]},{"index":1,"embedding":[2,2]}]}`, nil},
		{"too many", `{"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":[2]},{"index":2,"embedding":[3]},{"index":3,"embedding":[4]}]}`, nil},
		{"repeated index", `{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]},{"index":2,"embedding":[3]}]}`, nil},
		{"index out of range", `{"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":[2]},{"index":3,"embedding":[3]}]}`, nil},
		{"widths differ", `{"data":[{"index":0,"embedding":[1,1]},{"index":1,"embedding":[2]},{"index":2,"embedding":[3,3]}]}`, nil},
		{"base64", `{"data":[{"index":0,"embedding":"AACAPw=="},{"index":1,"embedding":"AACAPw=="},{"index":2,"embedding":"AACAPw=="}]}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, tt.body)
			})
			resp, err := newClient(t, url, nil).Embed(t.Context(), &llm.EmbedRequest{Model: "m", Input: []string{"a", "b", "c"}})
			if tt.want == nil {
				if !errors.Is(err, llm.ErrBadResponse) {
					t.Errorf("got %v, want llm.ErrBadResponse", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Embed: %v", err)
			}
			if diff := cmp.Diff(resp.Vectors, tt.want); diff != "" {
				t.Errorf("vectors (-got +want):\n%s", diff)
			}
		})
	}
}
