package llmtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"batos/internal/llm"
)

// openaiChatWire is what the fake reads of a POST /v1/chat/completions.
type openaiChatWire struct {
	Model               string          `json:"model"`
	Messages            []llm.Message   `json:"messages"`
	Temperature         *float64        `json:"temperature"`
	Seed                *int64          `json:"seed"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	TopP                *float64        `json:"top_p"`
	TopK                *int            `json:"top_k"`
	Stop                json.RawMessage `json:"stop"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	ResponseFormat *struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
	LoRA []openaiLoRAWire `json:"lora"`
}

// request translates the wire request for the Model.
func (in *openaiChatWire) request() (*llm.ChatRequest, error) {
	if len(in.Messages) == 0 {
		return nil, errors.New("'messages' must not be empty")
	}
	req := &llm.ChatRequest{Model: in.Model, Messages: in.Messages}
	o := &req.Options
	o.Temperature, o.Seed = in.Temperature, in.Seed
	switch {
	case in.MaxTokens != nil:
		o.MaxTokens = *in.MaxTokens
	case in.MaxCompletionTokens != nil:
		o.MaxTokens = *in.MaxCompletionTokens
	}
	if in.TopP != nil {
		o.TopP = *in.TopP
	}
	if in.TopK != nil {
		o.TopK = *in.TopK
	}
	stop, err := openaiStrings(in.Stop)
	if err != nil {
		return nil, errors.New("'stop' must be a string or a list of strings")
	}
	o.Stop = stop
	if rf := in.ResponseFormat; rf != nil {
		switch rf.Type {
		case "json_schema":
			if rf.JSONSchema == nil || len(rf.JSONSchema.Schema) == 0 {
				return nil, errors.New("response_format json_schema without a schema")
			}
			req.Schema = rf.JSONSchema.Schema
		case "json_object":
			req.Schema = json.RawMessage(`{"type":"object"}`)
		case "text", "":
		default:
			return nil, fmt.Errorf("unknown response_format type %q", rf.Type)
		}
	}
	return req, nil
}

// openaiCompletion is what every answer to one chat shares.
type openaiCompletion struct {
	id      string
	created int64
	model   string
}

func (c openaiCompletion) object(kind string) map[string]any {
	return map[string]any{"id": c.id, "object": kind, "created": c.created, "model": c.model}
}

func (f *OpenAI) handleChat(w http.ResponseWriter, r *http.Request) {
	var in openaiChatWire
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		f.badRequest(w, err.Error())
		return
	}
	req, err := in.request()
	if err != nil {
		f.badRequest(w, err.Error())
		return
	}
	if !f.knownModel(in.Model) {
		f.unknownModel(w, in.Model)
		return
	}
	if req.LoRA, err = f.chatLoRA(in.LoRA); err != nil {
		f.badRequest(w, err.Error())
		return
	}
	if f.refuseLong(w, req) {
		return
	}
	c := f.recordChat(in.Model, req.LoRA)
	if !in.Stream {
		resp, err := f.opts.Responder.Chat(r.Context(), req)
		if err != nil {
			f.modelError(w, err)
			return
		}
		resp = cutToBudget(resp, req.Options.MaxTokens)
		m := c.object("chat.completion")
		m["choices"] = []any{map[string]any{
			"index": 0, "message": map[string]any{"role": "assistant", "content": resp.Text},
			"finish_reason": openaiFinish(resp),
		}}
		m["usage"] = openaiUsage(resp.Usage)
		f.addTimings(m, resp)
		openaiJSON(w, http.StatusOK, m)
		return
	}
	f.streamChat(w, r, c, req, in.StreamOptions != nil && in.StreamOptions.IncludeUsage)
}

// chatLoRA is the adapters a chat uses on LlamaServer: its "lora" list
// (ids checked), or without one the adapters with a global scale. Other
// flavors ignore "lora", as vLLM does.
func (f *OpenAI) chatLoRA(in []openaiLoRAWire) ([]llm.LoRA, error) {
	if f.opts.Flavor != LlamaServer {
		return nil, nil
	}
	if in == nil {
		f.mu.Lock()
		defer f.mu.Unlock()
		var out []llm.LoRA
		for id, s := range f.scales {
			if s != 0 {
				out = append(out, llm.LoRA{ID: id, Scale: s})
			}
		}
		return out, nil
	}
	if _, err := f.loraScales(in); err != nil {
		return nil, err
	}
	out := make([]llm.LoRA, len(in))
	for i, l := range in {
		out[i] = llm.LoRA{ID: *l.ID, Scale: l.Scale}
	}
	return out, nil
}

func (f *OpenAI) recordChat(model string, lora []llm.LoRA) openaiCompletion {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.modelsUsed = append(f.modelsUsed, model)
	f.loraUsed = append(f.loraUsed, lora)
	f.seq++
	if model == "" {
		model = openaiOrDefault(f.opts.Models, "model.gguf")[0]
	}
	return openaiCompletion{id: fmt.Sprintf("chatcmpl-%d", f.seq), created: time.Now().Unix(), model: model}
}

func openaiFinish(resp *llm.ChatResponse) string {
	if resp.FinishReason == "" {
		return "stop"
	}
	return resp.FinishReason
}

