package ollama

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"batos/internal/llm"
)

type createWire struct {
	Model      string            `json:"model"`
	From       string            `json:"from,omitempty"`
	Files      map[string]string `json:"files,omitempty"`
	Adapters   map[string]string `json:"adapters,omitempty"`
	System     string            `json:"system,omitempty"`
	Template   string            `json:"template,omitempty"`
	Parameters map[string]any    `json:"parameters,omitempty"`
	Stream     bool              `json:"stream"`
}

// checkCreate refuses, before any call, what Ollama would refuse.
func checkCreate(r *llm.CreateRequest) error {
	switch {
	case r.Model == "":
		return errors.New("ollama: create: no model name")
	case r.From == "" && len(r.Files) == 0:
		return fmt.Errorf("ollama: create %s: neither From nor Files is set", r.Model)
	case len(r.Adapters) > 1:
		return fmt.Errorf("ollama: create %s: %d adapters, Ollama takes one per model: %w", r.Model, len(r.Adapters), llm.ErrUnsupported)
	}
	for _, m := range []map[string]string{r.Files, r.Adapters} {
		for name, d := range m {
			hex, ok := strings.CutPrefix(d, "sha256:")
			if err := checkDigest(hex); !ok || err != nil {
				return fmt.Errorf("ollama: create %s: file %s: digest %q is not sha256:<64 lowercase hex>", r.Model, name, d)
			}
		}
	}
	return nil
}

// Create makes a model: POST /api/create, streamed, every status line
// checked for an error and the last required to be "success". It
// refuses more than one adapter with an error wrapping
// llm.ErrUnsupported. Ollama does not check that an adapter fits its
// base: Load the new model to find out (see the package comment).
func (c *Client) Create(ctx context.Context, req *llm.CreateRequest) error {
	if err := checkCreate(req); err != nil {
		return err
	}
	const path = "/api/create"
	body, err := encode(path, &createWire{
		Model: req.Model, From: req.From, Files: req.Files, Adapters: req.Adapters,
		System: req.System, Template: req.Template, Parameters: req.Parameters, Stream: true,
	})
	if err != nil {
		return err
	}
	op := c.op(http.MethodPost, path)
	ctx, cancel := c.withTimeout(ctx, DefaultLongTimeout)
	defer cancel()
	// Status lines are not shown to the caller, so a create can be
	// retried whole on a transient failure.
	return modelError(c.retry.Do(ctx, func() error {
		resp, err := c.sendJSON(ctx, http.MethodPost, path, body)
		if err != nil {
			return err
		}
		err = readStream(ctx, op, resp.StatusCode, resp.Body, c.maxLine, func(line []byte) (bool, error) {
			var s struct {
				Status string `json:"status"`
			}
			if err := json.Unmarshal(line, &s); err != nil {
				return false, badResponse(op, "status line: %w", err)
			}
			return s.Status == "success", nil
		})
		closeStream(resp.Body)
		return err
	}))
}

// Running is a model loaded in the server's memory.
type Running struct {
	Name      string    `json:"name"`
	Model     string    `json:"model"`
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`      // bytes in memory
	SizeVRAM  int64     `json:"size_vram"` // of which on the GPU
	ExpiresAt time.Time `json:"expires_at"`
}

// PS lists the loaded models: GET /api/ps.
func (c *Client) PS(ctx context.Context) ([]Running, error) {
	var a struct {
		Models []Running `json:"models"`
	}
	if err := c.call(ctx, DefaultShortTimeout, http.MethodGet, "/api/ps", nil, &a); err != nil {
		return nil, err
	}
	return a.Models, nil
}

// Loaded lists the names of the models in memory: PS without the
// details.
func (c *Client) Loaded(ctx context.Context) ([]string, error) {
	running, err := c.PS(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(running))
	for i, r := range running {
		names[i] = r.Name
	}
	return names, nil
}

// Tag is a model the server has.
type Tag struct {
	Name       string    `json:"name"`
	Model      string    `json:"model"`
	Digest     string    `json:"digest"`
	Size       int64     `json:"size"`
	ModifiedAt time.Time `json:"modified_at"`
}

// Tags lists the models the server has: GET /api/tags.
func (c *Client) Tags(ctx context.Context) ([]Tag, error) {
	var a struct {
		Models []Tag `json:"models"`
	}
	if err := c.call(ctx, DefaultShortTimeout, http.MethodGet, "/api/tags", nil, &a); err != nil {
		return nil, err
	}
	return a.Models, nil
}

// Models lists the models the server has by name: Tags without the
// details.
func (c *Client) Models(ctx context.Context) ([]llm.ModelInfo, error) {
	tags, err := c.Tags(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]llm.ModelInfo, len(tags))
	for i, t := range tags {
		out[i] = llm.ModelInfo{ID: t.Name}
	}
	return out, nil
}

// showWire is what ContextLength reads of POST /api/show's answer.
type showWire struct {
	ModelInfo map[string]json.RawMessage `json:"model_info"`
}

// ContextLength returns the context length model was trained for: POST
// /api/show, model_info "<general.architecture>.context_length" (0 when
// the answer has none). It is the most a request's num_ctx should ask
// for. A model the server does not have wraps llm.ErrModelNotFound.
func (c *Client) ContextLength(ctx context.Context, model string) (int, error) {
	if model == "" {
		return 0, errors.New("ollama: show: no model")
	}
	in := struct {
		Model string `json:"model"`
	}{model}
	var a showWire
	const path = "/api/show"
	if err := c.call(ctx, DefaultShortTimeout, http.MethodPost, path, &in, &a); err != nil {
		return 0, modelError(err)
	}
	var arch string
	if raw, ok := a.ModelInfo["general.architecture"]; !ok || json.Unmarshal(raw, &arch) != nil || arch == "" {
		return 0, nil
	}
	var n int
	if raw, ok := a.ModelInfo[arch+".context_length"]; !ok || json.Unmarshal(raw, &n) != nil || n < 0 {
		return 0, nil
	}
	return n, nil
}

// Delete removes a model: DELETE /api/delete. A model the server does
// not have is an error wrapping llm.ErrModelNotFound.
func (c *Client) Delete(ctx context.Context, model string) error {
	if model == "" {
		return errors.New("ollama: delete: no model")
	}
	in := struct {
		Model string `json:"model"`
	}{model}
	return modelError(c.call(ctx, DefaultShortTimeout, http.MethodDelete, "/api/delete", &in, nil))
}

// Version returns the server's version: GET /api/version.
func (c *Client) Version(ctx context.Context) (string, error) {
	var a struct {
		Version string `json:"version"`
	}
	const path = "/api/version"
	if err := c.call(ctx, DefaultShortTimeout, http.MethodGet, path, nil, &a); err != nil {
		return "", err
	}
	if a.Version == "" {
		return "", badResponse(c.op(http.MethodGet, path), "no version")
	}
	return a.Version, nil
}
