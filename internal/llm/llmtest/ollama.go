package llmtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/llm"
)

// OllamaVersion is the version the fake Ollama reports: the one
// llm-servers.md was checked against.
const OllamaVersion = "0.17.4"

// The fake Ollama's made-up timings, reported so that tests can check a
// client passes them through: loading a model that was not loaded takes
// OllamaLoadTime, each prompt token OllamaPromptTokenTime and each
// generated token OllamaTokenTime; total_duration adds the call's wall
// time to them.
const (
	OllamaLoadTime        = 20 * time.Millisecond
	OllamaPromptTokenTime = 100 * time.Microsecond
	OllamaTokenTime       = time.Millisecond
)

// ollamaKeepAlive is how long Ollama keeps a model loaded by default.
const ollamaKeepAlive = 5 * time.Minute

// OllamaOptions configure a fake Ollama.
type OllamaOptions struct {
	// Responder answers chats and embeddings (usually a *Model). Without
	// it, chats and embeddings fail with HTTP 500.
	Responder llm.Model
	// Models are present at start ("llama3.2:1b"), as if pulled. They
	// have no weights: AdapterFits sees a nil base for them.
	Models []string
	// AdapterFits decides whether a created model's adapter fits its base
	// (the bytes of the blobs named in files, or of the From model's).
	// nil means every adapter fits.
	AdapterFits func(base, adapter []byte) error
	// RestartDelay is how long Restart keeps the server down; default
	// 100 ms.
	RestartDelay time.Duration
	// ContextLength is the context length every model was trained for,
	// as POST /api/show reports it in model_info; default
	// OllamaContextLength.
	ContextLength int
}

// CreateRecord is what a POST /api/create asked for, as the fake
// understood it.
type CreateRecord struct {
	Name, From       string
	Files, Adapters  map[string]string
	System, Template string
	// Parameters as decoded with json.Number for numbers.
	Parameters map[string]any
	// AdapterErr is what AdapterFits said of the adapter; every chat on
	// the model fails with it, as Ollama fails to load such a model each
	// time it tries.
	AdapterErr error
}

// Ollama is a fake Ollama server following its native API closely
// enough for the ollama client's tests and for tests of code above it:
// blobs, create (one adapter, not checked until the first chat), chat
// (NDJSON streams, keep_alive, load and unload), embed, ps, tags, show,
// delete and version, and the OpenAI-compatible GET /v1/models, with
// Ollama's status codes and {"error": "..."} bodies. Its methods are
// safe for concurrent use.
//
// Chats keep Ollama's limits (ollama_limits.go): a prompt longer than
// num_ctx (default 2,048) is cut with a word only in PromptCuts and its
// prompt_eval_count is num_ctx; an answer reaching num_predict is cut
// with done_reason "length"; RepetitionGuardNext stops an answer as
// Ollama's repetition guard does, with "done": false.
type Ollama struct {
	// URL is the server's root, "http://127.0.0.1:<port>"; it stays the
	// same across Restart.
	URL string

	opts     OllamaOptions
	addr     string
	mux      *http.ServeMux
	rec      recorder
	stop     chan struct{} // closed by close: restarts give up
	restarts sync.WaitGroup

	mu      sync.Mutex
	srv     *httptest.Server // nil while down
	fails   []ollamaFault
	stream  *ollamaStreamFault
	guard   int // pieces before the repetition guard stops the next chat; -1: none
	cuts    []PromptCut
	blobs   map[string][]byte // hex digest → content
	models  map[string]*ollamaModel
	loaded  map[string]time.Time // model → when it expires
	created map[string]CreateRecord
	chats   map[string]int
}

// ollamaModel is a model the fake has.
type ollamaModel struct {
	name       string
	weights    []byte // the base GGUF, nil for models present at start
	digest     string
	size       int64
	modified   time.Time
	adapterErr error
}

// ollamaFault is an answer to give instead of the next request's.
type ollamaFault struct {
	status int
	body   string
	plain  bool // body is sent as text/plain, not {"error": body}
}

// ollamaStreamFault spoils the next stream after n lines: msg == "" cuts the
// connection, otherwise an {"error": msg} line ends the stream.
type ollamaStreamFault struct {
	after int
	msg   string
}

