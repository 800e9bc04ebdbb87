package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"batos/internal/llm"
)

// Limits on what is read from a server.
const (
	maxBody      = 64 << 20         // a JSON answer
	maxSSELine   = 1 << 20          // one line, and one event, of a stream
	maxErrorBody = 1 << 20          // an error answer; the rest is dropped
	maxErrorText = llm.MaxErrorText // of a plain-text error answer, kept as its message
)

// ErrTooLarge is wrapped (with llm.ErrBadResponse) when a server's answer
// exceeds a size limit: 64 MiB for a JSON body, 1 MiB for a line or an
// event of a stream.
var ErrTooLarge = errors.New("openai: answer too large")

// badResponse wraps llm.ErrBadResponse with the call and what was wrong.
func badResponse(op, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %w", llm.ErrBadResponse, op, fmt.Errorf(format, args...))
}

// readBody reads a whole body of at most limit bytes.
func readBody(ctx context.Context, op string, r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, unreachable(ctx, op, err)
	}
	if int64(len(data)) > limit {
		return nil, badResponse(op, "body over %d bytes: %w", limit, ErrTooLarge)
	}
	return data, nil
}

// statusError turns an HTTP error answer into an *llm.APIError; a 501
// also wraps llm.ErrUnsupported, and llama-server's
// exceed_context_size_error a *llm.PromptTooLongError.
func statusError(op string, status int, body []byte) error {
	e := &llm.APIError{Op: op, Status: status}
	if msg, typ, code, ok := parseError(body); ok {
		e.Message, e.Type, e.Code = msg, typ, code
	} else {
		e.Message = plainText(body)
	}
	if status == http.StatusNotImplemented {
		return fmt.Errorf("%w: %w", llm.ErrUnsupported, e)
	}
	if e.Type == "exceed_context_size_error" {
		return contextError(e, body)
	}
	return e
}

// contextError is llama-server's refusal of a prompt longer than its
// context, {"error": {"type": "exceed_context_size_error",
// "n_prompt_tokens", "n_ctx", ...}}, as a *llm.PromptTooLongError that
// also wraps the *llm.APIError. Chat fills in the model.
func contextError(e *llm.APIError, body []byte) error {
	var w struct {
		Error struct {
			Prompt  int `json:"n_prompt_tokens"`
			Context int `json:"n_ctx"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &w)
	return fmt.Errorf("%w (%w)", &llm.PromptTooLongError{Prompt: w.Error.Prompt, Context: w.Error.Context, Server: true}, e)
}

// errorWire covers the error bodies servers send: OpenAI's
// {"error": {"message", "type", "code"}}, {"error": "text"} (Ollama, vLLM's
// auth), a bare {"message", "type", "code"} (older vLLM, with
// "object": "error") and FastAPI's {"detail": ...}.
type errorWire struct {
	Error   json.RawMessage `json:"error"`
	Message json.RawMessage `json:"message"`
	Type    json.RawMessage `json:"type"`
	Code    json.RawMessage `json:"code"`
	Detail  json.RawMessage `json:"detail"`
}

type errorObject struct {
	Message json.RawMessage `json:"message"`
	Type    json.RawMessage `json:"type"`
	Code    json.RawMessage `json:"code"`
}

// parseError finds the message, type and code in a JSON error body. ok
// is false when the body is not JSON or names no error.
func parseError(body []byte) (msg, typ, code string, ok bool) {
	var w errorWire
	if json.Unmarshal(body, &w) != nil {
		return "", "", "", false
	}
	if present(w.Error) {
		var obj errorObject
		if json.Unmarshal(w.Error, &obj) == nil {
			return scalar(obj.Message), scalar(obj.Type), scalar(obj.Code), true
		}
		return scalar(w.Error), "", "", true
	}
	if present(w.Message) {
		return scalar(w.Message), scalar(w.Type), scalar(w.Code), true
	}
	if present(w.Detail) {
		return scalar(w.Detail), "", "", true
	}
	return "", "", "", false
}

// present reports whether a JSON field was sent with a value.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// scalar renders a JSON value as text: a string unquoted, a number or
// other value as written, null as "".
func scalar(raw json.RawMessage) string {
	if !present(raw) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if _, err := strconv.ParseFloat(string(raw), 64); err == nil {
		return string(raw)
	}
	return plainText(raw)
}

// plainText is llm.ErrorText: the start of a non-JSON body.
func plainText(body []byte) string { return llm.ErrorText(body) }
