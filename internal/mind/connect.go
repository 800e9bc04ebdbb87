package mind

import (
	"context"
	"strings"
	"time"

	"batos/internal/llm"
	"batos/internal/llm/ollama"
	"batos/internal/llm/openai"
)

// This file is the one place in mind that knows the concrete clients:
// newClient picks one by API and probe checks that its server answers.
// Everything else (the memory manager, personas, accounting) speaks to
// Server.Client through llm's interfaces.

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
	tried := &ProbeError{}
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
		tried.Tried = append(tried.Tried, ProbeAttempt{ep, err})
	}
	return nil, tried
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
	client, err := newClient(ep.API, ep.URL, cfg)
	if err != nil {
		return nil, err
	}
	version, err := probe(pctx, client)
	if err != nil {
		return nil, err
	}
	s := &Server{URL: ep.URL, API: ep.API, Version: version, DefaultModel: cfg.Model, Client: client}
	if s.API == APIOllama {
		return s, nil
	}
	if s.API == APIOpenAI {
		s.API = detectFlavour(pctx, client)
	}
	if s.DefaultModel == "" {
		s.DefaultModel, s.Offered = onlyBaseModel(pctx, client)
	}
	return s, nil
}

// newClient returns the client for a server speaking api at url: Ollama's
// native API, or an OpenAI-compatible one for every other API.
func newClient(api API, url string, cfg ServerConfig) (llm.Model, error) {
	if api == APIOllama {
		c, err := ollama.New(url, &ollama.Options{Retry: cfg.Retry})
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	c, err := openai.New(url, &openai.Options{APIKey: cfg.APIKey, Retry: cfg.Retry})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// probe checks that the client's server answers, and returns its version
// where it reports one (Ollama).
func probe(ctx context.Context, client llm.Model) (version string, err error) {
	switch c := client.(type) {
	case *ollama.Client:
		return c.Version(ctx)
	case *openai.Client:
		return "", c.Health(ctx)
	}
	return "", nil
}

// setRetry gives a probed server the caller's retry policy for real use.
func (s *Server) setRetry(cfg ServerConfig) {
	if c, err := newClient(s.API, s.URL, cfg); err == nil {
		s.Client = c
	}
}

// detectFlavour tells llama-server (it answers /lora-adapters) and vLLM
// (its models are owned by "vllm") from other OpenAI-compatible servers.
func detectFlavour(ctx context.Context, client llm.Model) API {
	if a, ok := client.(llm.AdapterLister); ok {
		if _, err := a.LoRAAdapters(ctx); err == nil {
			return APILlamaServer
		}
	}
	if l, ok := client.(llm.Lister); ok {
		if models, err := l.Models(ctx); err == nil {
			for _, m := range models {
				if m.OwnedBy == "vllm" {
					return APIVLLM
				}
			}
		}
	}
	return APIOpenAI
}

// onlyBaseModel is the model an OpenAI-compatible server serves when
// it lists one base model and nothing else but its adapters (vLLM names
// their base as parent; llama-server lists its one model). A server
// listing several, or adapters it does not mark as such (Ollama's /v1
// lists an adapter model as a model of its own, in no useful order),
// leaves the choice to the user: the default is "" and offered is the
// list to pick from.
func onlyBaseModel(ctx context.Context, client llm.Model) (model string, offered []string) {
	l, ok := client.(llm.Lister)
	if !ok {
		return "", nil
	}
	models, err := l.Models(ctx)
	if err != nil {
		return "", nil
	}
	var bases []string
	for _, m := range models {
		offered = append(offered, m.ID)
		if m.Parent == "" {
			bases = append(bases, m.ID)
		}
	}
	if len(bases) == 1 {
		return bases[0], nil
	}
	return "", offered
}
