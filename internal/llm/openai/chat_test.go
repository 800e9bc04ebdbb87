package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
)

func userChat(model, text string) *llm.ChatRequest {
	return &llm.ChatRequest{Model: model, Messages: []llm.Message{{Role: llm.RoleUser, Content: text}}}
}

// collector is a Stream callback keeping the pieces.
type collector struct{ pieces []string }

func (c *collector) add(ch llm.Chunk) error {
	c.pieces = append(c.pieces, ch.Text)
	return nil
}

func TestChat(t *testing.T) {
	for _, stream := range []bool{false, true} {
		for _, flavor := range []llmtest.Flavor{llmtest.LlamaServer, llmtest.VLLM, llmtest.Generic} {
			t.Run(fmt.Sprintf("%v/stream=%v", flavor, stream), func(t *testing.T) {
				model := llmtest.NewModel(llmtest.Reply{Text: "hello big world", Usage: llm.Usage{PromptTokens: 7, CompletionTokens: 3}})
				fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: model, Flavor: flavor, Models: []string{"tiny"}})
				c := newClient(t, fake.URL, nil)
				req := userChat("tiny", "say hello")
				var got collector
				if stream {
					req.Stream = got.add
				}
				resp, err := c.Chat(t.Context(), req)
				if err != nil {
					t.Fatalf("Chat: %v", err)
				}
				want := &llm.ChatResponse{
					Text: "hello big world", Model: "tiny", FinishReason: "stop",
					Usage: llm.Usage{PromptTokens: 7, CompletionTokens: 3},
				}
				if flavor == llmtest.LlamaServer {
					// The fake's llama-server timings: 1 ms a prompt token, 10 ms a completion token.
					want.Timings = llm.Timings{Total: 37 * time.Millisecond, PromptEval: 7 * time.Millisecond, Eval: 30 * time.Millisecond}
				}
				if resp.Timings.Latency <= 0 {
					t.Errorf("Latency = %v, want > 0", resp.Timings.Latency)
				}
				resp.Timings.Latency = 0
				if diff := cmp.Diff(resp, want); diff != "" {
					t.Errorf("response (-got +want):\n%s", diff)
				}
				var wantPieces []string
				if stream {
					wantPieces = []string{"hello ", "big ", "world"}
				}
				if diff := cmp.Diff(got.pieces, wantPieces); diff != "" {
					t.Errorf("streamed pieces (-got +want):\n%s", diff)
				}
				if diff := cmp.Diff(model.Calls()[0].Messages, req.Messages); diff != "" {
					t.Errorf("messages the model saw (-got +want):\n%s", diff)
				}
			})
		}
	}
}

// wireBody decodes the body of the one chat request the fake received.
func wireBody(t *testing.T, fake *llmtest.OpenAI) map[string]any {
	t.Helper()
	reqs := fake.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/v1/chat/completions" {
		t.Fatalf("requests %v, want one chat", paths(reqs))
	}
	var body map[string]any
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatalf("request body: %v", err)
	}
	return body
}

