package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"time"

	"batos/internal/llm"
)

const chatPath = "/v1/chat/completions"

// chatWire is the body of POST /v1/chat/completions. Options left at
// their zero value are not sent, so the server's defaults apply.
type chatWire struct {
	Model          string          `json:"model"`
	Messages       []llm.Message   `json:"messages"`
	Temperature    *float64        `json:"temperature,omitempty"`
	Seed           *int64          `json:"seed,omitempty"`
	MaxTokens      int             `json:"max_tokens,omitempty"`
	TopP           float64         `json:"top_p,omitempty"`
	TopK           int             `json:"top_k,omitempty"` // llama-server, vLLM
	Stop           []string        `json:"stop,omitempty"`
	Stream         bool            `json:"stream,omitempty"`
	StreamOptions  *streamOptions  `json:"stream_options,omitempty"`
	ResponseFormat *responseFormat `json:"response_format,omitempty"`
	LoRA           []llm.LoRA      `json:"lora,omitzero"` // llama-server; an empty list is sent: no adapter
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type responseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *jsonSchema `json:"json_schema,omitempty"`
}

type jsonSchema struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
	Strict bool            `json:"strict"`
}

func chatBody(req *llm.ChatRequest) *chatWire {
	o := req.Options
	w := &chatWire{
		Model: req.Model, Messages: req.Messages,
		Temperature: o.Temperature, Seed: o.Seed, MaxTokens: o.MaxTokens,
		TopP: o.TopP, TopK: o.TopK, Stop: o.Stop, LoRA: req.LoRA,
	}
	if w.Messages == nil {
		w.Messages = []llm.Message{}
	}
	if req.Stream != nil {
		w.Stream = true
		w.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	if len(req.Schema) > 0 {
		w.ResponseFormat = &responseFormat{
			Type:       "json_schema",
			JSONSchema: &jsonSchema{Name: "answer", Schema: req.Schema, Strict: true},
		}
	}
	return w
}

// completionWire is an answer of /v1/chat/completions: the whole answer,
// or one chunk of a stream. A server may put an error in it instead.
type completionWire struct {
	Object  string          `json:"object"`
	Model   string          `json:"model"`
	Choices []choiceWire    `json:"choices"`
	Usage   *llm.Usage      `json:"usage"`
	Timings *timingsWire    `json:"timings"` // llama-server
	Error   json.RawMessage `json:"error"`
}

type choiceWire struct {
	Message      *messageWire `json:"message"`
	Delta        *messageWire `json:"delta"`
	FinishReason string       `json:"finish_reason"`
}

type messageWire struct {
	Content string `json:"content"`
}

// timingsWire is llama-server's own measurement of a completion.
type timingsWire struct {
	PromptMS    float64 `json:"prompt_ms"`
	PredictedMS float64 `json:"predicted_ms"`
}

func (t *timingsWire) timings() llm.Timings {
	if t == nil {
		return llm.Timings{}
	}
	prompt := time.Duration(t.PromptMS * float64(time.Millisecond))
	eval := time.Duration(t.PredictedMS * float64(time.Millisecond))
	return llm.Timings{Total: prompt + eval, PromptEval: prompt, Eval: eval}
}

// errorIn returns the error a server put in a 200 answer or a stream
// event in place of a completion, or nil.
func (w *completionWire) errorIn(op string, status int, data []byte, inStream bool) error {
	if !present(w.Error) && w.Object != "error" {
		return nil
	}
	e := &llm.APIError{Op: op, Status: status, InStream: inStream}
	e.Message, e.Type, e.Code, _ = parseError(data)
	return e
}

// final hides an error from the retry policy: part of the answer has
// been delivered, so trying again would deliver it twice.
type final struct{ err error }

func (f final) Error() string { return f.err.Error() }

// Chat implements llm.Model. With req.Stream set it asks for a stream
// (with usage in its last chunk) and delivers the text as it arrives;
// a server that answers a stream request with plain JSON is accepted,
// its text delivered as one chunk.
func (c *Client) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	if req == nil {
		return nil, errors.New("openai: nil chat request")
	}
	start := time.Now()
	body, err := json.Marshal(chatBody(req))
	if err != nil {
		return nil, fmt.Errorf("openai: encode chat request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout(DefaultChatTimeout))
	defer cancel()
	var resp *llm.ChatResponse
	delivered := false
	err = c.retry.Do(ctx, func() error {
		var err error
		resp, err = c.chatOnce(ctx, req, body, &delivered)
		if err != nil && delivered {
			return final{err}
		}
		return err
	})
	if f, ok := err.(final); ok {
		err = f.err
	}
	if ptl := (*llm.PromptTooLongError)(nil); errors.As(err, &ptl) {
		ptl.Model, ptl.Answer = req.Model, req.Options.MaxTokens
	}
	if err != nil {
		return nil, err
	}
	resp.Timings.Latency = time.Since(start)
	return resp, nil
}

// chatOnce makes one attempt. delivered is set once any text has been
// handed to req.Stream.
func (c *Client) chatOnce(ctx context.Context, req *llm.ChatRequest, body []byte, delivered *bool) (*llm.ChatResponse, error) {
	accept := "application/json"
	if req.Stream != nil {
		accept = "text/event-stream"
	}
	resp, err := c.send(ctx, http.MethodPost, chatPath, body, accept)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	op := c.op(http.MethodPost, chatPath)
	if req.Stream != nil && !isJSON(resp.Header) {
		return readStream(ctx, op, resp, req.Stream, delivered)
	}
	data, err := readBody(ctx, op, resp.Body, maxBody)
	if err != nil {
		return nil, err
	}
	out, err := decodeCompletion(op, resp.StatusCode, data)
	if err != nil {
		return nil, err
	}
	if req.Stream != nil && out.Text != "" {
		*delivered = true
		if err := req.Stream(llm.Chunk{Text: out.Text}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func isJSON(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "application/json"
}

// decodeCompletion reads a whole (non-streamed) answer.
func decodeCompletion(op string, status int, data []byte) (*llm.ChatResponse, error) {
	var w completionWire
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, badResponse(op, "decode: %w", err)
	}
	if err := w.errorIn(op, status, data, false); err != nil {
		return nil, err
	}
	if len(w.Choices) == 0 || w.Choices[0].Message == nil {
		return nil, badResponse(op, "no message in the answer")
	}
	ch := w.Choices[0]
	out := &llm.ChatResponse{
		Text: ch.Message.Content, Model: w.Model, FinishReason: ch.FinishReason,
		Timings: w.Timings.timings(),
	}
	if w.Usage != nil {
		out.Usage = *w.Usage
	}
	return out, nil
}
