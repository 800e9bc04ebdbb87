package llm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"unicode/utf8"
)

var (
	// ErrUnavailable wraps failures to reach a server at all: connection
	// refused or reset, DNS, timeouts before an answer began.
	ErrUnavailable = errors.New("llm: server unavailable")
	// ErrBadResponse is returned when a server's answer cannot be
	// understood (not the API's shape, a stream cut without its end).
	ErrBadResponse = errors.New("llm: bad response from server")
	// ErrUnsupported is returned for a request a client or its server
	// cannot serve (per-request LoRA on a server without it, for example).
	ErrUnsupported = errors.New("llm: unsupported by this server")
	// ErrModelNotFound is wrapped (with the server's *APIError) when a
	// call names a model the server does not have. The Ollama client
	// reports it for every call naming a model (Ollama's 404 "model
	// '<name>' not found"); the OpenAI-compatible one cannot tell it from
	// other 404s and leaves the *APIError alone.
	ErrModelNotFound = errors.New("llm: model not found")
)

// APIError is a server's refusal: an HTTP error status, or an error
// reported inside a stream that had begun (Status is then the stream's
// 200 and InStream is set). Message is the server's own words.
type APIError struct {
	Op       string // what was asked, e.g. "POST http://127.0.0.1:11434/api/chat"
	Status   int
	Message  string
	Type     string // OpenAI-style error type, when given
	Code     string // OpenAI-style error code, when given
	InStream bool
}

func (e *APIError) Error() string {
	where := ""
	if e.InStream {
		where = " (mid-stream)"
	}
	msg := e.Message
	if msg == "" {
		msg = "no message"
	}
	return fmt.Sprintf("llm: %s: %d %s%s: %s", e.Op, e.Status, http.StatusText(e.Status), where, msg)
}

// Temporary reports whether retrying the same request later may succeed:
// the server is overloaded, starting, or briefly unable to answer.
func (e *APIError) Temporary() bool {
	if e.InStream {
		return false
	}
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Transient reports whether err is worth retrying: an unavailable server
// (refused, reset, timed out) or a temporary API error. Cancellation of
// the caller's context is never transient.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var api *APIError
	if errors.As(err, &api) {
		return api.Temporary()
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Unreachable wraps a transport error (the request never got an HTTP
// answer) so that errors.Is(err, ErrUnavailable) holds and the cause
// stays visible.
func Unreachable(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("llm: %s: %w", op, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

// MaxErrorText bounds the part of a plain-text error answer kept as its
// message.
const MaxErrorText = 512

// ErrorText is the start of a body that is not the API's JSON, as an
// error message: trimmed, at most MaxErrorText bytes cut on a rune
// boundary, valid UTF-8.
func ErrorText(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) > MaxErrorText {
		cut := MaxErrorText
		for cut > MaxErrorText-utf8.UTFMax && !utf8.RuneStart(body[cut]) {
			cut--
		}
		body = body[:cut]
	}
	return strings.ToValidUTF8(string(body), "\uFFFD")
}
