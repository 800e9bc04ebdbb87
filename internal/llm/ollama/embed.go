package ollama

import (
	"context"
	"errors"
	"net/http"
	"time"

	"batos/internal/llm"
)

type embedWire struct {
	Model string   `json:"model"`
	Input []string `json:"input"`
}

type embedAnswer struct {
	Model           string      `json:"model"`
	Embeddings      [][]float32 `json:"embeddings"`
	TotalDuration   int64       `json:"total_duration"`
	LoadDuration    int64       `json:"load_duration"`
	PromptEvalCount int         `json:"prompt_eval_count"`
}

// Embed implements llm.Model with POST /api/embed. An answer whose
// vector count differs from the input count, or whose vectors differ in
// width, wraps llm.ErrBadResponse. An empty input is answered without a
// call (Ollama would load the model for it). A 404 wraps
// llm.ErrModelNotFound.
func (c *Client) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	start := time.Now()
	if req.Model == "" {
		return nil, errors.New("ollama: embed: no model")
	}
	if len(req.Input) == 0 {
		return &llm.EmbedResponse{Model: req.Model, Timings: llm.Timings{Latency: time.Since(start)}}, nil
	}
	const path = "/api/embed"
	var a embedAnswer
	if err := c.call(ctx, DefaultLongTimeout, http.MethodPost, path, &embedWire{Model: req.Model, Input: req.Input}, &a); err != nil {
		return nil, modelError(err)
	}
	op := c.op(http.MethodPost, path)
	if len(a.Embeddings) != len(req.Input) {
		return nil, badResponse(op, "%d vectors for %d inputs", len(a.Embeddings), len(req.Input))
	}
	for i, v := range a.Embeddings {
		if len(v) == 0 || len(v) != len(a.Embeddings[0]) {
			return nil, badResponse(op, "vector %d has width %d, vector 0 %d", i, len(v), len(a.Embeddings[0]))
		}
	}
	return &llm.EmbedResponse{
		Model:   a.Model,
		Vectors: a.Embeddings,
		Usage:   llm.Usage{PromptTokens: a.PromptEvalCount},
		Timings: llm.Timings{
			Latency: time.Since(start),
			Total:   time.Duration(a.TotalDuration),
			Load:    time.Duration(a.LoadDuration),
		},
	}, nil
}
