package ollama_test

import (
	"errors"
	"strings"
	"testing"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/llm/ollama"
)

func TestContextLength(t *testing.T) {
	o := llmtest.NewOllama(t, &llmtest.OllamaOptions{Models: []string{base}, ContextLength: 32768})
	c := newClient(t, o.URL)
	n, err := c.ContextLength(t.Context(), base)
	if err != nil || n != 32768 {
		t.Fatalf("ContextLength: got %d, %v, want 32768", n, err)
	}
	if got := lastBody(t, o, "/api/show")["model"]; got != base {
		t.Errorf("show asked for %v, want %s", got, base)
	}
	if _, err := c.ContextLength(t.Context(), "nothere"); !errors.Is(err, llm.ErrModelNotFound) {
		t.Errorf("unknown model: got %v, want ErrModelNotFound", err)
	}
}

// TestChatPromptCut: Ollama cuts a prompt longer than num_ctx and counts
// the window as its prompt; the client refuses such an answer rather
// than return what a model said to part of its prompt.
func TestChatPromptCut(t *testing.T) {
	o := newFake(t, llmtest.Texts("ok", "ok"))
	c := newClient(t, o.URL)
	long := user(strings.Repeat("word ", 2000)) // 2,504 tokens by the fake's count
	_, err := c.Chat(t.Context(), &llm.ChatRequest{Model: base, Messages: long, Options: llm.Options{ContextSize: 2048, MaxTokens: 100}})
	var ptl *llm.PromptTooLongError
	if !errors.As(err, &ptl) || !errors.Is(err, llm.ErrPromptTooLong) || !ptl.Server || ptl.Context != 2048 || ptl.Prompt != 2048 || ptl.Model != base {
		t.Fatalf("got %v (%+v), want a PromptTooLongError from the server's count", err, ptl)
	}
	if cuts := o.PromptCuts(); len(cuts) != 1 || cuts[0].NumCtx != 2048 || cuts[0].Tokens != 2504 {
		t.Errorf("fake's cuts: %+v, want one of 2504 tokens to 2048", cuts)
	}
	// A window that holds it: no cut.
	resp, err := c.Chat(t.Context(), &llm.ChatRequest{Model: base, Messages: long, Options: llm.Options{ContextSize: 4096}})
	if err != nil || resp.Text != "ok" {
		t.Fatalf("with num_ctx 4096: got %+v, %v", resp, err)
	}
	if got := lastBody(t, o, "/api/chat")["options"].(map[string]any)["num_ctx"]; got != 4096.0 {
		t.Errorf("num_ctx sent: %v, want 4096", got)
	}
	if n := len(o.PromptCuts()); n != 1 {
		t.Errorf("%d cuts, want still 1", n)
	}
}

// TestChatLength: an answer that reaches num_predict ends with
// done_reason "length", cut.
func TestChatLength(t *testing.T) {
	for _, stream := range []bool{false, true} {
		o := newFake(t, llmtest.Texts("one two three four five"))
		req := &llm.ChatRequest{Model: base, Messages: user("count"), Options: llm.Options{MaxTokens: 3}}
		var pieces []string
		if stream {
			req.Stream = collect(&pieces)
		}
		resp, err := newClient(t, o.URL).Chat(t.Context(), req)
		if err != nil {
			t.Fatalf("stream=%v: %v", stream, err)
		}
		if !resp.Cut() || resp.FinishReason != llm.FinishLength || resp.Text != "one two three " || resp.Usage.CompletionTokens != 3 {
			t.Errorf("stream=%v: got %+v, want the first 3 tokens, cut for length", stream, resp)
		}
		if stream && strings.Join(pieces, "") != resp.Text {
			t.Errorf("streamed %q, want %q", pieces, resp.Text)
		}
	}
}

// TestChatRepetitionGuard: Ollama's repetition guard answers 200 with
// "done": false and a cut text; the client returns the cut answer, not
// a bad response.
func TestChatRepetitionGuard(t *testing.T) {
	for _, stream := range []bool{false, true} {
		o := newFake(t, llmtest.Texts("la la la la la la", "fine"))
		c := newClient(t, o.URL)
		o.RepetitionGuardNext(2)
		req := &llm.ChatRequest{Model: base, Messages: user("sing")}
		var pieces []string
		if stream {
			req.Stream = collect(&pieces)
		}
		resp, err := c.Chat(t.Context(), req)
		if err != nil {
			t.Fatalf("stream=%v: %v, want the cut answer", stream, err)
		}
		if resp.FinishReason != llm.FinishAborted || !resp.Cut() || resp.Text != "la la " || resp.Model != base {
			t.Errorf("stream=%v: got %+v, want the first 2 tokens, aborted", stream, resp)
		}
		if o.ChatCount(base) != 1 {
			t.Errorf("%d chats, want 1: a cut answer is not retried by the client", o.ChatCount(base))
		}
		// The guard is spent.
		if resp, err := c.Chat(t.Context(), &llm.ChatRequest{Model: base, Messages: user("again")}); err != nil || resp.FinishReason != llm.FinishStop {
			t.Errorf("next chat: %+v, %v", resp, err)
		}
	}
}

var _ llm.ContextReporter = (*ollama.Client)(nil)
