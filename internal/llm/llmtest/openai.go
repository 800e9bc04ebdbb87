package llmtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/llm"
)

// Flavor is the OpenAI-compatible server a fake OpenAI imitates: its
// extra endpoints, its error bodies and its stream's ending.
type Flavor int

const (
	// LlamaServer is llama.cpp's llama-server: adapters fixed at start
	// and chosen per request ("lora"), /lora-adapters, /health, timings
	// in answers, any model name accepted.
	LlamaServer Flavor = iota
	// VLLM is vLLM: adapters served as models of their own, listed with
	// a parent, loaded at run time when RuntimeLoRA is set; FastAPI's
	// {"detail": "Not Found"} for unknown paths.
	VLLM
	// Generic is a plain OpenAI-compatible server: OpenAI's error shapes
	// (string codes), no /health, no adapters.
	Generic
)

func (f Flavor) String() string {
	switch f {
	case LlamaServer:
		return "llama-server"
	case VLLM:
		return "vllm"
	case Generic:
		return "generic"
	}
	return fmt.Sprintf("Flavor(%d)", int(f))
}

// OpenAIOptions configure a fake OpenAI-compatible server.
type OpenAIOptions struct {
	// Responder answers chats and embeddings; nil means an empty script.
	Responder llm.Model
	// Flavor is the server imitated.
	Flavor Flavor
	// Models are the model names served; an unknown one is a 404. For
	// VLLM the first is the base its adapters belong to; without any it
	// serves "default". Generic without any accepts every name (and
	// lists "default"). LlamaServer, like the real one, accepts every
	// name and only lists these (or "model.gguf").
	Models []string
	// Adapters, for LlamaServer, are adapter file paths, ids 0, 1, ... in
	// this order (as --lora a.gguf --lora b.gguf), all at global scale 0
	// (as with --lora-init-without-apply). For VLLM they are adapters
	// preloaded with --lora-modules, each "name=path".
	Adapters []string
	// RuntimeLoRA, for VLLM, is VLLM_ALLOW_RUNTIME_LORA_UPDATING: without
	// it /v1/load_lora_adapter and /v1/unload_lora_adapter are 404.
	RuntimeLoRA bool
	// APIKey, if set, is required as "Authorization: Bearer <key>" on
	// every path but /health (and, on LlamaServer, /v1/models).
	APIKey string
	// RestartDelay is how long Restart keeps the server down; default
	// 100 ms.
	RestartDelay time.Duration
	// ContextLength is the context window of LlamaServer's slots (GET
	// /props n_ctx) and of VLLM's models (max_model_len); default
	// OpenAIContextLength. Either refuses a prompt that does not fit it,
	// as the real ones do. Generic reports none and checks none.
	ContextLength int
}

// OpenAI is a fake OpenAI-compatible server (llama-server, vLLM or a
// generic one) answering from its Responder over real HTTP: JSON answers, SSE
// streams ending in "data: [DONE]", each flavor's error bodies and
// adapter endpoints. It records every request and can inject faults. It
// is safe for concurrent use; the server is closed when the test ends.
type OpenAI struct {
	// URL is the server root, like http://127.0.0.1:41234.
	URL string

	opts     OpenAIOptions
	addr     string
	handler  http.Handler
	rec      recorder
	stop     chan struct{}
	restarts sync.WaitGroup

	mu         sync.Mutex
	srv        *httptest.Server // nil while down
	closed     bool
	failures   []openaiFailure
	cutAt      int // stream chunks before a cut; -1 for none
	errAt      int // stream chunks before an error event; -1 for none
	errMsg     string
	scales     []float64     // llama-server's global adapter scales
	adapters   []vllmAdapter // vLLM's adapters, in load order
	loraUsed   [][]llm.LoRA
	modelsUsed []string
	seq        int
}

type openaiFailure struct {
	status int
	body   string
}

type vllmAdapter struct {
	name, path string
	runtime    bool
}

