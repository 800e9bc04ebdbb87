package llm

import (
	"context"
	"errors"
	"fmt"
)

// This file is about fitting a chat in a model's context window: the
// prompt and the answer share it, and a server that is given more
// prompt than fits either refuses it (llama-server, vLLM) or cuts it
// without a word (Ollama keeps the first few tokens and the end, and
// reports the window as the prompt's count). batos estimates the
// prompt's size before it asks, sizes the window from the estimate
// where the server takes a size per request (Ollama's num_ctx), and
// refuses a prompt that cannot fit (PromptTooLongError).

// Reasons a generation stopped, as ChatResponse.FinishReason gives them.
// Servers may give others ("tool_calls", "content_filter").
const (
	// FinishStop: the model ended its answer, or met a stop sequence.
	FinishStop = "stop"
	// FinishLength: the answer reached its budget (Options.MaxTokens)
	// or the context window, and was cut there.
	FinishLength = "length"
	// FinishAborted: the server stopped generating on its own, before
	// the end, without a reason in the API. Ollama does this when a
	// model repeats one token more than about 30 times (its repetition
	// guard): the answer is HTTP 200, its last object has "done": false,
	// and the text is cut. The Ollama client reports such an answer with
	// this reason, its text as far as it got and no token counts.
	FinishAborted = "aborted"
)

// Cut reports whether the answer was cut off before its end: by its
// budget (FinishLength) or by the server (FinishAborted).
func (r *ChatResponse) Cut() bool {
	return r.FinishReason == FinishLength || r.FinishReason == FinishAborted
}

var (
	// ErrPromptTooLong is wrapped by a *PromptTooLongError: a prompt
	// and its answer budget do not fit the model's context window, or
	// the server reported that it cut the prompt.
	ErrPromptTooLong = errors.New("llm: prompt too long for the model's context")
	// ErrAnswerCut is wrapped by a *CutError: an answer was cut off
	// before its end.
	ErrAnswerCut = errors.New("llm: answer cut off")
)

// PromptTooLongError says that a prompt cannot be answered whole by a
// model: Prompt tokens (estimated with EstimateTokens, or the server's
// own count when Server is set) plus Answer tokens of answer budget are
// more than its Context window.
type PromptTooLongError struct {
	Model   string
	Prompt  int
	Answer  int
	Context int
	// Server is set when the server, not batos's estimate, found the
	// prompt too long: it refused it, or (Ollama) reported a prompt as
	// long as the window, which is what it does after cutting one.
	Server bool
}

func (e *PromptTooLongError) Error() string {
	if e.Server {
		return fmt.Sprintf("llm: model %s: the prompt (%d tokens by the server's count) does not fit its context of %d tokens", e.Model, e.Prompt, e.Context)
	}
	return fmt.Sprintf("llm: model %s: a prompt of about %d tokens and an answer budget of %d tokens do not fit its context of %d tokens", e.Model, e.Prompt, e.Answer, e.Context)
}

func (e *PromptTooLongError) Unwrap() error { return ErrPromptTooLong }

// CutError says that a model's answer was cut off: at Tokens tokens
// (0 when the server did not count them) by its Budget, or (Reason
// FinishAborted) by the server. Asks is how many times it was asked.
type CutError struct {
	Model  string
	Reason string
	Tokens int
	Budget int
	Asks   int
}

func (e *CutError) Error() string {
	var what string
	if e.Reason == FinishAborted {
		what = "was stopped by the server before its end (Ollama's repetition guard: the model repeated one token over and over)"
		if e.Tokens > 0 {
			what += fmt.Sprintf(" after %d tokens", e.Tokens)
		}
	} else {
		n := e.Tokens
		if n == 0 {
			n = e.Budget
		}
		what = fmt.Sprintf("was cut at %d tokens (its budget was %d)", n, e.Budget)
	}
	msg := fmt.Sprintf("llm: model %s: the answer %s", e.Model, what)
	if e.Asks > 1 {
		msg += fmt.Sprintf(", on each of %d asks", e.Asks)
	}
	return msg
}

func (e *CutError) Unwrap() error { return ErrAnswerCut }

// ContextReporter reports a model's context window: the most tokens
// its prompt and answer may hold together (ollama.Client: POST
// /api/show, model_info "<arch>.context_length"; openai.Client:
// llama-server's GET /props n_ctx, vLLM's max_model_len in GET
// /v1/models). Without it, or when it returns 0, the window is unknown
// and a prompt is sent unchecked.
type ContextReporter interface {
	ContextLength(ctx context.Context, model string) (int, error)
}

// Token estimates. No server API that batos speaks to everywhere counts
// tokens, so the count is estimated, on the high side: a byte in three
// is a token (English prose runs near four bytes a token, code and JSON
// near three), and each message costs its chat template's markers.
const (
	// BytesPerToken is the rate: the catalog sizes its chunks by it too.
	BytesPerToken    = 3
	tokensPerMessage = 8
	tokensPerChat    = 8
)

// TextTokens estimates the tokens of text alone, at BytesPerToken.
func TextTokens(text string) int { return (len(text) + BytesPerToken - 1) / BytesPerToken }

// EstimateTokens is a conservative estimate of the tokens msgs take in
// a prompt: it overcounts most text, so that a window sized from it
// holds the prompt.
func EstimateTokens(msgs []Message) int {
	n := tokensPerChat
	for _, m := range msgs {
		n += tokensPerMessage + TextTokens(m.Content)
	}
	return n
}

// MinContext is the smallest window WindowFor picks: Ollama's default.
const MinContext = 2048

// WindowFor is the context window to ask for (Ollama's num_ctx) to hold
// need tokens: the next power of two from MinContext, so that calls of
// similar size share a window (Ollama reloads a model whose num_ctx
// changes), and at most limit when limit is known (not 0).
func WindowFor(need, limit int) int {
	w := MinContext
	for w < need {
		w *= 2
	}
	if limit > 0 && w > limit {
		w = limit
	}
	return w
}
