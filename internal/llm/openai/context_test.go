package openai

import (
	"errors"
	"strings"
	"testing"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
)

func TestContextLength(t *testing.T) {
	tests := []struct {
		flavor llmtest.Flavor
		want   int
	}{
		{llmtest.LlamaServer, 8192}, // GET /props
		{llmtest.VLLM, 8192},        // max_model_len
		{llmtest.Generic, 0},        // says nothing: unknown
	}
	for _, tt := range tests {
		fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Flavor: tt.flavor, Models: []string{"tiny"}, ContextLength: 8192})
		got, err := newClient(t, fake.URL, nil).ContextLength(t.Context(), "tiny")
		if err != nil || got != tt.want {
			t.Errorf("%v: got %d, %v, want %d", tt.flavor, got, err, tt.want)
		}
	}
}

// TestChatExceedsContext: llama-server refuses a prompt longer than its
// context; the client says so with a PromptTooLongError.
func TestChatExceedsContext(t *testing.T) {
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Flavor: llmtest.LlamaServer, ContextLength: 1024})
	req := userChat("tiny", strings.Repeat("word ", 1000))
	req.Options.MaxTokens = 256
	_, err := newClient(t, fake.URL, nil).Chat(t.Context(), req)
	var ptl *llm.PromptTooLongError
	if !errors.As(err, &ptl) || !ptl.Server || ptl.Context != 1024 || ptl.Prompt != 1254 || ptl.Model != "tiny" || ptl.Answer != 256 {
		t.Fatalf("got %v (%+v), want a PromptTooLongError with the server's counts", err, ptl)
	}
	if api := asAPIError(t, err); api.Status != 400 || api.Type != "exceed_context_size_error" {
		t.Errorf("API error %+v, want llama-server's 400", api)
	}
}

// TestChatMaxTokens: an answer that reaches max_tokens ends with
// finish_reason "length", cut.
func TestChatMaxTokens(t *testing.T) {
	for _, stream := range []bool{false, true} {
		fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("one two three four five"), Flavor: llmtest.Generic})
		req := userChat("tiny", "count")
		req.Options.MaxTokens = 2
		var got collector
		if stream {
			req.Stream = got.add
		}
		resp, err := newClient(t, fake.URL, nil).Chat(t.Context(), req)
		if err != nil {
			t.Fatalf("stream=%v: %v", stream, err)
		}
		if !resp.Cut() || resp.FinishReason != llm.FinishLength || resp.Text != "one two " || resp.Usage.CompletionTokens != 2 {
			t.Errorf("stream=%v: got %+v, want 2 tokens cut for length", stream, resp)
		}
	}
}