// NewOpenAI starts a fake server; opts may be nil.
func NewOpenAI(t testing.TB, opts *OpenAIOptions) *OpenAI {
	t.Helper()
	if opts == nil {
		opts = &OpenAIOptions{}
	}
	f := &OpenAI{opts: *opts, cutAt: -1, errAt: -1, stop: make(chan struct{})}
	f.opts.Models = append([]string(nil), opts.Models...)
	if f.opts.Responder == nil {
		f.opts.Responder = &Model{}
	}
	if f.opts.RestartDelay <= 0 {
		f.opts.RestartDelay = 100 * time.Millisecond
	}
	if f.opts.ContextLength <= 0 {
		f.opts.ContextLength = OpenAIContextLength
	}
	switch f.opts.Flavor {
	case LlamaServer:
		f.scales = make([]float64, len(opts.Adapters))
	case VLLM:
		if len(f.opts.Models) == 0 {
			f.opts.Models = []string{"default"}
		}
		for _, a := range opts.Adapters {
			name, path, ok := strings.Cut(a, "=")
			if !ok || name == "" || path == "" {
				t.Fatalf("llmtest: vLLM adapter %q is not name=path", a)
			}
			f.adapters = append(f.adapters, vllmAdapter{name: name, path: path})
		}
	}
	f.handler = f.routes()
	f.srv = httptest.NewServer(f.handler)
	f.URL = f.srv.URL
	f.addr = f.srv.Listener.Addr().String()
	t.Cleanup(f.close)
	return f
}

func (f *OpenAI) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	close(f.stop)
	f.restarts.Wait()
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

// Restart takes the server down at once, cutting every connection, and
// serves again on the same address after OpenAIOptions.RestartDelay,
// keeping its records and pending faults. Like a new server process it
// comes back with what its command line gives it: vLLM forgets the
// adapters loaded at run time, llama-server's global scales are 0
// again. It returns without waiting for the server to come back.
func (f *OpenAI) Restart(t testing.TB) {
	t.Helper()
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	clear(f.scales)
	f.adapters = slices.DeleteFunc(f.adapters, func(a vllmAdapter) bool { return a.runtime })
	f.mu.Unlock()
	if srv == nil {
		t.Fatal("llmtest: Restart while the fake server is down")
	}
	srv.CloseClientConnections()
	srv.Close()
	f.restarts.Add(1)
	go func() {
		defer f.restarts.Done()
		select {
		case <-f.stop:
			return
		case <-time.After(f.opts.RestartDelay):
		}
		if err := f.serveAgain(); err != nil {
			t.Errorf("llmtest: restart fake server: %v", err)
		}
	}()
}

func (f *OpenAI) serveAgain() error {
	var l net.Listener
	var err error
	// The old socket may linger for a moment.
	for range 50 {
		if l, err = net.Listen("tcp", f.addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	srv := httptest.NewUnstartedServer(f.handler)
	srv.Listener.Close()
	srv.Listener = l
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return l.Close()
	}
	srv.Start()
	f.srv = srv
	return nil
}

// FailNext makes the next request, whatever its path, answer status with
// body as it is (JSON or not), so tests can send any error shape. Calls
// queue up.
func (f *OpenAI) FailNext(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, openaiFailure{status, body})
}

// CutStreamAfter makes the next streamed chat send n text chunks and then
// drop the connection, without "data: [DONE]".
func (f *OpenAI) CutStreamAfter(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cutAt = n
}

// ErrorMidStream makes the next streamed chat send n text chunks and then
// an error event, data: {"error": {"message": msg, ...}}.
func (f *OpenAI) ErrorMidStream(n int, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errAt, f.errMsg = n, msg
}

// Requests returns the requests received so far, in order.
func (f *OpenAI) Requests() []RecordedRequest { return f.rec.requests() }

// LoRAUsed returns, for each chat served, the adapters it used on
// LlamaServer: its "lora" list as sent, or, without one, the adapters
// with a non-zero global scale.
func (f *OpenAI) LoRAUsed() [][]llm.LoRA {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]llm.LoRA, len(f.loraUsed))
	for i, l := range f.loraUsed {
		out[i] = append([]llm.LoRA(nil), l...)
	}
	return out
}

// ModelsUsed returns the model named by each chat served, in order.
func (f *OpenAI) ModelsUsed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.modelsUsed...)
}

