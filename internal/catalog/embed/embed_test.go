package embed_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"batos/internal/catalog/embed"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/llm/ollama"
	"batos/internal/llm/openai"
)

const model = "nomic-embed-text:latest"

// fastRetry keeps the clients' retries quick.
var fastRetry = llm.Retry{Attempts: 2, Base: time.Millisecond, Max: 2 * time.Millisecond}

// newCache opens a new cache in a temporary directory, closed at
// cleanup; it returns the cache and its path.
func newCache(t testing.TB) (*embed.Cache, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vectors")
	return reopen(t, path), path
}

// reopen opens the cache at path, closed at cleanup.
func reopen(t testing.TB, path string) *embed.Cache {
	t.Helper()
	c, err := embed.OpenCache(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// hashVectors are the vectors llmtest.Model gives texts at width dim.
func hashVectors(texts []string, dim int) [][]float32 {
	var out [][]float32
	for _, t := range texts {
		out = append(out, llmtest.HashVector(t, dim))
	}
	return out
}

// inputs are the texts of each embedding request m was asked.
func inputs(m *llmtest.Model) [][]string {
	var out [][]string
	for _, r := range m.Embeds() {
		out = append(out, r.Input)
	}
	return out
}

// embedAll embeds texts and fails the test on an error.
func embedAll(t testing.TB, e *embed.Embedder, texts []string) ([][]float32, embed.Stats) {
	t.Helper()
	vecs, st, err := e.Embed(t.Context(), texts)
	if err != nil {
		t.Fatalf("Embed: %v", err)
	}
	return vecs, st
}

func TestEmbedCaches(t *testing.T) {
	m := &llmtest.Model{Dim: 8}
	cache, path := newCache(t)
	texts := []string{"alpha", "beta", "gamma"}
	e := embed.New(m, model, cache, nil)
	if e.Model() != model {
		t.Errorf("Model() = %q, want %q", e.Model(), model)
	}
	vecs, st := embedAll(t, e, texts)
	if diff := cmp.Diff(vecs, hashVectors(texts, 8)); diff != "" {
		t.Errorf("vectors (-got +want):\n%s", diff)
	}
	if want := (embed.Stats{Texts: 3, Fetched: 3, Requests: 1, PromptTokens: 3}); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}

	// Cached: no request, not even after reopening the file.
	vecs, st = embedAll(t, e, []string{"gamma", "alpha"})
	if want := (embed.Stats{Texts: 2, Cached: 2}); st != want || len(m.Embeds()) != 1 {
		t.Errorf("stats %+v after %d requests, want %+v after 1", st, len(m.Embeds()), want)
	}
	if diff := cmp.Diff(vecs, hashVectors([]string{"gamma", "alpha"}, 8)); diff != "" {
		t.Errorf("cached vectors (-got +want):\n%s", diff)
	}
	cache.Close()
	cache = reopen(t, path)
	e = embed.New(m, model, cache, nil)
	_, st = embedAll(t, e, []string{"beta", "delta"})
	if want := (embed.Stats{Texts: 2, Cached: 1, Fetched: 1, Requests: 1, PromptTokens: 1}); st != want {
		t.Errorf("after reopening: stats %+v, want %+v", st, want)
	}
	if diff := cmp.Diff(inputs(m), [][]string{texts, {"delta"}}); diff != "" {
		t.Errorf("requests' inputs (-got +want):\n%s", diff)
	}

	if v, ok := e.Cached("delta"); !ok || !cmp.Equal(v, llmtest.HashVector("delta", 8)) {
		t.Errorf("Cached(delta) = %v, %v", v, ok)
	}
	if _, ok := e.Cached("epsilon"); ok || len(m.Embeds()) != 2 {
		t.Errorf("Cached of a text not cached: %v, after %d requests (want 2)", ok, len(m.Embeds()))
	}
	if _, ok := embed.New(m, model, nil, nil).Cached("delta"); ok {
		t.Error("Cached without a cache found a vector")
	}

	// Another model's vectors are its own.
	_, st = embedAll(t, embed.New(m, "other", cache, nil), texts[:1])
	if st.Fetched != 1 {
		t.Errorf("another model: stats %+v, want the text fetched", st)
	}
}

func TestEmbedDuplicates(t *testing.T) {
	m := &llmtest.Model{Dim: 4}
	cache, _ := newCache(t)
	texts := []string{"a", "b", "a", "a", "b", "c"}
	vecs, st := embedAll(t, embed.New(m, model, cache, nil), texts)
	if diff := cmp.Diff(inputs(m), [][]string{{"a", "b", "c"}}); diff != "" {
		t.Errorf("requests' inputs (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(vecs, hashVectors(texts, 4)); diff != "" {
		t.Errorf("vectors (-got +want):\n%s", diff)
	}
	if want := (embed.Stats{Texts: 6, Fetched: 3, Requests: 1, PromptTokens: 3}); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	// Each text has a vector of its own.
	vecs[0][0] = 42
	if vecs[2][0] == 42 || vecs[3][0] == 42 {
		t.Error("equal texts share a vector")
	}

	// Without a cache, too.
	m = &llmtest.Model{Dim: 4}
	_, st = embedAll(t, embed.New(m, model, nil, nil), texts)
	if len(m.Embeds()) != 1 || st.Fetched != 3 {
		t.Errorf("no cache: %d requests, stats %+v", len(m.Embeds()), st)
	}
}

func TestEmbedBatches(t *testing.T) {
	short := func(c byte) string { return strings.Repeat(string(c), 9) } // 3 tokens
	long := strings.Repeat("z", 30)                                      // 10 tokens
	tests := []struct {
		name  string
		opts  *embed.Options
		texts []string
		want  [][]string
	}{
		{"by count", &embed.Options{Batch: 2}, []string{"a", "b", "c", "d", "e"},
			[][]string{{"a", "b"}, {"c", "d"}, {"e"}}},
		{"by tokens", &embed.Options{BatchTokens: 7},
			[]string{short('a'), short('b'), short('c'), long, short('d')},
			[][]string{{short('a'), short('b')}, {short('c')}, {long}, {short('d')}}},
		{"by both", &embed.Options{Batch: 3, BatchTokens: 9},
			[]string{"a", "b", "c", "d", short('e'), short('f'), short('g'), short('h')},
			[][]string{{"a", "b", "c"}, {"d", short('e'), short('f')}, {short('g'), short('h')}}},
		{"repeated texts count once", nil, strings.Fields(strings.Repeat("a b c d e f g h ", 5)),
			[][]string{{"a", "b", "c", "d", "e", "f", "g", "h"}}},
		{"empty", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &llmtest.Model{Dim: 4}
			vecs, st := embedAll(t, embed.New(m, model, nil, tt.opts), tt.texts)
			if diff := cmp.Diff(inputs(m), tt.want); diff != "" {
				t.Errorf("requests' inputs (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(vecs, hashVectors(tt.texts, 4), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("vectors (-got +want):\n%s", diff)
			}
			if len(vecs) != len(tt.texts) || st.Requests != len(tt.want) {
				t.Errorf("%d vectors and %d requests, want %d and %d", len(vecs), st.Requests, len(tt.texts), len(tt.want))
			}
		})
	}
	// Distinct texts over the default batch of 32.
	m := &llmtest.Model{Dim: 4}
	var texts []string
	for i := range 70 {
		texts = append(texts, fmt.Sprint("text ", i))
	}
	embedAll(t, embed.New(m, model, nil, nil), texts)
	var sizes []int
	for _, in := range inputs(m) {
		sizes = append(sizes, len(in))
	}
	if diff := cmp.Diff(sizes, []int{32, 32, 6}); diff != "" {
		t.Errorf("default batches' sizes (-got +want):\n%s", diff)
	}
}

// failing is a Model whose embedding calls numbered in fail (from 1)
// fail.
type failing struct {
	*llmtest.Model
	mu   sync.Mutex
	n    int
	fail map[int]bool
}

func (f *failing) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	f.mu.Lock()
	f.n++
	fail := f.fail[f.n]
	f.mu.Unlock()
	if fail {
		return nil, errors.New("CUDA error: out of memory")
	}
	return f.Model.Embed(ctx, req)
}

// accounts collects the calls an Embedder accounts for.
type accounts struct {
	mu    sync.Mutex
	calls []embed.Call
}

func (a *accounts) add(c embed.Call) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, c)
}

