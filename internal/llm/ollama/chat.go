package ollama

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"batos/internal/llm"
)

// chatWire is the body of POST /api/chat.
type chatWire struct {
	Model    string          `json:"model"`
	Messages []llm.Message   `json:"messages"`
	Format   json.RawMessage `json:"format,omitempty"`
	Options  *optionsWire    `json:"options,omitempty"`
	// Stream is always sent: Ollama streams unless told not to.
	Stream    bool     `json:"stream"`
	KeepAlive *float64 `json:"keep_alive,omitempty"` // seconds
}

// optionsWire holds the sampling options that were set; the rest are
// left out so the server's (or the Modelfile's) defaults apply.
type optionsWire struct {
	Temperature *float64 `json:"temperature,omitempty"`
	Seed        *int64   `json:"seed,omitempty"`
	NumPredict  int      `json:"num_predict,omitempty"`
	TopK        int      `json:"top_k,omitempty"`
	TopP        float64  `json:"top_p,omitempty"`
	Stop        []string `json:"stop,omitempty"`
	NumCtx      int      `json:"num_ctx,omitempty"`
}

// chatAnswer is Ollama's answer to a chat: the whole of it, or one line
// of a stream (the last with Done set and the counts). Durations are
// integer nanoseconds.
type chatAnswer struct {
	Model   string `json:"model"`
	Message struct {
		Content string `json:"content"`
	} `json:"message"`
	Done               bool   `json:"done"`
	DoneReason         string `json:"done_reason"`
	TotalDuration      int64  `json:"total_duration"`
	LoadDuration       int64  `json:"load_duration"`
	PromptEvalCount    int    `json:"prompt_eval_count"`
	PromptEvalDuration int64  `json:"prompt_eval_duration"`
	EvalCount          int    `json:"eval_count"`
	EvalDuration       int64  `json:"eval_duration"`
}

// response turns the final answer into an llm.ChatResponse with text.
func (a *chatAnswer) response(text string) *llm.ChatResponse {
	return &llm.ChatResponse{
		Text:         text,
		Model:        a.Model,
		FinishReason: a.DoneReason,
		Usage:        llm.Usage{PromptTokens: a.PromptEvalCount, CompletionTokens: a.EvalCount},
		Timings: llm.Timings{
			Total:      time.Duration(a.TotalDuration),
			Load:       time.Duration(a.LoadDuration),
			PromptEval: time.Duration(a.PromptEvalDuration),
			Eval:       time.Duration(a.EvalDuration),
		},
	}
}

// aborted is an answer Ollama stopped before its end without saying
// why (its repetition guard): done false, no counts.
func aborted(model, text string) *llm.ChatResponse {
	return &llm.ChatResponse{Text: text, Model: model, FinishReason: llm.FinishAborted}
}

// keepAliveSeconds is how Ollama takes keep_alive as a number: seconds,
// negative for forever, zero to unload at once.
func keepAliveSeconds(d time.Duration) *float64 {
	s := d.Seconds()
	if d < 0 {
		s = -1
	}
	return &s
}

// chatBody builds the wire request for req.
func chatBody(req *llm.ChatRequest) (*chatWire, error) {
	switch {
	case len(req.LoRA) > 0:
		return nil, fmt.Errorf("ollama: chat %s: per-request LoRA (serve the adapter as a model of its own): %w", req.Model, llm.ErrUnsupported)
	case req.Model == "":
		return nil, errors.New("ollama: chat: no model")
	case len(req.Messages) == 0:
		return nil, fmt.Errorf("ollama: chat %s: no messages (use Load to load a model)", req.Model)
	case len(req.Schema) > 0 && !json.Valid(req.Schema):
		return nil, fmt.Errorf("ollama: chat %s: schema is not valid JSON", req.Model)
	}
	w := &chatWire{Model: req.Model, Messages: req.Messages, Format: req.Schema, Stream: req.Stream != nil}
	if req.KeepAlive != nil {
		w.KeepAlive = keepAliveSeconds(*req.KeepAlive)
	}
	o := req.Options
	opts := optionsWire{
		Temperature: o.Temperature, Seed: o.Seed, NumPredict: o.MaxTokens,
		TopK: o.TopK, TopP: o.TopP, Stop: o.Stop, NumCtx: o.ContextSize,
	}
	if opts.Temperature != nil || opts.Seed != nil || opts.NumPredict != 0 || opts.TopK != 0 ||
		opts.TopP != 0 || len(opts.Stop) > 0 || opts.NumCtx != 0 {
		w.Options = &opts
	}
	return w, nil
}

