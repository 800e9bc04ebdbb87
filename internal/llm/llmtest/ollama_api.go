package llmtest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"batos/internal/llm"
)

// The fake Ollama's handlers, one per endpoint, and their wire types.

func (o *Ollama) handleHasBlob(w http.ResponseWriter, r *http.Request) {
	d, ok := ollamaBlobDigest(r.PathValue("digest"))
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	_, ok = o.blobs[d]
	o.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (o *Ollama) handlePushBlob(w http.ResponseWriter, r *http.Request) {
	d, ok := ollamaBlobDigest(r.PathValue("digest"))
	if !ok {
		ollamaError(w, http.StatusBadRequest, "invalid digest format")
		return
	}
	o.mu.Lock()
	_, ok = o.blobs[d]
	o.mu.Unlock()
	if ok {
		w.WriteHeader(http.StatusOK)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		ollamaError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if got := ollamaSHA256(body); got != d {
		ollamaError(w, http.StatusBadRequest, fmt.Sprintf("digest mismatch, expected %q, got %q", "sha256:"+d, "sha256:"+got))
		return
	}
	o.mu.Lock()
	o.blobs[d] = body
	o.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

// ollamaCreateWire is the body of POST /api/create.
type ollamaCreateWire struct {
	Model      string            `json:"model"`
	From       string            `json:"from"`
	Files      map[string]string `json:"files"`
	Adapters   map[string]string `json:"adapters"`
	System     string            `json:"system"`
	Template   string            `json:"template"`
	Parameters map[string]any    `json:"parameters"`
	Stream     *bool             `json:"stream"`
}

// blobsFor finds the blobs a create names, sorted by file name; it
// returns the message of Ollama's 400 when one is missing.
func (o *Ollama) blobsFor(files map[string]string) ([][]byte, string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out [][]byte
	for _, name := range slices.Sorted(maps.Keys(files)) {
		d, ok := ollamaBlobDigest(files[name])
		if !ok {
			return nil, "invalid digest format"
		}
		b, ok := o.blobs[d]
		if !ok {
			return nil, fmt.Sprintf("open /root/.ollama/models/blobs/sha256-%s: no such file or directory", d)
		}
		out = append(out, b)
	}
	return out, ""
}

func (o *Ollama) handleCreate(w http.ResponseWriter, r *http.Request) {
	var in ollamaCreateWire
	if !ollamaDecode(w, r, &in) {
		return
	}
	name := ollamaName(in.Model)
	switch {
	case name == "":
		ollamaError(w, http.StatusBadRequest, "invalid model name")
		return
	case in.From == "" && len(in.Files) == 0:
		ollamaError(w, http.StatusBadRequest, "neither 'from' or 'files' was specified")
		return
	case len(in.Adapters) > 1:
		ollamaError(w, http.StatusBadRequest, "only one adapter is currently supported")
		return
	}
	m := &ollamaModel{name: name, modified: time.Now()}
	if in.From != "" {
		from, ok := o.lookup(in.From)
		if !ok {
			ollamaNotFound(w, in.From)
			return
		}
		m.weights, m.adapterErr = from.weights, from.adapterErr
	}
	files, msg := o.blobsFor(in.Files)
	adapters, amsg := o.blobsFor(in.Adapters)
	if msg = cmp.Or(msg, amsg); msg != "" {
		ollamaError(w, http.StatusBadRequest, msg)
		return
	}
	if len(files) > 0 {
		m.weights = files[0]
	}
	if len(adapters) > 0 && o.opts.AdapterFits != nil {
		m.adapterErr = o.opts.AdapterFits(m.weights, adapters[0])
	}
	manifest, _ := json.Marshal(in)
	m.digest = ollamaSHA256(manifest)
	m.size = int64(len(m.weights))
	for _, a := range adapters {
		m.size += int64(len(a))
	}
	o.mu.Lock()
	o.models[name] = m
	o.created[name] = CreateRecord{
		Name: name, From: in.From, Files: in.Files, Adapters: in.Adapters,
		System: in.System, Template: in.Template, Parameters: in.Parameters, AdapterErr: m.adapterErr,
	}
	o.mu.Unlock()
	o.createStatus(w, in)
}

// createStatus answers a create that succeeded, with status lines when
// streamed.
func (o *Ollama) createStatus(w http.ResponseWriter, in ollamaCreateWire) {
	success := map[string]string{"status": "success"}
	if in.Stream != nil && !*in.Stream {
		ollamaJSON(w, http.StatusOK, success)
		return
	}
	lines := []string{"parsing GGUF"}
	for _, m := range []map[string]string{in.Files, in.Adapters} {
		for _, name := range slices.Sorted(maps.Keys(m)) {
			lines = append(lines, "using existing layer "+m[name])
		}
	}
	lines = append(lines, "writing manifest")
	s := o.newStream(w)
	for _, l := range lines {
		if s.line(map[string]string{"status": l}) != nil {
			break
		}
	}
	s.finish(success)
}

// ollamaChatWire is the body of POST /api/chat.
type ollamaChatWire struct {
	Model     string          `json:"model"`
	Messages  []llm.Message   `json:"messages"`
	Format    json.RawMessage `json:"format"`
	Options   ollamaOptions   `json:"options"`
	Stream    *bool           `json:"stream"`
	KeepAlive json.RawMessage `json:"keep_alive"`
}

// ollamaOptions are the options the fake maps back into llm.Options.
type ollamaOptions struct {
	Temperature *float64 `json:"temperature"`
	Seed        *int64   `json:"seed"`
	NumPredict  int      `json:"num_predict"`
	TopK        int      `json:"top_k"`
	TopP        float64  `json:"top_p"`
	Stop        []string `json:"stop"`
	NumCtx      int      `json:"num_ctx"`
}

func (p ollamaOptions) llm() llm.Options {
	return llm.Options{
		Temperature: p.Temperature, Seed: p.Seed, MaxTokens: p.NumPredict, TopK: p.TopK,
		TopP: p.TopP, Stop: p.Stop, ContextSize: p.NumCtx,
	}
}

// ollamaChatLine is a chat answer, or one line of its stream.
type ollamaChatLine struct {
	Model              string      `json:"model"`
	CreatedAt          time.Time   `json:"created_at"`
	Message            llm.Message `json:"message"`
	Done               bool        `json:"done"`
	DoneReason         string      `json:"done_reason,omitempty"`
	TotalDuration      int64       `json:"total_duration,omitempty"`
	LoadDuration       int64       `json:"load_duration,omitempty"`
	PromptEvalCount    int         `json:"prompt_eval_count,omitempty"`
	PromptEvalDuration int64       `json:"prompt_eval_duration,omitempty"`
	EvalCount          int         `json:"eval_count,omitempty"`
	EvalDuration       int64       `json:"eval_duration,omitempty"`
}

func ollamaChunk(model, text string) ollamaChatLine {
	return ollamaChatLine{Model: model, CreatedAt: time.Now().UTC(), Message: llm.Message{Role: llm.RoleAssistant, Content: text}}
}

// ollamaKeepAliveOf reads keep_alive as Ollama does: a number of seconds
// or a duration string, negative meaning forever. nil means unset.
func ollamaKeepAliveOf(raw json.RawMessage) (*time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var d time.Duration
	var secs float64
	var s string
	switch {
	case json.Unmarshal(raw, &secs) == nil:
		d = time.Duration(secs * float64(time.Second))
	case json.Unmarshal(raw, &s) == nil:
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return nil, fmt.Errorf("invalid keep_alive %s: %w", raw, err)
		}
	default:
		return nil, fmt.Errorf("invalid keep_alive %s", raw)
	}
	if d < 0 {
		d = -1
	}
	return &d, nil
}

// ollamaSchema returns a format's JSON schema: nil for none or for plain
// "json" mode.
func ollamaSchema(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null" || string(raw) == `""` || string(raw) == `"json"`:
		return nil, nil
	case raw[0] == '{':
		return raw, nil
	}
	return nil, fmt.Errorf(`invalid format: %s: expected "json" or a JSON schema`, raw)
}

// load marks a model loaded for keep (nil: the default) and returns the
// load time to report.
func (o *Ollama) load(name string, keep *time.Duration) time.Duration {
	now := time.Now()
	exp := now.Add(ollamaKeepAlive)
	if keep != nil && *keep < 0 {
		exp = now.AddDate(100, 0, 0)
	} else if keep != nil {
		exp = now.Add(*keep)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	was, ok := o.loaded[name]
	o.loaded[name] = exp
	if ok && was.After(now) {
		return 0
	}
	return OllamaLoadTime
}

func (o *Ollama) unload(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.loaded, name)
}

func (o *Ollama) handleChat(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var in ollamaChatWire
	if !ollamaDecode(w, r, &in) {
		return
	}
	if in.Model == "" {
		ollamaError(w, http.StatusBadRequest, "model is required")
		return
	}
	m, ok := o.lookup(in.Model)
	if !ok {
		ollamaNotFound(w, in.Model)
		return
	}
	keep, err := ollamaKeepAliveOf(in.KeepAlive)
	if err != nil {
		ollamaError(w, http.StatusBadRequest, err.Error())
		return
	}
	schema, err := ollamaSchema(in.Format)
	if err != nil {
		ollamaError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(in.Messages) == 0 {
		o.loadOrUnload(w, in.Model, m, keep)
		return
	}
	o.mu.Lock()
	o.chats[m.name]++
	o.mu.Unlock()
	if !o.ready(w, m) {
		return
	}
	req := &llm.ChatRequest{Model: in.Model, Messages: in.Messages, Schema: schema, Options: in.Options.llm(), KeepAlive: keep}
	limits := o.limits(m.name, in.Options, in.Messages)
	loadTime := o.load(m.name, keep)
	if in.Stream == nil || *in.Stream {
		o.streamChat(w, r, req, limits, func(resp *llm.ChatResponse) any {
			return ollamaDone(in.Model, "", resp, loadTime, start)
		})
	} else {
		o.answerWhole(w, r, req, limits, loadTime, start)
	}
	if keep != nil && *keep == 0 {
		o.unload(m.name)
	}
}

// ready answers 500 when m cannot serve: no Model to answer, or an
// adapter that does not fit, which Ollama finds when it loads the model.
func (o *Ollama) ready(w http.ResponseWriter, m *ollamaModel) bool {
	switch {
	case m.adapterErr != nil:
		ollamaError(w, http.StatusInternalServerError, "llama runner process has terminated: error loading lora adapter: "+m.adapterErr.Error())
	case o.opts.Responder == nil:
		ollamaError(w, http.StatusInternalServerError, "llmtest: the fake Ollama has no Model")
	default:
		return true
	}
	return false
}

// loadOrUnload answers a chat without messages.
func (o *Ollama) loadOrUnload(w http.ResponseWriter, name string, m *ollamaModel, keep *time.Duration) {
	reason := "unload"
	if keep != nil && *keep == 0 {
		o.unload(m.name)
	} else {
		if m.adapterErr != nil {
			o.ready(w, m)
			return
		}
		reason = "load"
		o.load(m.name, keep)
	}
	line := ollamaChunk(name, "")
	line.Done, line.DoneReason = true, reason
	ollamaJSON(w, http.StatusOK, line)
}

// streamChat answers req as an NDJSON stream within its limits, ending
// with final(resp).
func (o *Ollama) streamChat(w http.ResponseWriter, r *http.Request, req *llm.ChatRequest, l ollamaLimits, final func(*llm.ChatResponse) any) {
	s := o.newStream(w)
	ls := &limitedStream{l: l}
	line := func(c llm.Chunk) error { return s.line(ollamaChunk(req.Model, c.Text)) }
	req.Stream = func(c llm.Chunk) error { return ls.piece(c, line) }
	resp, err := o.opts.Responder.Chat(r.Context(), req)
	switch {
	case s.spoiled:
		s.finish(nil)
	case errors.Is(err, errOllamaGuard):
		// The stream just ends, after a line with done false.
		if ls.n == 0 {
			_ = line(llm.Chunk{})
		}
	case errors.Is(err, errOllamaLength):
		s.finish(final(ls.stopped()))
	case err != nil && !s.started:
		ollamaError(w, http.StatusInternalServerError, err.Error())
	case err != nil:
		_ = s.write(map[string]string{"error": err.Error()})
	default:
		cp := *resp
		cp.Usage.PromptTokens = l.promptEval(cp.Usage.PromptTokens)
		s.finish(final(&cp))
	}
}

// ollamaDone is a chat's final object, with made-up timings (see
// OllamaLoadTime).
func ollamaDone(model, text string, resp *llm.ChatResponse, load time.Duration, start time.Time) ollamaChatLine {
	line := ollamaChunk(model, text)
	prompt := time.Duration(resp.Usage.PromptTokens) * OllamaPromptTokenTime
	eval := time.Duration(resp.Usage.CompletionTokens) * OllamaTokenTime
	line.Done = true
	line.DoneReason = cmp.Or(resp.FinishReason, "stop")
	line.TotalDuration = int64(load + prompt + eval + time.Since(start))
	line.LoadDuration = int64(load)
	line.PromptEvalCount, line.PromptEvalDuration = resp.Usage.PromptTokens, int64(prompt)
	line.EvalCount, line.EvalDuration = resp.Usage.CompletionTokens, int64(eval)
	return line
}

func (o *Ollama) handleEmbed(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var in struct {
		Model     string          `json:"model"`
		Input     json.RawMessage `json:"input"`
		KeepAlive json.RawMessage `json:"keep_alive"`
	}
	if !ollamaDecode(w, r, &in) {
		return
	}
	var inputs []string
	var one string
	if json.Unmarshal(in.Input, &one) == nil {
		inputs = []string{one}
	} else if len(in.Input) > 0 && json.Unmarshal(in.Input, &inputs) != nil {
		ollamaError(w, http.StatusBadRequest, "invalid input type")
		return
	}
	m, ok := o.lookup(in.Model)
	if !ok {
		ollamaNotFound(w, in.Model)
		return
	}
	keep, err := ollamaKeepAliveOf(in.KeepAlive)
	if err != nil {
		ollamaError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !o.ready(w, m) {
		return
	}
	loadTime := o.load(m.name, keep)
	resp, err := o.opts.Responder.Embed(r.Context(), &llm.EmbedRequest{Model: in.Model, Input: inputs})
	if err != nil {
		ollamaError(w, http.StatusInternalServerError, err.Error())
		return
	}
	vectors := resp.Vectors
	if vectors == nil {
		vectors = [][]float32{}
	}
	ollamaJSON(w, http.StatusOK, map[string]any{
		"model": in.Model, "embeddings": vectors, "prompt_eval_count": resp.Usage.PromptTokens,
		"total_duration": int64(loadTime + time.Since(start)), "load_duration": int64(loadTime),
	})
}

// ollamaDetails is the details object of ps and tags entries.
var ollamaDetails = map[string]any{"format": "gguf", "family": "llama", "parameter_size": "1B", "quantization_level": "F16"}

func (o *Ollama) handlePS(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	o.mu.Lock()
	models := []map[string]any{}
	for _, name := range slices.Sorted(maps.Keys(o.loaded)) {
		m, ok := o.models[name]
		if exp := o.loaded[name]; ok && exp.After(now) {
			models = append(models, map[string]any{
				"name": name, "model": name, "size": m.size, "digest": m.digest,
				"details": ollamaDetails, "expires_at": exp, "size_vram": m.size,
			})
		}
	}
	o.mu.Unlock()
	ollamaJSON(w, http.StatusOK, map[string]any{"models": models})
}

func (o *Ollama) handleTags(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	models := []map[string]any{}
	for _, m := range o.models {
		models = append(models, map[string]any{
			"name": m.name, "model": m.name, "modified_at": m.modified, "size": m.size,
			"digest": m.digest, "details": ollamaDetails,
		})
	}
	o.mu.Unlock()
	slices.SortFunc(models, func(a, b map[string]any) int { return strings.Compare(a["name"].(string), b["name"].(string)) })
	ollamaJSON(w, http.StatusOK, map[string]any{"models": models})
}

func (o *Ollama) handleDelete(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Model string `json:"model"`
		Name  string `json:"name"` // the older spelling
	}
	if !ollamaDecode(w, r, &in) {
		return
	}
	given := cmp.Or(in.Model, in.Name)
	name := ollamaName(given)
	o.mu.Lock()
	_, ok := o.models[name]
	delete(o.models, name)
	delete(o.loaded, name)
	o.mu.Unlock()
	if !ok {
		ollamaNotFound(w, given)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (o *Ollama) handleVersion(w http.ResponseWriter, r *http.Request) {
	ollamaJSON(w, http.StatusOK, map[string]string{"version": OllamaVersion})
}