func (a *accounts) all() []embed.Call {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]embed.Call(nil), a.calls...)
}

// embedBodies are the inputs of the embedding requests a fake Ollama got.
func embedBodies(t testing.TB, o *llmtest.Ollama) [][]string {
	t.Helper()
	var out [][]string
	for _, r := range o.Requests() {
		if r.Path != "/api/embed" {
			continue
		}
		var body struct {
			Model string   `json:"model"`
			Input []string `json:"input"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil || body.Model != model {
			t.Fatalf("request body %s: %v", r.Body, err)
		}
		out = append(out, body.Input)
	}
	return out
}

// TestEmbedOllamaResumes embeds through the Ollama client and a fake
// Ollama whose model fails on the third batch: the first two batches
// are cached, the failed request is accounted for, and once the server
// recovers a second Embed asks only for the rest.
func TestEmbedOllamaResumes(t *testing.T) {
	responder := &failing{Model: &llmtest.Model{Dim: 8}, fail: map[int]bool{3: true}}
	o := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: responder, Models: []string{model}})
	client, err := ollama.New(o.URL, &ollama.Options{Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	cache, _ := newCache(t)
	var acc accounts
	e := embed.New(client, model, cache, &embed.Options{Batch: 2, Account: acc.add})
	texts := []string{"one", "two", "three", "four", "five", "six", "seven"}

	start := time.Now()
	vecs, st, err := e.Embed(t.Context(), texts)
	if err == nil || vecs != nil {
		t.Fatalf("Embed with a failing server: got %v, %v", vecs, err)
	}
	var api *llm.APIError
	if !errors.As(err, &api) || api.Status != 500 || !strings.Contains(err.Error(), model) || !strings.Contains(err.Error(), "4 of 7 texts done") {
		t.Errorf("error %q: want the server's 500, the model and 4 of 7 texts done", err)
	}
	if want := (embed.Stats{Texts: 7, Fetched: 4, Requests: 3, PromptTokens: 4}); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	if diff := cmp.Diff(embedBodies(t, o), [][]string{{"one", "two"}, {"three", "four"}, {"five", "six"}}); diff != "" {
		t.Errorf("requests' inputs (-got +want):\n%s", diff)
	}
	if cache.Len() != 4 {
		t.Errorf("cache holds %d vectors, want the first two batches' 4", cache.Len())
	}
	calls := acc.all()
	if len(calls) != 3 {
		t.Fatalf("accounted for %d calls, want 3", len(calls))
	}
	for i, c := range calls {
		if c.Model != model || c.Inputs != 2 || c.Latency <= 0 || c.At.Before(start) || (c.Err != nil) != (i == 2) {
			t.Errorf("call %d: %+v", i, c)
		}
		if i < 2 && c.PromptTokens != 2 {
			t.Errorf("call %d: %d prompt tokens, want 2", i, c.PromptTokens)
		}
	}
	if !errors.As(calls[2].Err, &api) {
		t.Errorf("failed call's error %v, want the server's", calls[2].Err)
	}

	// The server recovered: only the rest is asked for.
	vecs, st = embedAll(t, e, texts)
	if diff := cmp.Diff(vecs, hashVectors(texts, 8)); diff != "" {
		t.Errorf("vectors (-got +want):\n%s", diff)
	}
	if want := (embed.Stats{Texts: 7, Cached: 4, Fetched: 3, Requests: 2, PromptTokens: 3}); st != want {
		t.Errorf("after recovery: stats %+v, want %+v", st, want)
	}
	if diff := cmp.Diff(embedBodies(t, o)[3:], [][]string{{"five", "six"}, {"seven"}}); diff != "" {
		t.Errorf("after recovery, requests' inputs (-got +want):\n%s", diff)
	}
	if len(acc.all()) != 5 || cache.Len() != 7 {
		t.Errorf("after recovery: %d calls accounted for, %d vectors cached; want 5 and 7", len(acc.all()), cache.Len())
	}
}

func TestEmbedOpenAI(t *testing.T) {
	m := &llmtest.Model{Dim: 6}
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: m, Flavor: llmtest.VLLM, Models: []string{model}})
	client, err := openai.New(fake.URL, &openai.Options{Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	cache, _ := newCache(t)
	texts := []string{"a", "b", "c", "d", "e"}
	vecs, st := embedAll(t, embed.New(client, model, cache, &embed.Options{Batch: 3}), texts)
	if diff := cmp.Diff(vecs, hashVectors(texts, 6)); diff != "" {
		t.Errorf("vectors (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(inputs(m), [][]string{{"a", "b", "c"}, {"d", "e"}}); diff != "" {
		t.Errorf("requests' inputs (-got +want):\n%s", diff)
	}
	n := 0
	for _, r := range fake.Requests() {
		if r.Path == "/v1/embeddings" {
			n++
		}
	}
	if n != 2 || st.Requests != 2 || st.PromptTokens != 5 {
		t.Errorf("%d requests to /v1/embeddings, stats %+v; want 2", n, st)
	}
}

// answer is a Model whose embedding calls answer vectors, whatever the
// input.
type answer struct {
	vectors [][]float32
}

func (a *answer) Chat(context.Context, *llm.ChatRequest) (*llm.ChatResponse, error) {
	return nil, errors.New("answer: no chat")
}

func (a *answer) Embed(_ context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	return &llm.EmbedResponse{Model: req.Model, Vectors: a.vectors}, nil
}

func TestEmbedBadAnswers(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	tests := []struct {
		name    string
		vectors [][]float32
		want    string
	}{
		{"too few", [][]float32{{1, 0}}, "1 vectors for 2 texts"},
		{"too many", [][]float32{{1, 0}, {0, 1}, {1, 1}}, "3 vectors for 2 texts"},
		{"widths differ", [][]float32{{1, 0}, {0, 1, 0}}, "vector 1 of the answer has width 3, vector 0 2"},
		{"empty", [][]float32{{}, {}}, "vector 0 of the answer is empty"},
		{"NaN", [][]float32{{1, 0}, {nan, 1}}, "vector 1 of the answer has NaN at 0"},
		{"infinite", [][]float32{{1, inf}, {1, 0}}, "vector 0 of the answer has -Inf at 1"},
		{"zero", [][]float32{{1, 0}, {0, 0}}, "vector 1 of the answer is zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache, _ := newCache(t)
			var acc accounts
			e := embed.New(&answer{tt.vectors}, model, cache, &embed.Options{Account: acc.add})
			vecs, st, err := e.Embed(t.Context(), []string{"x", "y"})
			if !errors.Is(err, llm.ErrBadResponse) || !strings.Contains(err.Error(), tt.want) || vecs != nil {
				t.Fatalf("got %v, %v; want llm.ErrBadResponse saying %q", vecs, err, tt.want)
			}
			if want := fmt.Sprintf("model %s: 0 of 2 texts done", model); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if cache.Len() != 0 || st.Fetched != 0 || st.Requests != 1 {
				t.Errorf("after a bad answer: %d cached, stats %+v", cache.Len(), st)
			}
			if calls := acc.all(); len(calls) != 1 || !errors.Is(calls[0].Err, llm.ErrBadResponse) {
				t.Errorf("accounted for %+v, want one call with the error", calls)
			}
		})
	}
}

func TestEmbedWidth(t *testing.T) {
	t.Run("cache", func(t *testing.T) {
		cache, _ := newCache(t)
		embedAll(t, embed.New(&llmtest.Model{Dim: 8}, model, cache, nil), []string{"a"})
		// The model behind the name changed.
		_, _, err := embed.New(&llmtest.Model{Dim: 16}, model, cache, nil).Embed(t.Context(), []string{"a", "b"})
		if !errors.Is(err, embed.ErrWidth) || !strings.Contains(err.Error(), model) || !strings.Contains(err.Error(), "1 of 2 texts done") {
			t.Errorf("got %v, want ErrWidth naming the model and 1 of 2 texts done", err)
		}
		// Another model may have another width.
		embedAll(t, embed.New(&llmtest.Model{Dim: 16}, "other", cache, nil), []string{"a", "b"})
	})
	for _, withCache := range []bool{true, false} {
		t.Run(fmt.Sprint("across batches, cache ", withCache), func(t *testing.T) {
			var cache *embed.Cache
			if withCache {
				cache, _ = newCache(t)
			}
			m := &llmtest.Model{Dim: 8}
			// Account is called between the batches, in Embed's goroutine.
			e := embed.New(m, model, cache, &embed.Options{Batch: 1, Account: func(embed.Call) { m.Dim = 4 }})
			_, st, err := e.Embed(t.Context(), []string{"a", "b"})
			if !errors.Is(err, embed.ErrWidth) || st.Fetched != 1 {
				t.Errorf("got %v, stats %+v; want ErrWidth after one text", err, st)
			}
		})
	}
}

func TestEmbedCancel(t *testing.T) {
	cache, _ := newCache(t)
	m := &llmtest.Model{Dim: 4}
	ctx, cancel := context.WithCancel(t.Context())
	// Cancelled once the first batch is answered.
	e := embed.New(m, model, cache, &embed.Options{Batch: 2, Account: func(embed.Call) { cancel() }})
	vecs, st, err := e.Embed(ctx, []string{"a", "b", "c", "d"})
	if !errors.Is(err, context.Canceled) || vecs != nil || !strings.Contains(err.Error(), "2 of 4 texts done") {
		t.Errorf("got %v, %v; want context.Canceled after 2 of 4 texts", vecs, err)
	}
	if want := (embed.Stats{Texts: 4, Fetched: 2, Requests: 1, PromptTokens: 2}); st != want || cache.Len() != 2 {
		t.Errorf("stats %+v with %d cached, want %+v with 2", st, cache.Len(), want)
	}
	// A context done already: no request at all.
	_, st, err = embed.New(m, model, cache, nil).Embed(ctx, []string{"x"})
	if !errors.Is(err, context.Canceled) || st.Requests != 0 || len(m.Embeds()) != 1 {
		t.Errorf("done context: %v, stats %+v, %d requests", err, st, len(m.Embeds()))
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []embed.Options{{Batch: -1}, {BatchTokens: -1}} {
		if err := o.Validate(); !errors.Is(err, embed.ErrOptions) {
			t.Errorf("%+v: got %v, want ErrOptions", o, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("New with invalid options did not panic")
		}
	}()
	embed.New(&llmtest.Model{}, model, nil, &embed.Options{Batch: -1})
}