// Chat implements llm.Model with POST /api/chat. A request with a
// Stream callback is streamed; Schema becomes Ollama's format;
// KeepAlive is sent in seconds. Per-request LoRA is refused with an
// error wrapping llm.ErrUnsupported. A 404 wraps llm.ErrModelNotFound.
//
// An answer Ollama ends with "done": false (its repetition guard) is
// returned, cut, with FinishReason llm.FinishAborted. When
// Options.ContextSize is set and Ollama counts a prompt that fills it,
// the prompt was cut: Chat returns a *llm.PromptTooLongError (Server
// set) instead of an answer to part of it.
func (c *Client) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	start := time.Now()
	w, err := chatBody(req)
	if err != nil {
		return nil, err
	}
	body, err := encode("/api/chat", w)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.withTimeout(ctx, DefaultLongTimeout)
	defer cancel()
	var resp *llm.ChatResponse
	// final holds an error that came after part of the answer reached the
	// caller: retrying would deliver those pieces twice, so it ends the
	// retry loop as if the attempt had succeeded.
	var final error
	err = c.retry.Do(ctx, func() error {
		r, delivered, err := c.chatOnce(ctx, body, req.Stream)
		if err != nil && delivered {
			final = err
			return nil
		}
		resp = r
		return err
	})
	if final != nil {
		err = final
	}
	if err != nil {
		return nil, modelError(err)
	}
	resp.Timings.Latency = time.Since(start)
	if n := req.Options.ContextSize; n > 0 && resp.Usage.PromptTokens >= n {
		// Ollama cuts a prompt longer than num_ctx to num_ctx tokens and
		// says so only in its log: a prompt that fills the window was cut.
		return nil, &llm.PromptTooLongError{Model: req.Model, Prompt: resp.Usage.PromptTokens, Answer: req.Options.MaxTokens, Context: n, Server: true}
	}
	return resp, nil
}

// chatOnce makes one attempt at a chat. delivered reports whether any of
// the answer reached fn.
func (c *Client) chatOnce(ctx context.Context, body []byte, fn func(llm.Chunk) error) (resp *llm.ChatResponse, delivered bool, err error) {
	const path = "/api/chat"
	op := c.op(http.MethodPost, path)
	r, err := c.sendJSON(ctx, http.MethodPost, path, body)
	if err != nil {
		return nil, false, err
	}
	if fn == nil {
		defer drainClose(r.Body)
		var a chatAnswer
		if err := c.decode(ctx, op, r.Body, &a); err != nil {
			return nil, false, err
		}
		if !a.Done {
			// Ollama's repetition guard: the text as far as it got.
			return aborted(a.Model, a.Message.Content), false, nil
		}
		return a.response(a.Message.Content), false, nil
	}
	resp, delivered, err = readChatStream(ctx, op, r.StatusCode, r.Body, c.maxLine, c.maxAnswer, fn)
	closeStream(r.Body)
	return resp, delivered, err
}

// readChatStream reads a streamed chat answer, giving each piece of text
// to fn. delivered reports whether any piece reached fn. The text is
// kept whole for the response, so a server that streams more than
// maxText bytes of it is cut off, as an answer over maxAnswer is.
func readChatStream(ctx context.Context, op string, status int, r io.Reader, maxLine int, maxText int64, fn func(llm.Chunk) error) (resp *llm.ChatResponse, delivered bool, err error) {
	var text strings.Builder
	model, lines := "", 0
	err = readStream(ctx, op, status, r, maxLine, func(line []byte) (bool, error) {
		lines++
		var a chatAnswer
		if err := json.Unmarshal(line, &a); err != nil {
			return false, badResponse(op, "stream line: %w", err)
		}
		if int64(text.Len()+len(a.Message.Content)) > maxText {
			return false, badResponse(op, "streamed text over %s: %w", sizeText(maxText), ErrTooLarge)
		}
		if piece := a.Message.Content; piece != "" {
			text.WriteString(piece)
			delivered = true
			if err := fn(llm.Chunk{Text: piece}); err != nil {
				return false, err
			}
		}
		if a.Done {
			resp = a.response(text.String())
		}
		model = a.Model
		return a.Done, nil
	})
	if errors.Is(err, errNoDone) && lines > 0 {
		// Ollama's repetition guard ends the stream, cleanly, after a
		// line with done false.
		return aborted(model, text.String()), delivered, nil
	}
	if err != nil {
		return nil, delivered, err
	}
	return resp, delivered, nil
}

// Load loads model into memory and keeps it there for keepAlive after
// the call (negative: until the server stops; zero unloads it, as
// Unload does), with an empty chat. It is
// how a freshly created model is warmed up: an adapter that does not fit
// its base fails here with an *llm.APIError of status 500. A 404 wraps
// llm.ErrModelNotFound.
func (c *Client) Load(ctx context.Context, model string, keepAlive time.Duration) error {
	return c.loadOrUnload(ctx, model, keepAliveSeconds(keepAlive))
}

// Unload drops model from memory at once (keep_alive 0).
func (c *Client) Unload(ctx context.Context, model string) error {
	zero := 0.0
	return c.loadOrUnload(ctx, model, &zero)
}

func (c *Client) loadOrUnload(ctx context.Context, model string, keepAlive *float64) error {
	if model == "" {
		return errors.New("ollama: load: no model")
	}
	w := &chatWire{Model: model, Messages: []llm.Message{}, KeepAlive: keepAlive}
	var a chatAnswer
	if err := c.call(ctx, DefaultLongTimeout, http.MethodPost, "/api/chat", w, &a); err != nil {
		return modelError(err)
	}
	if !a.Done {
		return badResponse(c.op(http.MethodPost, "/api/chat"), "load answer without done")
	}
	return nil
}
