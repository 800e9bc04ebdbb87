package llmtest

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"batos/internal/llm"
)

// The fake Ollama's limits, as a real Ollama keeps them (observed on
// v0.17.4; see llm-servers.md): the context window a chat is loaded
// with, the answer budget, and the repetition guard.

// OllamaContextLength is the context length the fake's models report
// by default (POST /api/show).
const OllamaContextLength = 8192

// OllamaDefaultContext is the window a chat gets without num_ctx:
// Ollama's default.
const OllamaDefaultContext = 2048

// PromptCut is a prompt the fake cut to fit its window, as Ollama does
// with a line in its log ("truncating input prompt limit=2048
// prompt=3422") and no word to the client.
type PromptCut struct {
	Model  string
	Tokens int // the prompt's tokens by the fake's count
	NumCtx int // the window it was cut to
}

// PromptCuts returns the prompts cut so far, in order.
func (o *Ollama) PromptCuts() []PromptCut {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.cuts)
}

// RepetitionGuardNext makes the next chat with messages stop after n
// pieces of its answer, as Ollama's repetition guard stops a model that
// repeats one token too often: HTTP 200, the text so far, the last
// object with "done": false and no done_reason or counts (a stream ends
// cleanly after its last piece).
func (o *Ollama) RepetitionGuardNext(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.guard = max(n, 0)
}

// PromptTokens is the fake servers' count of a prompt's tokens: a
// token per four bytes of each message, and four for its template
// markers. llm.EstimateTokens counts more, as an estimate meant to hold
// the prompt must.
func PromptTokens(msgs []llm.Message) int {
	n := 0
	for _, m := range msgs {
		n += 4 + (len(m.Content)+3)/4
	}
	return n
}

// ollamaLimits are one chat's limits.
type ollamaLimits struct {
	numCtx     int
	numPredict int // 0: none
	guard      int // -1: none
	prompt     int // the prompt's tokens by the fake's count
	cut        bool
}

// limits reads a chat's limits, takes the pending repetition guard, and
// records the prompt's cut if it does not fit.
func (o *Ollama) limits(model string, opts ollamaOptions, msgs []llm.Message) ollamaLimits {
	l := ollamaLimits{numCtx: opts.NumCtx, numPredict: max(opts.NumPredict, 0), prompt: PromptTokens(msgs)}
	if l.numCtx <= 0 {
		l.numCtx = OllamaDefaultContext
	}
	l.cut = l.prompt > l.numCtx
	o.mu.Lock()
	defer o.mu.Unlock()
	l.guard, o.guard = o.guard, -1
	if l.cut {
		o.cuts = append(o.cuts, PromptCut{Model: model, Tokens: l.prompt, NumCtx: l.numCtx})
	}
	return l
}

// promptEval is the prompt_eval_count to report: the window for a cut
// prompt, else what the Responder counted (the fake's count when it
// counted nothing).
func (l ollamaLimits) promptEval(counted int) int {
	if l.cut {
		return l.numCtx
	}
	if counted == 0 {
		return l.prompt
	}
	return counted
}

var (
	errOllamaLength = errors.New("llmtest: num_predict reached")
	errOllamaGuard  = errors.New("llmtest: repetition guard")
)

// stop says whether the answer ends before its piece number n (from
// 0): the guard stops it, or num_predict pieces were given.
func (l ollamaLimits) stop(n int) error {
	switch {
	case l.guard >= 0 && n >= l.guard:
		return errOllamaGuard
	case l.numPredict > 0 && n >= l.numPredict:
		return errOllamaLength
	}
	return nil
}

// apply cuts a whole (not streamed) answer to the limits, a piece of
// Reply's splitting to a token, and returns the error that stopped it,
// if any.
func (l ollamaLimits) apply(resp *llm.ChatResponse) error {
	resp.Usage.PromptTokens = l.promptEval(resp.Usage.PromptTokens)
	pieces := Reply{Text: resp.Text}.pieces()
	for n := range pieces {
		if err := l.stop(n); err != nil {
			resp.Text = strings.Join(pieces[:n], "")
			resp.Usage.CompletionTokens = n
			resp.FinishReason = llm.FinishLength
			return err
		}
	}
	return nil
}

// answerWhole answers a chat that is not streamed, within its limits.
func (o *Ollama) answerWhole(w http.ResponseWriter, r *http.Request, req *llm.ChatRequest, l ollamaLimits, load time.Duration, start time.Time) {
	resp, err := o.opts.Responder.Chat(r.Context(), req)
	if err != nil {
		ollamaError(w, http.StatusInternalServerError, err.Error())
		return
	}
	cp := *resp
	if errors.Is(l.apply(&cp), errOllamaGuard) {
		// The guard's answer: the text so far, done false, no counts.
		ollamaJSON(w, http.StatusOK, ollamaChunk(req.Model, cp.Text))
		return
	}
	ollamaJSON(w, http.StatusOK, ollamaDone(req.Model, cp.Text, &cp, load, start))
}

// limitedStream wraps a stream's callback: it counts the pieces given
// and stops the Responder when the limits say so.
type limitedStream struct {
	l    ollamaLimits
	n    int
	text strings.Builder
}

func (ls *limitedStream) piece(c llm.Chunk, line func(llm.Chunk) error) error {
	if err := ls.l.stop(ls.n); err != nil {
		return err
	}
	ls.n++
	ls.text.WriteString(c.Text)
	return line(c)
}

// stopped is the answer to report for a stream the limits stopped.
func (ls *limitedStream) stopped() *llm.ChatResponse {
	return &llm.ChatResponse{
		Text: ls.text.String(), FinishReason: llm.FinishLength,
		Usage: llm.Usage{PromptTokens: ls.l.promptEval(0), CompletionTokens: ls.n},
	}
}

func (o *Ollama) handleShow(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Model string `json:"model"`
		Name  string `json:"name"` // the older spelling
	}
	if !ollamaDecode(w, r, &in) {
		return
	}
	given := in.Model
	if given == "" {
		given = in.Name
	}
	if _, ok := o.lookup(given); !ok {
		ollamaNotFound(w, given)
		return
	}
	ollamaJSON(w, http.StatusOK, map[string]any{
		"modelfile": "FROM " + given, "parameters": "", "template": "{{ .Prompt }}",
		"details": ollamaDetails,
		"model_info": map[string]any{
			"general.architecture":    "llama",
			"general.parameter_count": 1_000_000,
			"llama.context_length":    o.opts.ContextLength,
			"llama.embedding_length":  64,
		},
		"capabilities": []string{"completion"},
		"modified_at":  time.Now(),
	})
}

// handleOpenAIModels is Ollama's OpenAI-compatible GET /v1/models: every
// model, newest first (a model batos created from an adapter comes
// before its base), owned by "library" or the name's namespace.
func (o *Ollama) handleOpenAIModels(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	models := make([]*ollamaModel, 0, len(o.models))
	for _, m := range o.models {
		models = append(models, m)
	}
	o.mu.Unlock()
	slices.SortFunc(models, func(a, b *ollamaModel) int {
		if c := b.modified.Compare(a.modified); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	data := []map[string]any{}
	for _, m := range models {
		owner := "library"
		if ns, _, ok := strings.Cut(m.name, "/"); ok {
			owner = ns
		}
		data = append(data, map[string]any{"id": m.name, "object": "model", "created": m.modified.Unix(), "owned_by": owner})
	}
	ollamaJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}
