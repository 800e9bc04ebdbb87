package openai

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"batos/internal/llm"
)

type modelsWire struct {
	Data []struct {
		ID          string `json:"id"`
		OwnedBy     string `json:"owned_by"`
		Parent      string `json:"parent"`
		Root        string `json:"root"`
		MaxModelLen int    `json:"max_model_len"` // vLLM
	} `json:"data"`
}

// ContextLength returns the context window the server gives model: on
// llama-server the n_ctx of its slots (GET /props,
// default_generation_settings.n_ctx), on vLLM the model's max_model_len
// (GET /v1/models). An OpenAI-compatible server that says neither
// (LM Studio, Ollama's /v1, hosted APIs) gives 0: unknown.
func (c *Client) ContextLength(ctx context.Context, model string) (int, error) {
	var props struct {
		Settings struct {
			NCtx int `json:"n_ctx"`
		} `json:"default_generation_settings"`
		NCtx int `json:"n_ctx"`
	}
	err := c.call(ctx, DefaultCallTimeout, http.MethodGet, "/props", nil, decodeJSON(&props))
	var api *llm.APIError
	switch {
	case err == nil:
		return max(props.Settings.NCtx, props.NCtx, 0), nil
	case !errors.As(err, &api) || api.Status != http.StatusNotFound:
		return 0, err
	}
	var w modelsWire
	if err := c.call(ctx, DefaultCallTimeout, http.MethodGet, "/v1/models", nil, decodeJSON(&w)); err != nil {
		return 0, err
	}
	for _, m := range w.Data {
		if m.ID == model {
			return max(m.MaxModelLen, 0), nil
		}
	}
	return 0, nil
}

// Models lists the models the server serves (GET /v1/models). On vLLM
// that includes the adapters, with Parent set.
func (c *Client) Models(ctx context.Context) ([]llm.ModelInfo, error) {
	var w modelsWire
	if err := c.call(ctx, DefaultCallTimeout, http.MethodGet, "/v1/models", nil, decodeJSON(&w)); err != nil {
		return nil, err
	}
	out := make([]llm.ModelInfo, len(w.Data))
	for i, m := range w.Data {
		out[i] = llm.ModelInfo{ID: m.ID, OwnedBy: m.OwnedBy, Parent: m.Parent, Root: m.Root}
	}
	return out, nil
}

// LoRAAdapters lists llama-server's adapters (GET /lora-adapters). On a
// server without the endpoint the error wraps llm.ErrUnsupported.
func (c *Client) LoRAAdapters(ctx context.Context) ([]llm.AdapterInfo, error) {
	var out []llm.AdapterInfo
	err := c.call(ctx, DefaultCallTimeout, http.MethodGet, "/lora-adapters", nil, decodeJSON(&out))
	if err != nil {
		return nil, missingEndpoint(err, "no /lora-adapters: not llama-server")
	}
	return out, nil
}

// SetLoRAScales sets llama-server's global adapter scales (POST
// /lora-adapters); adapters not listed get scale 0.
func (c *Client) SetLoRAScales(ctx context.Context, scales []llm.LoRA) error {
	if scales == nil {
		scales = []llm.LoRA{}
	}
	err := c.call(ctx, DefaultCallTimeout, http.MethodPost, "/lora-adapters", scales, nil)
	return missingEndpoint(err, "no /lora-adapters: not llama-server")
}

const runtimeLoRAHint = "runtime LoRA loading is off: start vLLM with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"

// LoadLoRA has vLLM load the PEFT adapter directory at path (on the
// server's disk) and serve it as the model name (POST
// /v1/load_lora_adapter). vLLM answers a path it cannot load with 404
// NotFoundError, returned as the *llm.APIError; when runtime loading is
// off the endpoint is missing and the error wraps llm.ErrUnsupported.
func (c *Client) LoadLoRA(ctx context.Context, name, path string) error {
	if name == "" || path == "" {
		return errors.New("openai: load LoRA: empty name or path")
	}
	in := struct {
		Name string `json:"lora_name"`
		Path string `json:"lora_path"`
	}{name, path}
	// Success is a plain-text sentence: read and dropped, never decoded.
	err := c.call(ctx, DefaultCallTimeout, http.MethodPost, "/v1/load_lora_adapter", in, nil)
	if err != nil {
		return fmt.Errorf("load LoRA %s: %w", name, missingEndpoint(err, runtimeLoRAHint))
	}
	return nil
}

// UnloadLoRA has vLLM stop serving the adapter name (POST
// /v1/unload_lora_adapter). An adapter vLLM does not know is a 404
// NotFoundError *llm.APIError; a missing endpoint wraps
// llm.ErrUnsupported.
func (c *Client) UnloadLoRA(ctx context.Context, name string) error {
	if name == "" {
		return errors.New("openai: unload LoRA: empty name")
	}
	in := struct {
		Name string `json:"lora_name"`
	}{name}
	err := c.call(ctx, DefaultCallTimeout, http.MethodPost, "/v1/unload_lora_adapter", in, nil)
	if err != nil {
		return fmt.Errorf("unload LoRA %s: %w", name, missingEndpoint(err, runtimeLoRAHint))
	}
	return nil
}

// missingEndpoint wraps llm.ErrUnsupported around a 404 that means the
// server lacks the endpoint. vLLM's own 404 NotFoundError (an adapter or
// path it cannot find) is an answer of the endpoint, not its absence.
func missingEndpoint(err error, hint string) error {
	var api *llm.APIError
	if errors.As(err, &api) && api.Status == http.StatusNotFound && api.Type != "NotFoundError" {
		return fmt.Errorf("%w: %s: %w", llm.ErrUnsupported, hint, err)
	}
	return err
}
