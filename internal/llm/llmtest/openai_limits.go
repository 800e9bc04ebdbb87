package llmtest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"batos/internal/llm"
)

// The fake OpenAI-compatible server's limits, as the real ones keep
// them: a context window fixed at start, which llama-server and vLLM
// report and enforce, and max_tokens, which cuts an answer with
// finish_reason "length".

// OpenAIContextLength is the fake's default context window.
const OpenAIContextLength = 4096

// handleProps is llama-server's GET /props: the slots' settings,
// n_ctx among them.
func (f *OpenAI) handleProps(w http.ResponseWriter, r *http.Request) {
	openaiJSON(w, http.StatusOK, map[string]any{
		"default_generation_settings": map[string]any{"n_ctx": f.opts.ContextLength, "params": map[string]any{}},
		"total_slots":                 1,
		"model_path":                  openaiOrDefault(f.opts.Models, "model.gguf")[0],
	})
}

// refuseLong answers, as the flavor does, a chat whose prompt does not
// fit the window, and reports whether it did: llama-server refuses a
// prompt that fills its slot's n_ctx, vLLM a prompt and max_tokens over
// max_model_len. Generic takes anything.
func (f *OpenAI) refuseLong(w http.ResponseWriter, req *llm.ChatRequest) bool {
	n, ctx := PromptTokens(req.Messages), f.opts.ContextLength
	switch f.opts.Flavor {
	case LlamaServer:
		if n < ctx {
			return false
		}
		openaiJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{
			"code": http.StatusBadRequest, "type": "exceed_context_size_error", "n_prompt_tokens": n, "n_ctx": ctx,
			"message": fmt.Sprintf("request (%d tokens) exceeds the available context size (%d tokens), try increasing it", n, ctx),
		}})
	case VLLM:
		if n+req.Options.MaxTokens <= ctx {
			return false
		}
		f.badRequest(w, fmt.Sprintf("This model's maximum context length is %d tokens. However, you requested %d tokens (%d in the messages, %d in the completion). Please reduce the length of the messages or completion.",
			ctx, n+req.Options.MaxTokens, n, req.Options.MaxTokens))
	default:
		return false
	}
	return true
}

// cutToBudget cuts a whole answer at max tokens (0: no budget), a piece
// of Reply's splitting to a token, with finish_reason "length".
func cutToBudget(resp *llm.ChatResponse, max int) *llm.ChatResponse {
	pieces := Reply{Text: resp.Text}.pieces()
	if max <= 0 || len(pieces) <= max {
		return resp
	}
	cp := *resp
	cp.Text = strings.Join(pieces[:max], "")
	cp.Usage.CompletionTokens = max
	cp.FinishReason = llm.FinishLength
	return &cp
}

var errOpenAILength = errors.New("llmtest: max_tokens reached")

// budgetStream stops a streamed answer at max pieces (0: no budget).
type budgetStream struct {
	max    int
	prompt int // the prompt's tokens, for the usage
	n      int
	text   strings.Builder
}

func (b *budgetStream) piece(c llm.Chunk, send func(llm.Chunk) error) error {
	if b.max > 0 && b.n >= b.max {
		return errOpenAILength
	}
	b.n++
	b.text.WriteString(c.Text)
	return send(c)
}

// stopped is the answer to report for a stream stopped at its budget.
func (b *budgetStream) stopped() *llm.ChatResponse {
	return &llm.ChatResponse{Text: b.text.String(), FinishReason: llm.FinishLength, Usage: llm.Usage{PromptTokens: b.prompt, CompletionTokens: b.n}}
}
