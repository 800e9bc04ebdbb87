package ollama

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"batos/internal/llm"
)

// Limits on what is read from a server.
const (
	maxAnswer    = 64 << 20         // a JSON answer
	maxLine      = 1 << 20          // one line of a stream
	maxErrorBody = 1 << 20          // an error answer; the rest is dropped
	maxErrorText = llm.MaxErrorText // of a plain-text error answer, kept as its message
	maxDrain     = 64 << 10         // read from a finished body so its connection can be reused
)

var (
	// ErrDigestMismatch is wrapped (with the server's *llm.APIError) when
	// PushBlob's body does not hash to the digest it was pushed under.
	ErrDigestMismatch = errors.New("ollama: blob digest mismatch")
	// ErrTooLarge is wrapped (with llm.ErrBadResponse) when a server's
	// answer exceeds a size limit: 64 MiB for a JSON answer, 1 MiB for a
	// line of a stream.
	ErrTooLarge = errors.New("ollama: answer too large")
)

// badResponse wraps llm.ErrBadResponse with the call and what was wrong.
func badResponse(op, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %w", llm.ErrBadResponse, op, fmt.Errorf(format, args...))
}

// cutResponse reports an answer whose reading failed part way (what
// says what was being read). The
// cause is kept as text, not wrapped: a connection reset after the
// server began answering must not look transient, since the server has
// already done (some of) the work.
func cutResponse(ctx context.Context, op, what string, err error) error {
	if ctx.Err() != nil {
		return llm.Unreachable(op, ctx.Err())
	}
	return badResponse(op, "%s cut: %v", what, err)
}

// unreachable wraps a transport error, preferring the context's own
// error when it has ended (the transport's wording varies).
func unreachable(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return llm.Unreachable(op, ctx.Err())
	}
	return llm.Unreachable(op, err)
}

// readBody reads a whole body of at most limit bytes.
func readBody(ctx context.Context, op string, r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, cutResponse(ctx, op, "answer", err)
	}
	if int64(len(data)) > limit {
		return nil, badResponse(op, "answer over %s: %w", sizeText(limit), ErrTooLarge)
	}
	return data, nil
}

// sizeText renders a limit for error messages: "64 MiB", "100 bytes".
func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// statusError turns an HTTP error answer into an *llm.APIError.
func statusError(op string, status int, body []byte) error {
	e := &llm.APIError{Op: op, Status: status}
	if msg, ok := parseError(body); ok {
		e.Message = msg
	} else {
		e.Message = plainText(body)
	}
	return e
}

// parseError finds the message in Ollama's {"error": "..."} body (or
// the OpenAI-style {"error": {"message": ...}} a proxy might send). ok is
// false when the body is not JSON or names no error.
func parseError(body []byte) (msg string, ok bool) {
	var w struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &w) != nil || len(w.Error) == 0 || string(w.Error) == "null" {
		return "", false
	}
	var s string
	if json.Unmarshal(w.Error, &s) == nil {
		return s, s != ""
	}
	var obj struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(w.Error, &obj) == nil && obj.Message != "" {
		return obj.Message, true
	}
	return plainText(w.Error), true
}

// plainText is llm.ErrorText: the start of a non-JSON body.
func plainText(body []byte) string { return llm.ErrorText(body) }

// modelError adds llm.ErrModelNotFound to a 404 from a call naming a
// model.
func modelError(err error) error {
	var api *llm.APIError
	if errors.As(err, &api) && api.Status == http.StatusNotFound && !api.InStream {
		return fmt.Errorf("%w: %w", llm.ErrModelNotFound, err)
	}
	return err
}