func openaiUsage(u llm.Usage) map[string]any {
	return map[string]any{
		"prompt_tokens": u.PromptTokens, "completion_tokens": u.CompletionTokens,
		"total_tokens": u.PromptTokens + u.CompletionTokens,
	}
}

// addTimings adds llama-server's timings to an answer: the Model's own
// if it gave them, else 1 ms per prompt token and 10 ms per completion
// token.
func (f *OpenAI) addTimings(m map[string]any, resp *llm.ChatResponse) {
	if f.opts.Flavor != LlamaServer {
		return
	}
	prompt, eval := resp.Timings.PromptEval, resp.Timings.Eval
	if prompt == 0 && eval == 0 {
		prompt = time.Duration(resp.Usage.PromptTokens) * time.Millisecond
		eval = time.Duration(resp.Usage.CompletionTokens) * 10 * time.Millisecond
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	m["timings"] = map[string]any{
		"prompt_n": resp.Usage.PromptTokens, "prompt_ms": ms(prompt),
		"predicted_n": resp.Usage.CompletionTokens, "predicted_ms": ms(eval),
	}
}

var (
	errOpenAICut       = errors.New("llmtest: stream cut")
	errOpenAIMidStream = errors.New("llmtest: error mid-stream")
)

// openaiStream writes one chat's server-sent events.
type openaiStream struct {
	f       *OpenAI
	w       http.ResponseWriter
	c       openaiCompletion
	started bool
	sent    int // text chunks sent
	cutAt   int
	errAt   int
	errMsg  string
}

// streamChat answers a chat as a stream: a chunk per piece of text, a
// last chunk with the finish reason, a usage chunk if asked for, then
// "data: [DONE]". A Model error before the first chunk is an ordinary
// JSON error; after it, an error event.
func (f *OpenAI) streamChat(w http.ResponseWriter, r *http.Request, c openaiCompletion, req *llm.ChatRequest, withUsage bool) {
	s := &openaiStream{f: f, w: w, c: c}
	f.mu.Lock()
	s.cutAt, s.errAt, s.errMsg = f.cutAt, f.errAt, f.errMsg
	f.cutAt, f.errAt = -1, -1
	f.mu.Unlock()
	budget := &budgetStream{max: req.Options.MaxTokens, prompt: PromptTokens(req.Messages)}
	req.Stream = func(c llm.Chunk) error { return budget.piece(c, s.piece) }
	resp, err := f.opts.Responder.Chat(r.Context(), req)
	if errors.Is(err, errOpenAILength) {
		resp, err = budget.stopped(), nil
	}
	switch {
	case errors.Is(err, errOpenAICut) || (err == nil && s.cutAt >= 0):
		s.start()
		http.NewResponseController(w).Flush()
		// Drop the connection: the client sees the stream end mid-way.
		panic(http.ErrAbortHandler)
	case errors.Is(err, errOpenAIMidStream) || (err == nil && s.errAt >= 0):
		s.fail(http.StatusInternalServerError, "", s.errMsg)
	case err != nil && !s.started:
		f.modelError(w, err)
	case err != nil:
		var api *llm.APIError
		if errors.As(err, &api) {
			s.fail(api.Status, api.Type, api.Message)
		} else {
			s.fail(http.StatusInternalServerError, "", err.Error())
		}
	default:
		s.finish(resp, withUsage)
	}
}

func (s *openaiStream) piece(ch llm.Chunk) error {
	switch s.sent {
	case s.cutAt:
		return errOpenAICut
	case s.errAt:
		return errOpenAIMidStream
	}
	delta := map[string]any{"content": ch.Text}
	if s.sent == 0 {
		delta["role"] = "assistant"
	}
	s.sent++
	return s.event(s.chunk(delta, nil))
}

func (s *openaiStream) chunk(delta map[string]any, finish any) map[string]any {
	m := s.c.object("chat.completion.chunk")
	m["choices"] = []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}
	return m
}

func (s *openaiStream) finish(resp *llm.ChatResponse, withUsage bool) {
	last := s.chunk(map[string]any{}, openaiFinish(resp))
	s.f.addTimings(last, resp)
	if s.event(last) != nil {
		return
	}
	if withUsage {
		u := s.c.object("chat.completion.chunk")
		u["choices"] = []any{}
		u["usage"] = openaiUsage(resp.Usage)
		if s.event(u) != nil {
			return
		}
	}
	s.done()
}

// fail sends an error event. vLLM follows it with "data: [DONE]";
// llama-server ends the stream there.
func (s *openaiStream) fail(status int, typ, msg string) {
	if typ == "" {
		typ = "server_error"
		if s.f.opts.Flavor == VLLM {
			typ = "InternalServerError"
		}
	}
	if s.event(map[string]any{"error": s.f.errorObject(status, typ, "", msg)}) != nil {
		return
	}
	if s.f.opts.Flavor == VLLM {
		s.done()
	}
}

func (s *openaiStream) start() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	s.w.WriteHeader(http.StatusOK)
}

func (s *openaiStream) event(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.write("data: " + string(data) + "\n\n")
}

func (s *openaiStream) done() { s.write("data: [DONE]\n\n") }

func (s *openaiStream) write(text string) error {
	s.start()
	if _, err := fmt.Fprint(s.w, text); err != nil {
		return err
	}
	return http.NewResponseController(s.w).Flush()
}
