package ollama_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
)

func TestChat(t *testing.T) {
	model := llmtest.NewModel(llmtest.Reply{Text: "hello there", Usage: llm.Usage{PromptTokens: 7, CompletionTokens: 3}})
	o := newFake(t, model)
	c := newClient(t, o.URL)

	resp, err := c.Chat(t.Context(), &llm.ChatRequest{Model: base, Messages: user("hi")})
	if err != nil {
		t.Fatal(err)
	}
	want := &llm.ChatResponse{
		Text: "hello there", Model: base, FinishReason: "stop",
		Usage: llm.Usage{PromptTokens: 7, CompletionTokens: 3},
		Timings: llm.Timings{
			Load:       llmtest.OllamaLoadTime,
			PromptEval: 7 * llmtest.OllamaPromptTokenTime,
			Eval:       3 * llmtest.OllamaTokenTime,
		},
	}
	if resp.Timings.Latency <= 0 || resp.Timings.Total < want.Timings.Load+want.Timings.PromptEval+want.Timings.Eval {
		t.Errorf("timings %+v: want a latency and a total covering the parts", resp.Timings)
	}
	resp.Timings.Latency, resp.Timings.Total = 0, 0
	if diff := cmp.Diff(resp, want); diff != "" {
		t.Errorf("response (-got +want):\n%s", diff)
	}
	wire := lastBody(t, o, "/api/chat")
	wantWire := map[string]any{
		"model": base, "stream": false,
		"messages": []any{map[string]any{"role": "user", "content": "hi"}},
	}
	if diff := cmp.Diff(wire, wantWire); diff != "" {
		t.Errorf("request body (-got +want):\n%s", diff)
	}
}

