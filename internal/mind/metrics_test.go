package mind

import (
	"testing"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/metrics/metricstest"
)

// TestMetricsCountModelCalls asks once with success and once with a
// server error, and checks the scrape's calls, tokens and latencies.
func TestMetricsCountModelCalls(t *testing.T) {
	db, _ := testImage(t)
	client := llmtest.NewModel(
		llmtest.Reply{Text: "fine", Usage: llm.Usage{PromptTokens: 12, CompletionTokens: 5}},
		llmtest.Reply{Err: &llm.APIError{Op: "POST /v1/chat/completions", Status: 500, Message: "out of memory"}},
	)
	m := New(db, &Server{API: APIOpenAI, DefaultModel: "metrics-model", Client: client}, nil)
	before := metricstest.Take(t)
	for i := range 2 {
		if _, err := m.Ask(t.Context(), Request{Persona: "ROBIN", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hello"}}}); (err != nil) != (i == 1) {
			t.Fatalf("ask %d: %v", i, err)
		}
	}
	d := metricstest.Take(t).Sub(before)
	for series, want := range map[string]float64{
		`batos_model_calls_total{model="metrics-model",outcome="ok",persona="ROBIN"}`:       1,
		`batos_model_calls_total{model="metrics-model",outcome="error",persona="ROBIN"}`:    1,
		`batos_model_tokens_total{kind="prompt",model="metrics-model",persona="ROBIN"}`:     12,
		`batos_model_tokens_total{kind="completion",model="metrics-model",persona="ROBIN"}`: 5,
	} {
		if got := d[series]; got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
	if n := d.Sum("batos_model_call_duration_seconds_count", `persona="ROBIN"`); n < 1 || n > 2 {
		t.Errorf("model latencies observed: %v, want 1 or 2", n)
	}
}
