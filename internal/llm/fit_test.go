package llm_test

import (
	"errors"
	"strings"
	"testing"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
)

func TestEstimateTokensOvercounts(t *testing.T) {
	for _, text := range []string{"", "hi", strings.Repeat("word ", 2000), strings.Repeat("x", 9001), "def f(self):\n\treturn {'a': [1, 2]}\n"} {
		msgs := []llm.Message{{Role: llm.RoleSystem, Content: "You are BRICK."}, {Role: llm.RoleUser, Content: text}}
		if est, fake := llm.EstimateTokens(msgs), llmtest.PromptTokens(msgs); est < fake {
			t.Errorf("%d bytes: estimate %d, want at least the fake servers' count %d", len(text), est, fake)
		}
	}
	// 3,000 bytes are about 1,000 tokens, plus the template's markers.
	if got := llm.EstimateTokens([]llm.Message{{Content: strings.Repeat("a", 3000)}}); got != 1016 {
		t.Errorf("estimate of 3000 bytes: got %d, want 1016", got)
	}
}

func TestWindowFor(t *testing.T) {
	tests := []struct {
		name              string
		need, limit, want int
	}{
		{"small prompt gets Ollama's default", 100, 0, 2048},
		{"exactly the default", 2048, 131072, 2048},
		{"rounded up to a power of two", 3000, 131072, 4096},
		{"capped at the model's length", 9000, 12000, 12000},
		{"unknown length: uncapped", 70000, 0, 131072},
		{"model smaller than the default", 100, 1024, 1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := llm.WindowFor(tt.need, tt.limit); got != tt.want {
				t.Errorf("WindowFor(%d, %d) = %d, want %d", tt.need, tt.limit, got, tt.want)
			}
		})
	}
}

func TestFitErrors(t *testing.T) {
	long := &llm.PromptTooLongError{Model: "m", Prompt: 6300, Answer: 1024, Context: 4096}
	if !errors.Is(long, llm.ErrPromptTooLong) || !strings.Contains(long.Error(), "about 6300 tokens") || !strings.Contains(long.Error(), "context of 4096 tokens") {
		t.Errorf("got %q, want the prompt's size and the context, wrapping ErrPromptTooLong", long)
	}
	cut := &llm.CutError{Model: "m", Reason: llm.FinishLength, Tokens: 1024, Budget: 1024, Asks: 2}
	if !errors.Is(cut, llm.ErrAnswerCut) || !strings.Contains(cut.Error(), "cut at 1024 tokens") || !strings.Contains(cut.Error(), "2 asks") {
		t.Errorf("got %q, want where it was cut, wrapping ErrAnswerCut", cut)
	}
	guard := &llm.CutError{Model: "m", Reason: llm.FinishAborted, Budget: 512}
	if !strings.Contains(guard.Error(), "repetition guard") {
		t.Errorf("got %q, want it to name the repetition guard", guard)
	}
}