func TestChatStream(t *testing.T) {
	model := llmtest.NewModel(llmtest.Reply{Text: "one two three", Chunks: []string{"one ", "two ", "three"}})
	o := newFake(t, model)
	c := newClient(t, o.URL)

	var pieces []string
	resp, err := c.Chat(t.Context(), &llm.ChatRequest{Model: base, Messages: user("count"), Stream: collect(&pieces)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(pieces, []string{"one ", "two ", "three"}); diff != "" {
		t.Errorf("pieces (-got +want):\n%s", diff)
	}
	if resp.Text != "one two three" || resp.FinishReason != "stop" || resp.Usage.CompletionTokens != 3 {
		t.Errorf("got %+v, want the whole text, stop and 3 completion tokens", resp)
	}
	if resp.Timings.Eval != 3*llmtest.OllamaTokenTime {
		t.Errorf("got eval time %v, want %v", resp.Timings.Eval, 3*llmtest.OllamaTokenTime)
	}
	if got := lastBody(t, o, "/api/chat")["stream"]; got != true {
		t.Errorf("got stream %v on the wire, want true", got)
	}
}

func TestChatSchema(t *testing.T) {
	model := llmtest.Texts(`{"mood":"calm"}`)
	o := newFake(t, model)
	c := newClient(t, o.URL)
	schema := json.RawMessage(`{"type":"object","properties":{"mood":{"type":"string"}},"required":["mood"]}`)

	resp, err := c.Chat(t.Context(), &llm.ChatRequest{Model: base, Messages: user("mood?"), Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != `{"mood":"calm"}` {
		t.Errorf("got text %q", resp.Text)
	}
	var want any
	if err := json.Unmarshal(schema, &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(lastBody(t, o, "/api/chat")["format"], want); diff != "" {
		t.Errorf("format on the wire (-got +want):\n%s", diff)
	}
	if got := model.Calls()[0].Schema; string(got) != string(schema) {
		t.Errorf("the model got schema %s, want %s", got, schema)
	}
}

func ptr[T any](v T) *T { return &v }

func TestChatOptions(t *testing.T) {
	tests := []struct {
		name string
		opts llm.Options
		wire map[string]any // nil: no options object
	}{
		{name: "none"},
		{
			name: "zero temperature and seed",
			opts: llm.Options{Temperature: ptr(0.0), Seed: ptr(int64(0))},
			wire: map[string]any{"temperature": 0.0, "seed": 0.0},
		},
		{
			name: "all",
			opts: llm.Options{
				Temperature: ptr(0.7), Seed: ptr(int64(42)), MaxTokens: 64, TopK: 40, TopP: 0.9,
				Stop: []string{"\n\n"}, ContextSize: 4096,
			},
			wire: map[string]any{
				"temperature": 0.7, "seed": 42.0, "num_predict": 64.0, "top_k": 40.0, "top_p": 0.9,
				"stop": []any{"\n\n"}, "num_ctx": 4096.0,
			},
		},
		{
			name: "large seed",
			opts: llm.Options{Seed: ptr(int64(1<<62 + 1))},
			wire: map[string]any{"seed": float64(1<<62 + 1)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			model := llmtest.Texts("ok")
			o := newFake(t, model)
			c := newClient(t, o.URL)
			if _, err := c.Chat(t.Context(), &llm.ChatRequest{Model: base, Messages: user("hi"), Options: tt.opts}); err != nil {
				t.Fatal(err)
			}
			got, ok := lastBody(t, o, "/api/chat")["options"]
			if tt.wire == nil && ok {
				t.Errorf("got options %v on the wire, want none", got)
			}
			if tt.wire != nil {
				if diff := cmp.Diff(got, any(tt.wire)); diff != "" {
					t.Errorf("options on the wire (-got +want):\n%s", diff)
				}
			}
			// The fake maps them back: the model sees what was asked, to the bit.
			if diff := cmp.Diff(model.Calls()[0].Options, tt.opts); diff != "" {
				t.Errorf("options the model got (-got +want):\n%s", diff)
			}
		})
	}
}

func TestChatKeepAlive(t *testing.T) {
	tests := []struct {
		keep time.Duration
		wire float64
	}{
		{90 * time.Second, 90},
		{1500 * time.Millisecond, 1.5},
		{-time.Second, -1},
		{0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.keep.String(), func(t *testing.T) {
			o := newFake(t, llmtest.Texts("ok"))
			c := newClient(t, o.URL)
			_, err := c.Chat(t.Context(), &llm.ChatRequest{Model: base, Messages: user("hi"), KeepAlive: &tt.keep})
			if err != nil {
				t.Fatal(err)
			}
			if got := lastBody(t, o, "/api/chat")["keep_alive"]; got != tt.wire {
				t.Errorf("got keep_alive %v on the wire, want %v", got, tt.wire)
			}
			ps, err := c.PS(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if loaded := len(ps) == 1; loaded != (tt.keep != 0) {
				t.Errorf("got loaded models %+v after keep_alive %v", ps, tt.keep)
			}
		})
	}
}

func TestChatRefusals(t *testing.T) {
	o := newFake(t, llmtest.Texts())
	c := newClient(t, o.URL)
	tests := []struct {
		name string
		req  llm.ChatRequest
		is   error
	}{
		{name: "lora", req: llm.ChatRequest{Model: base, Messages: user("hi"), LoRA: []llm.LoRA{{ID: 0, Scale: 1}}}, is: llm.ErrUnsupported},
		{name: "no messages", req: llm.ChatRequest{Model: base}},
		{name: "no model", req: llm.ChatRequest{Messages: user("hi")}},
		{name: "bad schema", req: llm.ChatRequest{Model: base, Messages: user("hi"), Schema: json.RawMessage(`{"type":`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Chat(t.Context(), &tt.req)
			if err == nil || tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("got %v, want an error (wrapping %v)", err, tt.is)
			}
		})
	}
	if n := len(o.Requests()); n != 0 {
		t.Errorf("got %d requests, want none", n)
	}
}

// Durations are integer nanoseconds: beyond 2^53 they must not pass
// through a float64.
func TestChatLargeCounts(t *testing.T) {
	const big = 1<<53 + 1
	url := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"model":"m","message":{"role":"assistant","content":"x"},"done":true,"done_reason":"length",`+
			`"total_duration":%d,"load_duration":%d,"prompt_eval_duration":1,"eval_duration":2,"prompt_eval_count":3,"eval_count":4}`, int64(big), int64(big-1))
	})
	resp, err := newClient(t, url).Chat(t.Context(), &llm.ChatRequest{Model: "m", Messages: user("hi")})
	if err != nil {
		t.Fatal(err)
	}
	want := llm.Timings{Latency: resp.Timings.Latency, Total: big, Load: big - 1, PromptEval: 1, Eval: 2}
	if resp.Timings != want || resp.FinishReason != "length" || resp.Usage != (llm.Usage{PromptTokens: 3, CompletionTokens: 4}) {
		t.Errorf("got %+v, want timings %+v, length, usage 3/4", resp, want)
	}
}

func TestLoadUnload(t *testing.T) {
	o := newFake(t, llmtest.Texts())
	c := newClient(t, o.URL)
	ctx := t.Context()
	before := time.Now()
	if err := c.Load(ctx, base, time.Hour); err != nil {
		t.Fatal(err)
	}
	ps, err := c.PS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Name != base || ps[0].SizeVRAM == 0 ||
		ps[0].ExpiresAt.Before(before.Add(time.Hour)) || ps[0].ExpiresAt.After(time.Now().Add(time.Hour)) {
		t.Fatalf("got ps %+v, want %s loaded for an hour", ps, base)
	}
	if err := c.Load(ctx, base, -1); err != nil {
		t.Fatal(err)
	}
	if ps, err = c.PS(ctx); err != nil || len(ps) != 1 || ps[0].ExpiresAt.Before(time.Now().AddDate(50, 0, 0)) {
		t.Fatalf("got ps %+v, %v; want %s loaded for good", ps, err, base)
	}
	if err := c.Unload(ctx, base); err != nil {
		t.Fatal(err)
	}
	if ps, err = c.PS(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("got ps %+v, %v; want nothing loaded", ps, err)
	}
	if got := o.ChatCount(base); got != 0 {
		t.Errorf("got %d chats counted, want loads not counted", got)
	}
	body := lastBody(t, o, "/api/chat")
	if diff := cmp.Diff(body, map[string]any{"model": base, "messages": []any{}, "stream": false, "keep_alive": 0.0}); diff != "" {
		t.Errorf("unload body (-got +want):\n%s", diff)
	}
	if err := c.Load(ctx, "nope", time.Minute); !errors.Is(err, llm.ErrModelNotFound) {
		t.Errorf("load of a missing model: got %v, want ErrModelNotFound", err)
	}
}
