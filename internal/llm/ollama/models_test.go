package ollama_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/llm/ollama"
)

// push stores content as a blob and returns its "sha256:<hex>".
func push(t testing.TB, c *ollama.Client, content []byte) string {
	t.Helper()
	opens := 0
	d := digestOf(content)
	if err := c.PushBlob(context.Background(), d, opener(content, &opens), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	return "sha256:" + d
}

func TestCreate(t *testing.T) {
	o := newFake(t, llmtest.Texts("in character"))
	c := newClient(t, o.URL)
	ctx := t.Context()
	weights := push(t, c, []byte("GGUF base"))
	adapter := push(t, c, []byte("GGUF adapter"))

	req := &llm.CreateRequest{
		Model:      "persona-ada",
		Files:      map[string]string{"base.gguf": weights},
		Adapters:   map[string]string{"ada.gguf": adapter},
		System:     "You are Ada.",
		Parameters: map[string]any{"temperature": 0.2, "num_ctx": 4096, "stop": []string{"<|eot|>"}},
	}
	if err := c.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	got, ok := o.Created("persona-ada")
	want := llmtest.CreateRecord{
		Name: "persona-ada:latest", Files: req.Files, Adapters: req.Adapters, System: req.System,
		Parameters: map[string]any{"temperature": json.Number("0.2"), "num_ctx": json.Number("4096"), "stop": []any{"<|eot|>"}},
	}
	if diff := cmp.Diff(got, want); !ok || diff != "" {
		t.Errorf("created %v (-got +want):\n%s", ok, diff)
	}
	if s := lastBody(t, o, "/api/create")["stream"]; s != true {
		t.Errorf("got stream %v, want true: status lines are read", s)
	}
	resp, err := c.Chat(ctx, &llm.ChatRequest{Model: "persona-ada", Messages: user("hi")})
	if err != nil || resp.Text != "in character" {
		t.Errorf("chat with the new model: got %+v, %v", resp, err)
	}
	tags, err := c.Tags(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tag := range tags {
		names = append(names, tag.Name)
		if tag.Digest == "" || tag.ModifiedAt.IsZero() {
			t.Errorf("tag %+v lacks a digest or a time", tag)
		}
	}
	if diff := cmp.Diff(names, []string{base, "persona-ada:latest"}); diff != "" {
		t.Errorf("tags (-got +want):\n%s", diff)
	}
}

func TestCreateFrom(t *testing.T) {
	o := newFake(t, llmtest.Texts())
	c := newClient(t, o.URL)
	if err := c.Create(t.Context(), &llm.CreateRequest{Model: "calm", From: base, System: "Be calm."}); err != nil {
		t.Fatal(err)
	}
	if got, ok := o.Created("calm:latest"); !ok || got.From != base || got.System != "Be calm." {
		t.Errorf("got %+v, %v", got, ok)
	}
	err := c.Create(t.Context(), &llm.CreateRequest{Model: "x", From: "missing"})
	if !errors.Is(err, llm.ErrModelNotFound) {
		t.Errorf("create from a missing model: got %v, want ErrModelNotFound", err)
	}
}

func TestCreateRefusals(t *testing.T) {
	o := newFake(t, llmtest.Texts())
	c := newClient(t, o.URL)
	a, b := "sha256:"+digestOf([]byte("a")), "sha256:"+digestOf([]byte("b"))
	tests := []struct {
		name string
		req  llm.CreateRequest
		is   error
	}{
		{name: "two adapters", req: llm.CreateRequest{Model: "m", From: base, Adapters: map[string]string{"a.gguf": a, "b.gguf": b}}, is: llm.ErrUnsupported},
		{name: "no name", req: llm.CreateRequest{From: base}},
		{name: "no source", req: llm.CreateRequest{Model: "m"}},
		{name: "bad digest", req: llm.CreateRequest{Model: "m", Files: map[string]string{"m.gguf": "sha256:xyz"}}},
		{name: "digest without algorithm", req: llm.CreateRequest{Model: "m", Files: map[string]string{"m.gguf": digestOf(nil)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Create(t.Context(), &tt.req)
			if err == nil || tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("got %v, want an error (wrapping %v)", err, tt.is)
			}
		})
	}
	if n := len(o.Requests()); n != 0 {
		t.Errorf("got %d requests, want none", n)
	}
}

func TestCreateServerErrors(t *testing.T) {
	o := newFake(t, llmtest.Texts())
	c := newClient(t, o.URL)
	missing := "sha256:" + digestOf([]byte("never pushed"))
	err := c.Create(t.Context(), &llm.CreateRequest{Model: "m", Files: map[string]string{"m.gguf": missing}})
	if api := apiError(t, err); api.Status != 400 || api.Message == "" {
		t.Errorf("unknown blob: got %+v, want 400 with the server's message", api)
	}

	o.ErrorMidStream(1, "disk full")
	err = c.Create(t.Context(), &llm.CreateRequest{Model: "m", From: base})
	if api := apiError(t, err); !api.InStream || api.Message != "disk full" {
		t.Errorf("error in the status lines: got %+v", api)
	}
	o.CutStreamAfter(1)
	if err := c.Create(t.Context(), &llm.CreateRequest{Model: "m", From: base}); !errors.Is(err, llm.ErrBadResponse) {
		t.Errorf("status lines cut: got %v, want ErrBadResponse", err)
	}
}

// Ollama takes any adapter at create time; the model then fails to load.
func TestBadAdapter(t *testing.T) {
	misfit := errors.New("tensor blk.0.attn_q.weight.lora_a: width 32, base 64")
	o := llmtest.NewOllama(t, &llmtest.OllamaOptions{
		Responder: llmtest.Texts("never"),
		Models:    []string{base},
		AdapterFits: func(base, adapter []byte) error {
			if string(base) != "GGUF base" {
				t.Errorf("AdapterFits got base %q", base)
			}
			if string(adapter) == "GGUF misfit" {
				return misfit
			}
			return nil
		},
	})
	c := newClient(t, o.URL)
	ctx := t.Context()
	req := &llm.CreateRequest{
		Model: "bad", Files: map[string]string{"base.gguf": push(t, c, []byte("GGUF base"))},
		Adapters: map[string]string{"misfit.gguf": push(t, c, []byte("GGUF misfit"))},
	}
	if err := c.Create(ctx, req); err != nil {
		t.Fatalf("create: got %v, want success (Ollama does not check)", err)
	}
	if rec, _ := o.Created("bad"); !errors.Is(rec.AdapterErr, misfit) {
		t.Errorf("got adapter error %v recorded, want %v", rec.AdapterErr, misfit)
	}
	check := func(what string, err error) {
		t.Helper()
		if api := apiError(t, err); api.Status != 500 || api.Message == "" || llm.Transient(err) {
			t.Errorf("%s: got %+v, want a 500 with the server's message, not transient", what, api)
		}
	}
	check("warm-up", c.Load(ctx, "bad", time.Minute))
	_, err := c.Chat(ctx, &llm.ChatRequest{Model: "bad", Messages: user("hi")})
	check("chat", err)
	if n := o.ChatCount("bad"); n != 1 {
		t.Errorf("got %d chats, want 1", n)
	}
}

func TestDelete(t *testing.T) {
	o := newFake(t, llmtest.Texts())
	c := newClient(t, o.URL)
	ctx := t.Context()
	if err := c.Delete(ctx, base); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(lastBody(t, o, "/api/delete"), map[string]any{"model": base}); diff != "" {
		t.Errorf("delete body (-got +want):\n%s", diff)
	}
	err := c.Delete(ctx, base)
	if !errors.Is(err, llm.ErrModelNotFound) {
		t.Errorf("second delete: got %v, want ErrModelNotFound", err)
	}
	if api := apiError(t, err); api.Status != 404 || api.Message != "model '"+base+"' not found" {
		t.Errorf("got %+v, want the server's 404", api)
	}
	if tags, err := c.Tags(ctx); err != nil || len(tags) != 0 {
		t.Errorf("got tags %+v, %v; want none", tags, err)
	}
}

func TestVersion(t *testing.T) {
	o := newFake(t, llmtest.Texts())
	v, err := newClient(t, o.URL).Version(t.Context())
	if err != nil || v != llmtest.OllamaVersion {
		t.Errorf("got %q, %v; want %q", v, err, llmtest.OllamaVersion)
	}
}

func TestEmbed(t *testing.T) {
	model := &llmtest.Model{Dim: 8}
	o := newFake(t, model)
	c := newClient(t, o.URL)
	resp, err := c.Embed(t.Context(), &llm.EmbedRequest{Model: base, Input: []string{"a cat", "a dog"}})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]float32{llmtest.HashVector("a cat", 8), llmtest.HashVector("a dog", 8)}
	if diff := cmp.Diff(resp.Vectors, want); diff != "" {
		t.Errorf("vectors (-got +want):\n%s", diff)
	}
	if resp.Model != base || resp.Usage.PromptTokens != 4 || resp.Timings.Load != llmtest.OllamaLoadTime || resp.Timings.Latency <= 0 {
		t.Errorf("got %+v", resp)
	}
	if _, err := c.Embed(t.Context(), &llm.EmbedRequest{Model: "nope", Input: []string{"x"}}); !errors.Is(err, llm.ErrModelNotFound) {
		t.Errorf("unknown model: got %v, want ErrModelNotFound", err)
	}
}

// shortEmbedder drops the last vector.
type shortEmbedder struct{ llmtest.Model }

func (m *shortEmbedder) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	resp, err := m.Model.Embed(ctx, req)
	if err != nil {
		return nil, err
	}
	resp.Vectors = resp.Vectors[:len(resp.Vectors)-1]
	return resp, nil
}

func TestEmbedCountMismatch(t *testing.T) {
	o := newFake(t, &shortEmbedder{})
	_, err := newClient(t, o.URL).Embed(t.Context(), &llm.EmbedRequest{Model: base, Input: []string{"a", "b", "c"}})
	if !errors.Is(err, llm.ErrBadResponse) {
		t.Errorf("got %v, want ErrBadResponse", err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		url, want string
		ok        bool
	}{
		{"", ollama.DefaultURL, true},
		{"http://gpu-box:11434/", "http://gpu-box:11434", true},
		{"https://proxy.example/ollama/", "https://proxy.example/ollama", true},
		{"ftp://host", "", false},
		{"http://", "", false},
		{"localhost:11434", "", false},
		{"http://host/?q=1", "", false},
	}
	for _, tt := range tests {
		c, err := ollama.New(tt.url, nil)
		if (err == nil) != tt.ok || err == nil && c.URL() != tt.want {
			t.Errorf("New(%q): got %v; want ok %v, %q", tt.url, err, tt.ok, tt.want)
		}
	}
	if _, err := ollama.New("", &ollama.Options{Timeout: -1}); err == nil {
		t.Error("a negative timeout was accepted")
	}
}
