package mind

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"batos/internal/llm"
	"batos/internal/llm/ollama"
	"batos/internal/llm/openai"
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
	// DefaultModel is used by personas that name no model.
	DefaultModel string
	Model        llm.Model

	ollama *ollama.Client
	openai *openai.Client
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
	var b strings.Builder
	b.WriteString("mind: no inference server reachable (tried ")
	for i, t := range e.Tried {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s at %s: %v", t.API, t.URL, t.Err)
	}
	b.WriteString(")")
	return b.String()
}

func (e *ProbeError) Unwrap() error { return ErrNoServer }

// Connect reaches the configured server, or probes DefaultEndpoints when
// cfg.URL is empty, and tells what kind of server it is.
func Connect(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if cfg.URL != "" {
		api := cfg.API
		if api == "" {
			api = APIOpenAI
			if strings.Contains(cfg.URL, ":11434") {
				api = APIOllama
			}
		}
		return connect(ctx, Endpoint{api, cfg.URL}, cfg)
	}
	probe := &ProbeError{}
	for _, ep := range DefaultEndpoints {
		if cfg.API != "" && !sameFamily(cfg.API, ep.API) {
			continue
		}
		if cfg.API != "" {
			// Told vllm (or openai: detect), not whatever listens on
			// llama-server's port.
			ep.API = cfg.API
		}
		// A probe is one quick try: nothing listening is the common case.
		c := cfg
		c.Retry = llm.Retry{Attempts: 1}
		s, err := connect(ctx, ep, c)
		if err == nil {
			s.setRetry(cfg)
			return s, nil
		}
		probe.Tried = append(probe.Tried, ProbeAttempt{ep, err})
	}
	return nil, probe
}

func sameFamily(a, b API) bool {
	return a == b || (a != APIOllama && b != APIOllama)
}

func connect(ctx context.Context, ep Endpoint, cfg ServerConfig) (*Server, error) {
	timeout := cfg.ProbeTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s := &Server{URL: ep.URL, API: ep.API, DefaultModel: cfg.Model}
	if ep.API == APIOllama {
		c, err := ollama.New(ep.URL, &ollama.Options{Retry: cfg.Retry})
		if err != nil {
			return nil, err
		}
		v, err := c.Version(pctx)
		if err != nil {
			return nil, err
		}
		s.ollama, s.Model, s.Version = c, c, v
		return s, nil
	}
	c, err := openai.New(ep.URL, &openai.Options{APIKey: cfg.APIKey, Retry: cfg.Retry})
	if err != nil {
		return nil, err
	}
	if err := c.Health(pctx); err != nil {
		return nil, err
	}
	s.openai, s.Model = c, c
	if s.API == APIOpenAI {
		s.API = detectFlavour(pctx, c)
	}
	if s.DefaultModel == "" {
		if models, err := c.Models(pctx); err == nil {
			for _, m := range models {
				if m.Parent == "" { // vLLM lists adapters with their base as parent
					s.DefaultModel = m.ID
					break
				}
			}
		}
	}
	return s, nil
}

// setRetry gives a probed server the caller's retry policy for real use.
func (s *Server) setRetry(cfg ServerConfig) {
	if s.ollama != nil {
		if c, err := ollama.New(s.URL, &ollama.Options{Retry: cfg.Retry}); err == nil {
			s.ollama, s.Model = c, c
		}
		return
	}
	if c, err := openai.New(s.URL, &openai.Options{APIKey: cfg.APIKey, Retry: cfg.Retry}); err == nil {
		s.openai, s.Model = c, c
	}
}

// detectFlavour tells llama-server (it answers /lora-adapters) and vLLM
// (its models are owned by "vllm") from other OpenAI-compatible servers.
func detectFlavour(ctx context.Context, c *openai.Client) API {
	if _, err := c.LoRAAdapters(ctx); err == nil {
		return APILlamaServer
	}
	if models, err := c.Models(ctx); err == nil {
		for _, m := range models {
			if m.OwnedBy == "vllm" {
				return APIVLLM
			}
		}
	}
	return APIOpenAI
}

// Models lists the model names the server has.
func (s *Server) Models(ctx context.Context) ([]string, error) {
	var out []string
	if s.ollama != nil {
		tags, err := s.ollama.Tags(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range tags {
			out = append(out, t.Name)
		}
		return out, nil
	}
	models, err := s.openai.Models(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range models {
		out = append(out, m.ID)
	}
	return out, nil
}

// Describe is one line naming the server.
func (s *Server) Describe() string {
	d := fmt.Sprintf("%s at %s", s.API, s.URL)
	if s.Version != "" {
		d += " (version " + s.Version + ")"
	}
	return d
}
