package main

import (
	"context"
	"flag"
	"net/url"
	"os"
	"strings"

	"batos/internal/image"
	"batos/internal/mind"
	"batos/internal/uvm"
)

// serverFlags are the flags that name an inference server.
type serverFlags struct {
	url, api, model *string
}

func addServerFlags(fs *flag.FlagSet) serverFlags {
	return serverFlags{
		url:   fs.String("llm", "", "inference server URL (default: the one batos run recorded, else probe Ollama on 127.0.0.1:11434 and llama-server on 127.0.0.1:8080)"),
		api:   fs.String("llm-api", "", "the server's API: ollama, openai, llama-server or vllm (openai tells llama-server and vLLM apart by itself)"),
		model: fs.String("model", "", "default model name for personas that name none"),
	}
}

// config turns the flags into a server configuration; without -llm it
// falls back to what the image recorded. The API key comes from
// BATOS_LLM_API_KEY so it never sits in shell history or the image.
func (f serverFlags) config(ctx context.Context, db *image.DB) (mind.ServerConfig, error) {
	if db == nil {
		return f.configFrom(nil)
	}
	return f.configFrom(func() (mind.ServerConfig, error) { return mind.LoadServerConfig(ctx, db) })
}

// configFrom is config with the image's recorded server read by
// recorded (nil: there is no image to read).
func (f serverFlags) configFrom(recorded func() (mind.ServerConfig, error)) (mind.ServerConfig, error) {
	api, err := mind.ParseAPI(*f.api)
	if err != nil {
		return mind.ServerConfig{}, usageError("%v", err)
	}
	if *f.url != "" {
		// A mistyped URL is the user's to fix, not a server that did not answer.
		if u, err := url.Parse(*f.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return mind.ServerConfig{}, usageError("-llm %q: want http://HOST:PORT or https://HOST:PORT", *f.url)
		}
	}
	cfg := mind.ServerConfig{URL: *f.url, API: api, Model: *f.model, APIKey: os.Getenv("BATOS_LLM_API_KEY")}
	if cfg.URL == "" && recorded != nil {
		saved, err := recorded()
		if err != nil {
			return cfg, err
		}
		// A -llm-api other than the recorded server's asks for another
		// server: probe for it rather than call the recorded one so.
		// ("openai" covers the llama-server or vLLM it was found to be.)
		same := cfg.API == "" || cfg.API == saved.API || (cfg.API == mind.APIOpenAI && saved.API != mind.APIOllama)
		if saved.URL != "" && same {
			cfg.URL, cfg.API = saved.URL, saved.API
		}
		if cfg.Model == "" {
			cfg.Model = saved.Model
		}
	} else if cfg.Model == "" && recorded != nil {
		// The same server given again without -model keeps its recorded
		// default model.
		saved, err := recorded()
		if err != nil {
			return cfg, err
		}
		if strings.TrimSuffix(saved.URL, "/") == strings.TrimSuffix(cfg.URL, "/") {
			cfg.Model = saved.Model
		}
	}
	return cfg, nil
}

// given reports whether any of the flags was given.
func (f serverFlags) given() bool { return *f.url != "" || *f.api != "" || *f.model != "" }

// cacheDir is where adapters are written for servers that read files:
// derived data beside the image, rebuilt from it when missing.
func cacheDir(e *env) string { return uvm.DataDir(e.image, ".cache") }