// Loaded returns the names of the adapters loaded at run time (VLLM) and
// not unloaded since, in load order.
func (f *OpenAI) Loaded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, a := range f.adapters {
		if a.runtime {
			out = append(out, a.name)
		}
	}
	return out
}

func (f *OpenAI) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", f.handleNotFound)
	mux.HandleFunc("POST /v1/chat/completions", f.handleChat)
	mux.HandleFunc("POST /v1/embeddings", f.handleEmbed)
	mux.HandleFunc("GET /v1/models", f.handleModels)
	switch f.opts.Flavor {
	case LlamaServer:
		mux.HandleFunc("GET /health", f.handleHealth)
		mux.HandleFunc("GET /props", f.handleProps)
		mux.HandleFunc("GET /lora-adapters", f.handleLoRAList)
		mux.HandleFunc("POST /lora-adapters", f.handleLoRASet)
	case VLLM:
		mux.HandleFunc("GET /health", f.handleHealth)
		if f.opts.RuntimeLoRA {
			mux.HandleFunc("POST /v1/load_lora_adapter", f.handleLoad)
			mux.HandleFunc("POST /v1/unload_lora_adapter", f.handleUnload)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.rec.read(r)
		if !f.authorized(r) {
			f.writeAuthError(w)
			return
		}
		if fl, ok := f.nextFailure(); ok {
			openaiRaw(w, fl.status, fl.body)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (f *OpenAI) nextFailure() (openaiFailure, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.failures) == 0 {
		return openaiFailure{}, false
	}
	fl := f.failures[0]
	f.failures = f.failures[1:]
	return fl, true
}

func (f *OpenAI) authorized(r *http.Request) bool {
	if f.opts.APIKey == "" || r.URL.Path == "/health" {
		return true
	}
	switch f.opts.Flavor {
	case LlamaServer:
		if r.URL.Path == "/v1/models" || r.URL.Path == "/models" || r.URL.Path == "/v1/health" {
			return true
		}
	case VLLM:
		if !strings.HasPrefix(r.URL.Path, "/v1") {
			return true
		}
	}
	return r.Header.Get("Authorization") == "Bearer "+f.opts.APIKey
}

func (f *OpenAI) writeAuthError(w http.ResponseWriter) {
	switch f.opts.Flavor {
	case VLLM:
		openaiJSON(w, http.StatusUnauthorized, map[string]any{"error": "Unauthorized"})
	case LlamaServer:
		f.writeError(w, http.StatusUnauthorized, "authentication_error", "", "Invalid API Key")
	default:
		f.writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")
	}
}

// writeError writes an error in the flavor's shape: llama-server's
// {"error": {"code": 400, "message", "type"}}, vLLM's with "param" and an
// int code, OpenAI's with a string code (or null).
func (f *OpenAI) writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	openaiJSON(w, status, map[string]any{"error": f.errorObject(status, typ, code, msg)})
}

func (f *OpenAI) errorObject(status int, typ, code, msg string) map[string]any {
	switch f.opts.Flavor {
	case LlamaServer:
		return map[string]any{"code": status, "message": msg, "type": typ}
	case VLLM:
		return map[string]any{"message": msg, "type": typ, "param": nil, "code": status}
	}
	obj := map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}
	if code != "" {
		obj["code"] = code
	}
	return obj
}

// badRequest writes a 400 with the flavor's error type.
func (f *OpenAI) badRequest(w http.ResponseWriter, msg string) {
	typ := "invalid_request_error"
	if f.opts.Flavor == VLLM {
		typ = "BadRequestError"
	}
	f.writeError(w, http.StatusBadRequest, typ, "", msg)
}

// modelError answers a Model's error before a stream began: an
// *llm.APIError keeps its status and words, anything else is a 500.
func (f *OpenAI) modelError(w http.ResponseWriter, err error) {
	status, typ, msg := http.StatusInternalServerError, "server_error", err.Error()
	var api *llm.APIError
	if errors.As(err, &api) {
		msg = api.Message
		if api.Status >= 400 {
			status = api.Status
		}
		if api.Type != "" {
			typ = api.Type
		}
	}
	if f.opts.Flavor == VLLM && typ == "server_error" {
		typ = "InternalServerError"
	}
	f.writeError(w, status, typ, "", msg)
}

