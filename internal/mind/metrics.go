package mind

import (
	"errors"

	"batos/internal/llm"
	"batos/internal/metrics"
)

// Model call metrics, counted by Ask for every chat it makes (an answer
// cut off and asked again counts twice). Persona and model are image
// data, bounded by the personas and models the image configures; a call
// that failed before a model was chosen has model "unknown".
var (
	modelCalls = metrics.NewCounterVec("batos_model_calls_total",
		"Chat calls to the inference server through personas, by persona, model and outcome: ok, cut (the answer hit its token budget or the server's guard), error.",
		"persona", "model", "outcome")
	modelTokens = metrics.NewCounterVec("batos_model_tokens_total",
		"Tokens of chat calls as the server counted them, by persona, model and kind (prompt, completion).",
		"persona", "model", "kind")
	modelSeconds = metrics.NewHistogramVec("batos_model_call_duration_seconds",
		"Latency of a chat call (the server's, not the adapter's preparation), by persona and model; calls that never reached a server are not observed.",
		metrics.SlowSeconds, "persona", "model")
)

// observeCall counts call, which ended with err (nil when it succeeded,
// possibly cut).
func observeCall(call Call, cut bool, err error) {
	model := call.Model
	if model == "" {
		model = "unknown"
	}
	outcome := "ok"
	var ce *llm.CutError
	switch {
	case cut || errors.As(err, &ce):
		outcome = "cut"
	case err != nil:
		outcome = "error"
	}
	modelCalls.With(call.Persona, model, outcome).Inc()
	if call.PromptTokens > 0 {
		modelTokens.With(call.Persona, model, "prompt").Add(float64(call.PromptTokens))
	}
	if call.CompletionTokens > 0 {
		modelTokens.With(call.Persona, model, "completion").Add(float64(call.CompletionTokens))
	}
	if call.Latency > 0 {
		modelSeconds.With(call.Persona, model).Observe(call.Latency)
	}
}