// NewOllama starts a fake Ollama on a local port; t's cleanup stops it.
// opts may be nil.
func NewOllama(t testing.TB, opts *OllamaOptions) *Ollama {
	t.Helper()
	if opts == nil {
		opts = &OllamaOptions{}
	}
	o := &Ollama{
		opts: *opts, stop: make(chan struct{}),
		blobs: map[string][]byte{}, models: map[string]*ollamaModel{}, loaded: map[string]time.Time{},
		created: map[string]CreateRecord{}, chats: map[string]int{}, guard: -1,
	}
	if o.opts.ContextLength <= 0 {
		o.opts.ContextLength = OllamaContextLength
	}
	if o.opts.RestartDelay <= 0 {
		o.opts.RestartDelay = 100 * time.Millisecond
	}
	now := time.Now()
	for _, name := range opts.Models {
		n := ollamaName(name)
		o.models[n] = &ollamaModel{name: n, digest: ollamaSHA256([]byte(n)), size: 1 << 20, modified: now}
	}
	o.routes()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("llmtest: fake Ollama: %v", err)
	}
	o.addr = ln.Addr().String()
	o.URL = "http://" + o.addr
	o.srv = o.serve(ln)
	t.Cleanup(o.close)
	return o
}

func (o *Ollama) routes() {
	o.mux = http.NewServeMux()
	o.mux.HandleFunc("HEAD /api/blobs/{digest}", o.handleHasBlob)
	o.mux.HandleFunc("POST /api/blobs/{digest}", o.handlePushBlob)
	o.mux.HandleFunc("POST /api/create", o.handleCreate)
	o.mux.HandleFunc("POST /api/chat", o.handleChat)
	o.mux.HandleFunc("POST /api/embed", o.handleEmbed)
	o.mux.HandleFunc("GET /api/ps", o.handlePS)
	o.mux.HandleFunc("GET /api/tags", o.handleTags)
	o.mux.HandleFunc("DELETE /api/delete", o.handleDelete)
	o.mux.HandleFunc("GET /api/version", o.handleVersion)
	o.mux.HandleFunc("POST /api/show", o.handleShow)
	o.mux.HandleFunc("GET /v1/models", o.handleOpenAIModels)
}

func (o *Ollama) serve(ln net.Listener) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(o.serveHTTP))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	return srv
}

// serveHTTP records every request and plays a pending FailNext before
// routing it. A request whose body could not be read whole (its client
// gave up part way) is recorded but not served.
func (o *Ollama) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	o.rec.read(r)
	if err != nil {
		return
	}
	o.mu.Lock()
	var f *ollamaFault
	if len(o.fails) > 0 {
		f = &o.fails[0]
		o.fails = o.fails[1:]
	}
	o.mu.Unlock()
	switch {
	case f == nil:
		o.mux.ServeHTTP(w, r)
	case f.plain:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(f.status)
		io.WriteString(w, f.body)
	default:
		ollamaError(w, f.status, f.body)
	}
}