func (f *OpenAI) handleNotFound(w http.ResponseWriter, r *http.Request) {
	switch f.opts.Flavor {
	case LlamaServer:
		f.writeError(w, http.StatusNotFound, "not_found_error", "", "File Not Found")
	case VLLM:
		openaiJSON(w, http.StatusNotFound, map[string]any{"detail": "Not Found"})
	default:
		http.NotFound(w, r)
	}
}

func (f *OpenAI) handleHealth(w http.ResponseWriter, r *http.Request) {
	if f.opts.Flavor == LlamaServer {
		openaiJSON(w, http.StatusOK, map[string]any{"status": "ok"})
		return
	}
	w.WriteHeader(http.StatusOK)
}

// knownModel reports whether name may be asked for. Adapters count on
// VLLM; LlamaServer, like the real one, takes any name.
func (f *OpenAI) knownModel(name string) bool {
	if f.opts.Flavor == LlamaServer || (f.opts.Flavor == Generic && len(f.opts.Models) == 0) {
		return true
	}
	for _, m := range f.opts.Models {
		if m == name {
			return true
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.adapterLocked(name) >= 0
}

func (f *OpenAI) adapterLocked(name string) int {
	for i, a := range f.adapters {
		if a.name == name {
			return i
		}
	}
	return -1
}

func (f *OpenAI) unknownModel(w http.ResponseWriter, name string) {
	msg := fmt.Sprintf("The model `%s` does not exist.", name)
	if f.opts.Flavor == VLLM {
		f.writeError(w, http.StatusNotFound, "NotFoundError", "", msg)
		return
	}
	f.writeError(w, http.StatusNotFound, "invalid_request_error", "model_not_found", msg)
}

func (f *OpenAI) handleModels(w http.ResponseWriter, r *http.Request) {
	created := time.Now().Unix()
	var data []map[string]any
	switch f.opts.Flavor {
	case LlamaServer:
		for _, m := range openaiOrDefault(f.opts.Models, "model.gguf") {
			data = append(data, map[string]any{"id": m, "object": "model", "created": created, "owned_by": "llamacpp", "meta": map[string]any{}})
		}
	case VLLM:
		for _, m := range f.opts.Models {
			data = append(data, map[string]any{"id": m, "object": "model", "created": created, "owned_by": "vllm", "root": m, "parent": nil, "max_model_len": f.opts.ContextLength})
		}
		f.mu.Lock()
		for _, a := range f.adapters {
			data = append(data, map[string]any{"id": a.name, "object": "model", "created": created, "owned_by": "vllm", "root": a.path, "parent": f.opts.Models[0]})
		}
		f.mu.Unlock()
	default:
		for _, m := range openaiOrDefault(f.opts.Models, "default") {
			data = append(data, map[string]any{"id": m, "object": "model", "created": created, "owned_by": "system"})
		}
	}
	openaiJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func openaiOrDefault(names []string, def string) []string {
	if len(names) == 0 {
		return []string{def}
	}
	return names
}

func (f *OpenAI) handleLoRAList(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	list := make([]map[string]any, len(f.opts.Adapters))
	for i, path := range f.opts.Adapters {
		list[i] = map[string]any{"id": i, "path": path, "scale": f.scales[i]}
	}
	f.mu.Unlock()
	openaiJSON(w, http.StatusOK, list)
}

// handleLoRASet sets the global scales; like llama-server, adapters not
// listed get scale 0.
func (f *OpenAI) handleLoRASet(w http.ResponseWriter, r *http.Request) {
	var in []openaiLoRAWire
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		f.badRequest(w, err.Error())
		return
	}
	scales, err := f.loraScales(in)
	if err != nil {
		f.badRequest(w, err.Error())
		return
	}
	f.mu.Lock()
	f.scales = scales
	f.mu.Unlock()
	openaiJSON(w, http.StatusOK, map[string]any{"success": true})
}

type openaiLoRAWire struct {
	ID    *int    `json:"id"`
	Scale float64 `json:"scale"`
}

// loraScales is llama-server's parse_lora_request: every adapter at 0
// but those listed; an id out of range is refused.
func (f *OpenAI) loraScales(in []openaiLoRAWire) ([]float64, error) {
	scales := make([]float64, len(f.opts.Adapters))
	for _, l := range in {
		if l.ID == nil || *l.ID < 0 || *l.ID >= len(scales) {
			return nil, errors.New("invalid adapter id")
		}
		scales[*l.ID] = l.Scale
	}
	return scales, nil
}

type openaiLoadWire struct {
	Name string `json:"lora_name"`
	Path string `json:"lora_path"`
}

// handleLoad is vLLM's POST /v1/load_lora_adapter: the path must be a
// PEFT adapter directory (with adapter_config.json) on this machine.
func (f *OpenAI) handleLoad(w http.ResponseWriter, r *http.Request) {
	var in openaiLoadWire
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		f.badRequest(w, err.Error())
		return
	}
	if in.Name == "" || in.Path == "" {
		f.writeError(w, http.StatusBadRequest, "InvalidUserInput", "", "Both 'lora_name' and 'lora_path' must be provided.")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.adapterLocked(in.Name) >= 0 {
		f.writeError(w, http.StatusBadRequest, "InvalidUserInput", "", fmt.Sprintf("The lora adapter '%s' has already been loaded.", in.Name))
		return
	}
	if st, err := os.Stat(filepath.Join(in.Path, "adapter_config.json")); err != nil || st.IsDir() {
		f.writeError(w, http.StatusNotFound, "NotFoundError", "", fmt.Sprintf("Loading lora %s failed: No adapter found for %s", in.Name, in.Path))
		return
	}
	f.adapters = append(f.adapters, vllmAdapter{name: in.Name, path: in.Path, runtime: true})
	openaiText(w, fmt.Sprintf("Success: LoRA adapter '%s' added successfully.", in.Name))
}

func (f *OpenAI) handleUnload(w http.ResponseWriter, r *http.Request) {
	var in openaiLoadWire
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		f.badRequest(w, err.Error())
		return
	}
	if in.Name == "" {
		f.writeError(w, http.StatusBadRequest, "InvalidUserInput", "", "either 'lora_name' and 'lora_int_id' needs to be provided.")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.adapterLocked(in.Name)
	if i < 0 {
		f.writeError(w, http.StatusNotFound, "NotFoundError", "", fmt.Sprintf("The lora adapter '%s' cannot be found.", in.Name))
		return
	}
	f.adapters = append(f.adapters[:i], f.adapters[i+1:]...)
	openaiText(w, fmt.Sprintf("Success: LoRA adapter '%s' removed successfully.", in.Name))
}

func (f *OpenAI) handleEmbed(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Model string          `json:"model"`
		Input json.RawMessage `json:"input"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		f.badRequest(w, err.Error())
		return
	}
	inputs, err := openaiStrings(in.Input)
	if err != nil || len(inputs) == 0 {
		f.badRequest(w, "input must be a non-empty string or list of strings")
		return
	}
	if !f.knownModel(in.Model) {
		f.unknownModel(w, in.Model)
		return
	}
	resp, err := f.opts.Responder.Embed(r.Context(), &llm.EmbedRequest{Model: in.Model, Input: inputs})
	if err != nil {
		f.modelError(w, err)
		return
	}
	data := make([]map[string]any, len(resp.Vectors))
	for i, v := range resp.Vectors {
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": v}
	}
	openaiJSON(w, http.StatusOK, map[string]any{
		"object": "list", "model": in.Model, "data": data,
		"usage": map[string]any{"prompt_tokens": resp.Usage.PromptTokens, "total_tokens": resp.Usage.PromptTokens},
	})
}

// openaiStrings decodes a JSON string or list of strings.
func openaiStrings(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, err
	}
	return list, nil
}

func openaiJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func openaiText(w http.ResponseWriter, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, text)
}

// openaiRaw writes an injected answer, labelled JSON when it is.
func openaiRaw(w http.ResponseWriter, status int, body string) {
	ct := "text/plain; charset=utf-8"
	if json.Valid([]byte(body)) {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}