func TestChatWire(t *testing.T) {
	temp, seed := 0.0, int64(42)
	schema := json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}}}`)
	tests := []struct {
		name string
		req  *llm.ChatRequest
		want map[string]any
	}{{
		name: "bare",
		req:  userChat("tiny", "hi"),
		want: map[string]any{
			"model":    "tiny",
			"messages": []any{map[string]any{"role": "user", "content": "hi"}},
		},
	}, {
		name: "everything",
		req: &llm.ChatRequest{
			Model:    "tiny",
			Messages: []llm.Message{{Role: llm.RoleSystem, Content: "be brief"}, {Role: llm.RoleUser, Content: "hi"}},
			Schema:   schema,
			Options: llm.Options{
				Temperature: &temp, Seed: &seed, MaxTokens: 64, TopK: 40, TopP: 0.9,
				Stop: []string{"\n\n"}, ContextSize: 4096,
			},
			LoRA:   []llm.LoRA{{ID: 1, Scale: 0.5}},
			Stream: func(llm.Chunk) error { return nil },
		},
		want: map[string]any{
			"model": "tiny",
			"messages": []any{
				map[string]any{"role": "system", "content": "be brief"},
				map[string]any{"role": "user", "content": "hi"},
			},
			// Temperature 0 is a value asked for, so it is sent.
			"temperature": 0.0, "seed": 42.0, "max_tokens": 64.0, "top_k": 40.0, "top_p": 0.9,
			"stop":           []any{"\n\n"},
			"stream":         true,
			"stream_options": map[string]any{"include_usage": true},
			"response_format": map[string]any{
				"type": "json_schema",
				"json_schema": map[string]any{
					"name": "answer", "strict": true,
					"schema": map[string]any{"type": "object", "properties": map[string]any{"n": map[string]any{"type": "integer"}}},
				},
			},
			"lora": []any{map[string]any{"id": 1.0, "scale": 0.5}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			model := llmtest.Texts(`{"n":1}`)
			fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: model, Adapters: []string{"a.gguf", "b.gguf"}})
			c := newClient(t, fake.URL, nil)
			if _, err := c.Chat(t.Context(), tt.req); err != nil {
				t.Fatalf("Chat: %v", err)
			}
			if diff := cmp.Diff(wireBody(t, fake), tt.want); diff != "" {
				t.Errorf("body on the wire (-got +want):\n%s", diff)
			}
			// The fake translated it back for the model.
			got := model.Calls()[0]
			if diff := cmp.Diff(string(got.Schema), string(tt.req.Schema)); diff != "" {
				t.Errorf("schema the model saw (-got +want):\n%s", diff)
			}
			wantOpts := tt.req.Options
			wantOpts.ContextSize = 0 // not part of the API
			if diff := cmp.Diff(got.Options, wantOpts); diff != "" {
				t.Errorf("options the model saw (-got +want):\n%s", diff)
			}
		})
	}
}

func TestChatHeaders(t *testing.T) {
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("a", "b")})
	c := newClient(t, fake.URL, &Options{APIKey: "sekrit"})
	if _, err := c.Chat(t.Context(), userChat("m", "hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Chat(t.Context(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{{Role: "user", Content: "x"}}, Stream: func(llm.Chunk) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	reqs := fake.Requests()
	for i, wantAccept := range []string{"application/json", "text/event-stream"} {
		h := reqs[i].Header
		got := []string{h.Get("Authorization"), h.Get("Content-Type"), h.Get("Accept")}
		if diff := cmp.Diff(got, []string{"Bearer sekrit", "application/json", wantAccept}); diff != "" {
			t.Errorf("request %d headers (-got +want):\n%s", i, diff)
		}
	}
}

func TestChatAPIKey(t *testing.T) {
	tests := []struct {
		flavor  llmtest.Flavor
		message string
		code    string
	}{
		{llmtest.LlamaServer, "Invalid API Key", "401"},
		{llmtest.VLLM, "Unauthorized", ""}, // vLLM's {"error": "Unauthorized"}
		{llmtest.Generic, "Incorrect API key provided.", "invalid_api_key"},
	}
	for _, tt := range tests {
		t.Run(tt.flavor.String(), func(t *testing.T) {
			fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("ok"), Flavor: tt.flavor, APIKey: "sekrit"})
			for _, key := range []string{"", "wrong"} {
				_, err := newClient(t, fake.URL, &Options{APIKey: key}).Chat(t.Context(), userChat("default", "hi"))
				api := asAPIError(t, err)
				if api.Status != http.StatusUnauthorized || api.Message != tt.message || api.Code != tt.code {
					t.Errorf("key %q: got %d %q code %q, want 401 %q code %q", key, api.Status, api.Message, api.Code, tt.message, tt.code)
				}
			}
			if _, err := newClient(t, fake.URL, &Options{APIKey: "sekrit"}).Chat(t.Context(), userChat("default", "hi")); err != nil {
				t.Errorf("with the key: %v", err)
			}
		})
	}
}

func TestChatStreamAnsweredWithJSON(t *testing.T) {
	url := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"all at once"},"finish_reason":"length"}],"usage":{"prompt_tokens":2,"completion_tokens":3}}`)
	})
	var got collector
	req := userChat("m", "hi")
	req.Stream = got.add
	resp, err := newClient(t, url, nil).Chat(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got.pieces, []string{"all at once"}); diff != "" {
		t.Errorf("pieces (-got +want):\n%s", diff)
	}
	if resp.Text != "all at once" || resp.FinishReason != "length" || resp.Usage.CompletionTokens != 3 {
		t.Errorf("got %+v", resp)
	}
}

func TestChatStreamCallbackError(t *testing.T) {
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("one two three")})
	c := newClient(t, fake.URL, nil)
	// An error that would be transient if it came from the server: the
	// chat must still not be retried, as a piece was delivered.
	stop := fmt.Errorf("consumer gone: %w", syscall.ECONNREFUSED)
	req := userChat("m", "hi")
	calls := 0
	req.Stream = func(llm.Chunk) error {
		calls++
		return stop
	}
	_, err := c.Chat(t.Context(), req)
	if !errors.Is(err, stop) {
		t.Fatalf("got %v, want the callback's error", err)
	}
	if calls != 1 || len(fake.Requests()) != 1 {
		t.Errorf("callback called %d times over %d requests, want 1 and 1", calls, len(fake.Requests()))
	}
}

// blockingModel streams one piece, then waits for its context to end.
type blockingModel struct{ llmtest.Model }

func (m *blockingModel) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	if req.Stream != nil {
		if err := req.Stream(llm.Chunk{Text: "first "}); err != nil {
			return nil, err
		}
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestChatCancel(t *testing.T) {
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: &blockingModel{}})
	c := newClient(t, fake.URL, nil)
	for _, stream := range []bool{false, true} {
		ctx, cancel := context.WithCancel(t.Context())
		req := userChat("m", "hi")
		if stream {
			// Cancel once the first piece has arrived.
			req.Stream = func(llm.Chunk) error { cancel(); return nil }
		} else {
			// Cancel once the server has the request: a fixed delay may
			// end before a loaded machine sent it.
			before := len(fake.Requests())
			go func() {
				for deadline := time.Now().Add(10 * time.Second); len(fake.Requests()) == before && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				cancel()
			}()
		}
		start := time.Now()
		_, err := c.Chat(ctx, req)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("stream=%v: got %v, want context.Canceled", stream, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("stream=%v: Chat returned after %v", stream, d)
		}
		cancel()
	}
	if n := len(fake.Requests()); n != 2 {
		t.Errorf("%d requests, want 2 (no retries after cancel)", n)
	}
}

func TestChatTimeout(t *testing.T) {
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: &blockingModel{}})
	c := newClient(t, fake.URL, &Options{Timeout: 50 * time.Millisecond})
	_, err := c.Chat(t.Context(), userChat("m", "hi"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want context.DeadlineExceeded", err)
	}
}

func TestChatNil(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", nil)
	if _, err := c.Chat(t.Context(), nil); err == nil {
		t.Error("Chat(nil) succeeded")
	}
	if _, err := c.Chat(t.Context(), &llm.ChatRequest{Schema: json.RawMessage("{not json")}); err == nil {
		t.Error("Chat with a malformed schema succeeded")
	}
}