// close stops the server for good, waiting for its handlers.
func (o *Ollama) close() {
	close(o.stop)
	o.restarts.Wait()
	o.mu.Lock()
	srv := o.srv
	o.srv = nil
	o.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

// Restart stops the server, dropping its connections, and serves again
// on the same address after OllamaOptions.RestartDelay, keeping what
// Ollama keeps on disk (models, blobs) and the fake's records and
// pending faults, but, like a new Ollama process, with no model loaded:
// clients see refused connections meanwhile. It returns at once.
func (o *Ollama) Restart(t testing.TB) {
	t.Helper()
	o.mu.Lock()
	srv := o.srv
	o.srv = nil
	clear(o.loaded)
	o.mu.Unlock()
	if srv == nil {
		t.Fatal("llmtest: fake Ollama restarted while down")
	}
	srv.CloseClientConnections()
	srv.Close()
	o.restarts.Add(1)
	go func() {
		defer o.restarts.Done()
		select {
		case <-o.stop:
			return
		case <-time.After(o.opts.RestartDelay):
		}
		ln, err := ollamaListen(o.addr, o.stop)
		if err != nil {
			t.Errorf("llmtest: fake Ollama restart: %v", err)
			return
		}
		o.mu.Lock()
		o.srv = o.serve(ln)
		o.mu.Unlock()
	}()
}

// ollamaListen listens on addr, trying for a second: another socket may
// hold the port for a moment.
func ollamaListen(addr string, stop <-chan struct{}) (net.Listener, error) {
	deadline := time.Now().Add(time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return ln, err
		}
		select {
		case <-stop:
			return nil, errors.New("stopped")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// FailNext makes the next request, of any kind, answer status with
// {"error": message}. Calls queue up: each fails one request.
func (o *Ollama) FailNext(status int, message string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fails = append(o.fails, ollamaFault{status: status, body: message})
}

// FailNextBody is FailNext with body sent as it is, as text/plain (a
// proxy's error page, say).
func (o *Ollama) FailNextBody(status int, body string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fails = append(o.fails, ollamaFault{status: status, body: body, plain: true})
}

// CutStreamAfter makes the next streamed answer (a chat, or a create's
// status lines) send n lines, or all it has if fewer, and then close the
// connection without its final object.
func (o *Ollama) CutStreamAfter(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stream = &ollamaStreamFault{after: n}
}

// ErrorMidStream makes the next streamed answer send n lines, or all it
// has if fewer, and then an {"error": msg} line instead of its final
// object.
func (o *Ollama) ErrorMidStream(n int, msg string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stream = &ollamaStreamFault{after: n, msg: msg}
}

// Requests returns copies of the requests received so far, in order.
func (o *Ollama) Requests() []RecordedRequest { return o.rec.requests() }

// Blob returns a stored blob by digest: "sha256:<hex>" or "<hex>".
func (o *Ollama) Blob(digest string) ([]byte, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b, ok := o.blobs[strings.TrimPrefix(digest, "sha256:")]
	return bytes.Clone(b), ok
}

// Created returns what the create of model name asked for.
func (o *Ollama) Created(name string) (CreateRecord, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c, ok := o.created[ollamaName(name)]
	return c, ok
}

// ChatCount is the number of chats with messages the server took for a
// model it has, failed ones included (loads and unloads are not
// counted).
func (o *Ollama) ChatCount(model string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.chats[ollamaName(model)]
}

// ollamaName adds Ollama's default tag: "llama3.2" is
// "llama3.2:latest".
func ollamaName(name string) string {
	if name == "" {
		return ""
	}
	if !strings.Contains(name[strings.LastIndexByte(name, '/')+1:], ":") {
		return name + ":latest"
	}
	return name
}

func ollamaSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// lookup finds a model by name.
func (o *Ollama) lookup(name string) (*ollamaModel, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	m, ok := o.models[ollamaName(name)]
	return m, ok
}

func ollamaJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func ollamaError(w http.ResponseWriter, status int, msg string) {
	ollamaJSON(w, status, map[string]string{"error": msg})
}

func ollamaNotFound(w http.ResponseWriter, name string) {
	ollamaError(w, http.StatusNotFound, fmt.Sprintf("model '%s' not found", name))
}

// ollamaDecode decodes a JSON request body, numbers as json.Number
// where the target is untyped; it answers 400 itself when it fails.
func ollamaDecode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		err = errors.New("missing request body")
	}
	if err != nil {
		ollamaError(w, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

// ollamaBlobDigest parses a blob path's "sha256:<hex>" (or "sha256-<hex>").
func ollamaBlobDigest(s string) (string, bool) {
	if len(s) != 7+64 || !strings.HasPrefix(s, "sha256") || (s[6] != ':' && s[6] != '-') {
		return "", false
	}
	h := strings.ToLower(s[7:])
	_, err := hex.DecodeString(h)
	return h, err == nil
}

// ollamaStream writes a streamed answer a line at a time, flushing each, and
// plays the stream fault it took when its time comes. Like Ollama, it
// sends its headers with the first line, so an error before any line
// can still be an HTTP error.
type ollamaStream struct {
	w       http.ResponseWriter
	fault   *ollamaStreamFault
	lines   int
	started bool
	spoiled bool // the fault was played: nothing more may be written
	cut     bool
}

// errOllamaSpoiled stops a Model's stream once a fault was played.
var errOllamaSpoiled = errors.New("llmtest: stream fault injected")

// newStream starts an answer, taking the pending stream fault.
func (o *Ollama) newStream(w http.ResponseWriter) *ollamaStream {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := &ollamaStream{w: w, fault: o.stream}
	o.stream = nil
	return s
}

func (s *ollamaStream) write(v any) error {
	if !s.started {
		s.w.Header().Set("Content-Type", "application/x-ndjson")
		s.w.WriteHeader(http.StatusOK)
		s.started = true
	}
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := s.w.Write(append(b, '\n')); err != nil {
			return err
		}
	}
	return http.NewResponseController(s.w).Flush()
}

// line writes one line before the final one, or plays the fault if due.
func (s *ollamaStream) line(v any) error {
	if s.spoiled {
		return errOllamaSpoiled
	}
	if s.fault != nil && s.lines >= s.fault.after {
		return s.play()
	}
	s.lines++
	return s.write(v)
}

func (s *ollamaStream) play() error {
	s.spoiled = true
	if s.fault.msg == "" {
		s.cut = true
		_ = s.write(nil)
	} else {
		_ = s.write(map[string]string{"error": s.fault.msg})
	}
	return errOllamaSpoiled
}

// finish ends the stream with final, or with the fault if one is
// pending or was played. A cut aborts the connection.
func (s *ollamaStream) finish(final any) {
	if !s.spoiled && s.fault != nil {
		_ = s.play()
	}
	if s.cut {
		panic(http.ErrAbortHandler)
	}
	if !s.spoiled {
		_ = s.write(final)
	}
}
