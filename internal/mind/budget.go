package mind

import (
	"context"

	"batos/internal/llm"
)

// This file sizes a call: the answer budget a persona gets, and the
// context window its prompt and answer must share.

// DefaultAnswerBudget is the answer budget (max tokens) of a persona
// that has none of its own and none in answerBudgets.
const DefaultAnswerBudget = 1024

// MaxAnswerBudget bounds the budget of an answer asked again after a
// cut: twice the budget, at most this.
const MaxAnswerBudget = 8192

// answerBudgets are the default answer budgets of batos's personas,
// sized for what each writes: BRICK a plan (a JSON object of a few
// steps and tests), ROBIN a method with its tests, BABS a research note
// and ALFRED a review. A persona's own options["max_tokens"] wins.
var answerBudgets = map[string]int{
	"BRICK":  1024,
	"ROBIN":  2048,
	"BABS":   512,
	"ALFRED": 512,
}

// AnswerBudget is the most tokens p's answer may take: its options'
// max_tokens, else its default (answerBudgets, DefaultAnswerBudget).
func (p *Persona) AnswerBudget() int {
	if p.Options.MaxTokens > 0 {
		return p.Options.MaxTokens
	}
	if n, ok := answerBudgets[p.Name]; ok {
		return n
	}
	return DefaultAnswerBudget
}

// contextLength is model's context length as the server reports it
// (llm.ContextReporter), or 0 when it does not say. Answers are kept
// for the Mind's life (Forget drops one); a failed lookup is not kept,
// and counts as unknown.
func (m *Mind) contextLength(ctx context.Context, model string) int {
	m.mu.Lock()
	n, ok := m.windows[model]
	m.mu.Unlock()
	if ok {
		return n
	}
	r, isReporter := m.server.Client.(llm.ContextReporter)
	if !isReporter {
		return 0
	}
	n, err := r.ContextLength(ctx, model)
	if err != nil {
		return 0
	}
	m.mu.Lock()
	m.windows[model] = n
	m.mu.Unlock()
	return n
}

// forgetContext drops what contextLength knows of model.
func (m *Mind) forgetContext(model string) {
	m.mu.Lock()
	delete(m.windows, model)
	m.mu.Unlock()
}

// limit is the context window p's calls to model must fit: the model's
// length, or p's num_ctx when smaller; 0 when neither is known.
func (m *Mind) limit(ctx context.Context, p *Persona, model string) int {
	n := m.contextLength(ctx, model)
	if own := p.Options.ContextSize; own > 0 && (n == 0 || own < n) {
		n = own
	}
	return n
}

// fit returns the options for asking model msgs with an answer budget:
// p's own options, MaxTokens the budget and ContextSize (Ollama's
// num_ctx; other servers fix it at start) a window that holds the
// prompt's estimate and the budget, or p's num_ctx. A prompt that
// cannot fit the limit is a *llm.PromptTooLongError: the server would
// cut it, or refuse it.
func (m *Mind) fit(ctx context.Context, p *Persona, model string, msgs []llm.Message, budget int) (llm.Options, error) {
	limit := m.limit(ctx, p, model)
	prompt := llm.EstimateTokens(msgs)
	if limit > 0 && prompt+budget > limit {
		return llm.Options{}, &llm.PromptTooLongError{Model: model, Prompt: prompt, Answer: budget, Context: limit}
	}
	o := p.Options
	o.MaxTokens = budget
	if o.ContextSize > 0 {
		o.ContextSize = limit
	} else {
		o.ContextSize = llm.WindowFor(prompt+budget, limit)
	}
	return o, nil
}

// raise is the budget to ask again with after an answer was cut at
// budget: twice as much, at most MaxAnswerBudget and what the window
// leaves beside the prompt. It is 0 when that is not half as much again
// as budget: an answer cut at its budget would most likely be cut again.
func (m *Mind) raise(ctx context.Context, p *Persona, model string, msgs []llm.Message, budget int) int {
	next := min(2*budget, MaxAnswerBudget)
	if limit := m.limit(ctx, p, model); limit > 0 {
		next = min(next, limit-llm.EstimateTokens(msgs))
	}
	if next < budget+budget/2 {
		return 0
	}
	return next
}
