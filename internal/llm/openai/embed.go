package openai

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"batos/internal/llm"
)

type embedWire struct {
	Model string   `json:"model"`
	Input []string `json:"input"`
}

type embeddingsWire struct {
	Model string `json:"model"`
	Data  []struct {
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
	Usage *llm.Usage `json:"usage"`
}

// Embed implements llm.Model with POST /v1/embeddings. The vectors are
// put in input order by each one's index; an answer with a vector
// missing, repeated or of another width wraps llm.ErrBadResponse. An
// empty input is answered without a call. (llama-server needs
// --embeddings, and answers 501 without it: an error wrapping
// llm.ErrUnsupported.)
func (c *Client) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	if req == nil {
		return nil, errors.New("openai: nil embed request")
	}
	start := time.Now()
	out := &llm.EmbedResponse{Model: req.Model}
	if len(req.Input) == 0 {
		return out, nil
	}
	in := embedWire{Model: req.Model, Input: req.Input}
	err := c.call(ctx, DefaultChatTimeout, http.MethodPost, "/v1/embeddings", in, func(op string, body []byte) error {
		var w embeddingsWire
		if err := json.Unmarshal(body, &w); err != nil {
			return badResponse(op, "decode: %w", err)
		}
		vectors, err := w.vectors(op, len(req.Input))
		if err != nil {
			return err
		}
		out.Vectors = vectors
		if w.Model != "" {
			out.Model = w.Model
		}
		if w.Usage != nil {
			out.Usage = *w.Usage
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out.Timings.Latency = time.Since(start)
	return out, nil
}

// vectors orders the answer's vectors by index and checks there is one
// for each of n inputs, all of one width.
func (w *embeddingsWire) vectors(op string, n int) ([][]float32, error) {
	if len(w.Data) != n {
		return nil, badResponse(op, "%d embeddings for %d inputs", len(w.Data), n)
	}
	out := make([][]float32, n)
	width := len(w.Data[0].Embedding)
	for _, d := range w.Data {
		switch {
		case d.Index < 0 || d.Index >= n:
			return nil, badResponse(op, "embedding index %d out of range for %d inputs", d.Index, n)
		case out[d.Index] != nil:
			return nil, badResponse(op, "embedding index %d repeated", d.Index)
		case len(d.Embedding) == 0 || len(d.Embedding) != width:
			return nil, badResponse(op, "embedding %d has width %d, want %d", d.Index, len(d.Embedding), width)
		}
		out[d.Index] = d.Embedding
	}
	return out, nil
}
