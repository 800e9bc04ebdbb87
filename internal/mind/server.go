package mind

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"batos/internal/llm"
)

// API names a server API. "openai" is any OpenAI-compatible server;
// Connect tells llama-server and vLLM apart from a generic one, because
// each serves adapters its own way.
type API string

// The APIs batos speaks.
const (
	APIOllama      API = "ollama"
	APIOpenAI      API = "openai"
	APILlamaServer API = "llama-server"
	APIVLLM        API = "vllm"
)

// ParseAPI checks an API name given by a user.
func ParseAPI(s string) (API, error) {
	switch a := API(strings.ToLower(s)); a {
	case APIOllama, APIOpenAI, APILlamaServer, APIVLLM:
		return a, nil
	case "":
		return "", nil
	}
	return "", fmt.Errorf("unknown server API %q: want ollama, openai, llama-server or vllm", s)
}

// ServerConfig says which inference server to use. A zero URL means
// probe the default endpoints.
type ServerConfig struct {
	URL string
	API API
	// Model is the default model name for personas that name none.
	Model  string
	APIKey string
	// Retry governs retries of transient failures; zero: llm's defaults.
	Retry llm.Retry
	// ProbeTimeout bounds each reachability check; default 2 s.
	ProbeTimeout time.Duration
}

// Endpoint is a server batos looks for when none is configured.
type Endpoint struct {
	API API
	URL string
}

// DefaultEndpoints are probed in order when no server is configured.
var DefaultEndpoints = []Endpoint{
	{APIOllama, "http://127.0.0.1:11434"},
	{APILlamaServer, "http://127.0.0.1:8080"},
}

// Server is a connected inference server.
type Server struct {
	URL string
	API API // resolved: never plain "openai" when the flavour could be told
	// Version is the server's version where it reports one (Ollama).
	Version string
	// DefaultModel is used by personas that name no model: the one
	// given (-model, or recorded in pLLM), else, on an OpenAI-compatible
	// server, the one base model it lists. Ollama's default is pLLM's
	// weights (files.go).
	DefaultModel string
	// Offered lists the models an OpenAI-compatible server serves when
	// Connect was given none and could not choose one (it lists
	// several): a persona that names no model is refused with this list
	// to pick from.
	Offered []string
	// Client speaks to the server. The memory manager finds what else it
	// can do (llm.BlobStore, llm.AdapterLoader, ...) by type assertion; a
	// client without what the server's API needs for adapters serves
	// personas without one, and reports the others' adapters as
	// unsupported.
	Client llm.Model
}

// ErrNoServer is returned when no inference server could be reached.
var ErrNoServer = errors.New("mind: no inference server reachable")

// ProbeError lists the endpoints tried and why each failed.
type ProbeError struct {
	Tried []ProbeAttempt
}

// ProbeAttempt is one endpoint tried.
type ProbeAttempt struct {
	Endpoint
	Err error
}

func (e *ProbeError) Error() string {
	return "mind: no inference server reachable (" + e.tried() + ")"
}

// tried lists the endpoints tried and why each failed.
func (e *ProbeError) tried() string {
	var b strings.Builder
	b.WriteString("tried ")
	for i, t := range e.Tried {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s at %s: %v", t.API, t.URL, t.Err)
	}
	return b.String()
}

// Unanswered says why no inference server answered, as the aside of a
// no-mind error (vm.NoMindError) reads it: the endpoints tried and why
// each failed, for a ProbeError; "" for ErrNoServer alone (none was
// tried); else err's message.
func Unanswered(err error) string {
	var p *ProbeError
	switch {
	case errors.As(err, &p):
		return p.tried()
	case err == nil, err == ErrNoServer:
		return ""
	}
	return err.Error()
}

func (e *ProbeError) Unwrap() error { return ErrNoServer }

// Models lists the model names the server has.
func (s *Server) Models(ctx context.Context) ([]string, error) {
	l, err := capability[llm.Lister](s, "list models")
	if err != nil {
		return nil, err
	}
	models, err := l.Models(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(models))
	for i, m := range models {
		out[i] = m.ID
	}
	return out, nil
}

// capability returns the server's client as a T, or an error wrapping
// llm.ErrUnsupported that says what the client cannot do.
func capability[T any](s *Server, what string) (T, error) {
	c, ok := s.Client.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("%w: the %s client cannot %s", llm.ErrUnsupported, s.API, what)
	}
	return c, nil
}

// Describe is one line naming the server.
func (s *Server) Describe() string {
	d := fmt.Sprintf("%s at %s", s.API, s.URL)
	if s.Version != "" {
		d += " (version " + s.Version + ")"
	}
	return d
}
