package ollama_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/llm/ollama"
)

// apiError returns err's *llm.APIError, failing the test without one.
func apiError(t testing.TB, err error) *llm.APIError {
	t.Helper()
	var api *llm.APIError
	if !errors.As(err, &api) {
		t.Fatalf("got %v, want an *llm.APIError", err)
	}
	return api
}

func TestChatHTTPErrors(t *testing.T) {
	long := strings.Repeat("x", 1000)
	tests := []struct {
		name   string
		model  string
		fail   func(o *llmtest.Ollama)
		status int
		msg    string
		is     error
	}{
		{name: "unknown model", model: "nope", status: 404, msg: "model 'nope' not found", is: llm.ErrModelNotFound},
		{name: "500", fail: func(o *llmtest.Ollama) { o.FailNext(500, "boom") }, status: 500, msg: "boom"},
		{name: "400", fail: func(o *llmtest.Ollama) { o.FailNext(400, "invalid options") }, status: 400, msg: "invalid options"},
		{
			name: "plain text body", fail: func(o *llmtest.Ollama) { o.FailNextBody(http.StatusForbidden, "  <html>denied</html>\n") },
			status: 403, msg: "<html>denied</html>",
		},
		{name: "long plain body", fail: func(o *llmtest.Ollama) { o.FailNextBody(400, long) }, status: 400, msg: long[:512]},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", tt.name, stream), func(t *testing.T) {
				o := newFake(t, llmtest.Texts("never"))
				c := newClient(t, o.URL)
				if tt.fail != nil {
					tt.fail(o)
				}
				req := &llm.ChatRequest{Model: cmpOr(tt.model, base), Messages: user("hi")}
				var pieces []string
				if stream {
					req.Stream = collect(&pieces)
				}
				_, err := c.Chat(t.Context(), req)
				api := apiError(t, err)
				if api.Status != tt.status || api.Message != tt.msg || api.InStream {
					t.Errorf("got %d %q (in stream %v), want %d %q", api.Status, api.Message, api.InStream, tt.status, tt.msg)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("got %v, want it to wrap %v", err, tt.is)
				}
				if len(requestsTo(o, "/api/chat")) != 1 || len(pieces) != 0 {
					t.Errorf("got %d requests and pieces %q, want one request and no pieces", len(requestsTo(o, "/api/chat")), pieces)
				}
			})
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestChatStreamFaults(t *testing.T) {
	reply := llmtest.Reply{Text: "a b c d", Chunks: []string{"a ", "b ", "c ", "d"}}
	tests := []struct {
		name   string
		fault  func(o *llmtest.Ollama)
		pieces int
		check  func(t *testing.T, err error)
	}{
		{
			name: "error mid-stream", fault: func(o *llmtest.Ollama) { o.ErrorMidStream(2, "out of memory") }, pieces: 2,
			check: func(t *testing.T, err error) {
				api := apiError(t, err)
				if !api.InStream || api.Status != 200 || api.Message != "out of memory" {
					t.Errorf("got %+v, want an in-stream error with the server's message", api)
				}
			},
		},
		{
			name: "error before any piece", fault: func(o *llmtest.Ollama) { o.ErrorMidStream(0, "model crashed") }, pieces: 0,
			check: func(t *testing.T, err error) {
				if api := apiError(t, err); !api.InStream || api.Message != "model crashed" {
					t.Errorf("got %+v, want an in-stream error", api)
				}
			},
		},
		{
			name: "cut", fault: func(o *llmtest.Ollama) { o.CutStreamAfter(3) }, pieces: 3,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, llm.ErrBadResponse) || llm.Transient(err) {
					t.Errorf("got %v, want ErrBadResponse, not transient", err)
				}
			},
		},
		{
			name: "cut before any piece", fault: func(o *llmtest.Ollama) { o.CutStreamAfter(0) }, pieces: 0,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, llm.ErrBadResponse) {
					t.Errorf("got %v, want ErrBadResponse", err)
				}
			},
		},
		{
			name: "cut after the last piece", fault: func(o *llmtest.Ollama) { o.CutStreamAfter(10) }, pieces: 4,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, llm.ErrBadResponse) {
					t.Errorf("got %v, want ErrBadResponse", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newFake(t, llmtest.NewModel(reply, reply))
			c := newClient(t, o.URL)
			tt.fault(o)
			var pieces []string
			resp, err := c.Chat(t.Context(), &llm.ChatRequest{Model: base, Messages: user("hi"), Stream: collect(&pieces)})
			if err == nil {
				t.Fatalf("got %+v, want an error", resp)
			}
			tt.check(t, err)
			if len(pieces) != tt.pieces {
				t.Errorf("got pieces %q, want %d", pieces, tt.pieces)
			}
			if n := o.ChatCount(base); n != 1 {
				t.Errorf("got %d chats, want 1: no retry", n)
			}
			// The fault is spent: the next stream is whole.
			pieces = nil
			if resp, err := c.Chat(t.Context(), &llm.ChatRequest{Model: base, Messages: user("hi"), Stream: collect(&pieces)}); err != nil || resp.Text != reply.Text {
				t.Errorf("next chat: got %+v, %v", resp, err)
			}
		})
	}
}

func TestChatBadStreams(t *testing.T) {
	done := `{"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop"}` + "\n"
	piece := `{"model":"m","message":{"role":"assistant","content":"hi"},"done":false}` + "\n"
	tests := []struct {
		name string
		body string
		is   error
	}{
		{name: "malformed line", body: piece + "{not json\n" + done, is: llm.ErrBadResponse},
		{name: "wrong types", body: `{"message":{"content":5}}` + "\n", is: llm.ErrBadResponse},
		{name: "oversized line", body: piece + `{"message":{"content":"` + strings.Repeat("a", 1<<20) + `"}}` + "\n" + done, is: ollama.ErrTooLarge},
		{name: "empty", body: "", is: llm.ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			url := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
				calls++
				w.Header().Set("Content-Type", "application/x-ndjson")
				fmt.Fprint(w, tt.body)
			})
			_, err := newClient(t, url).Chat(t.Context(), &llm.ChatRequest{Model: "m", Messages: user("hi"), Stream: func(llm.Chunk) error { return nil }})
			if !errors.Is(err, tt.is) || !errors.Is(err, llm.ErrBadResponse) {
				t.Errorf("got %v, want %v and ErrBadResponse", err, tt.is)
			}
			if calls != 1 {
				t.Errorf("got %d calls, want 1", calls)
			}
		})
	}
}

func TestAnswerTooLarge(t *testing.T) {
	url := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"model":"m","message":{"content":"%s"},"done":true}`, strings.Repeat("a", 2000))
	})
	c := newClient(t, url)
	ollama.SetLimits(c, 1024, 1024)
	_, err := c.Chat(t.Context(), &llm.ChatRequest{Model: "m", Messages: user("hi")})
	if !errors.Is(err, ollama.ErrTooLarge) || !errors.Is(err, llm.ErrBadResponse) || !strings.Contains(err.Error(), "1024 bytes") {
		t.Errorf("got %v, want ErrTooLarge naming the limit", err)
	}
}

func TestRetry(t *testing.T) {
	for _, status := range []int{429, 502, 503, 504} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			o := newFake(t, llmtest.Texts("fine"))
			c := newClient(t, o.URL)
			o.FailNext(status, "busy")
			o.FailNext(status, "busy")
			resp, err := c.Chat(t.Context(), &llm.ChatRequest{Model: base, Messages: user("hi"), Stream: func(llm.Chunk) error { return nil }})
			if err != nil || resp.Text != "fine" {
				t.Fatalf("got %+v, %v; want success after retries", resp, err)
			}
			if n := len(requestsTo(o, "/api/chat")); n != 3 {
				t.Errorf("got %d requests, want 3", n)
			}
		})
	}
}

func TestRetryGivesUp(t *testing.T) {
	o := newFake(t, llmtest.Texts("never"))
	c := newClient(t, o.URL)
	for range 10 {
		o.FailNext(503, "loading model")
	}
	_, err := c.Chat(t.Context(), &llm.ChatRequest{Model: base, Messages: user("hi")})
	if api := apiError(t, err); api.Status != 503 || api.Message != "loading model" {
		t.Errorf("got %v, want the last 503", err)
	}
	if n := len(requestsTo(o, "/api/chat")); n != fastRetry.Attempts {
		t.Errorf("got %d requests, want %d", n, fastRetry.Attempts)
	}
}

func TestNoRetryOnClientErrors(t *testing.T) {
	o := newFake(t, llmtest.Texts("never"))
	c := newClient(t, o.URL)
	o.FailNext(500, "boom")
	o.FailNext(500, "boom")
	if _, err := c.Chat(t.Context(), &llm.ChatRequest{Model: base, Messages: user("hi")}); err == nil {
		t.Fatal("got success, want the 500")
	}
	if n := len(requestsTo(o, "/api/chat")); n != 1 {
		t.Errorf("got %d requests, want 1", n)
	}
}

// Once a piece reached the caller, a chat is not retried, even for an
// error that would be transient before.
func TestNoRetryAfterDelivery(t *testing.T) {
	o := newFake(t, llmtest.Texts("a b c", "a b c"))
	c := newClient(t, o.URL)
	relay := fmt.Errorf("relay: %w", llm.ErrUnavailable)
	calls := 0
	_, err := c.Chat(t.Context(), &llm.ChatRequest{Model: base, Messages: user("hi"), Stream: func(llm.Chunk) error {
		calls++
		return relay
	}})
	if !errors.Is(err, relay) {
		t.Errorf("got %v, want the callback's error", err)
	}
	if calls != 1 || o.ChatCount(base) != 1 {
		t.Errorf("got %d pieces and %d chats, want 1 and 1", calls, o.ChatCount(base))
	}
}

func TestRestart(t *testing.T) {
	o := llmtest.NewOllama(t, &llmtest.OllamaOptions{
		Responder: llmtest.Texts("before", "after"), Models: []string{base}, RestartDelay: 200 * time.Millisecond,
	})
	c, err := ollama.New(o.URL, &ollama.Options{Retry: llm.Retry{Attempts: 40, Base: 10 * time.Millisecond, Max: 40 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := c.Chat(ctx, &llm.ChatRequest{Model: base, Messages: user("hi")}); err != nil {
		t.Fatal(err)
	}
	o.Restart(t)

	// A client that does not retry sees the server down.
	once, err := ollama.New(o.URL, &ollama.Options{Retry: llm.Retry{Attempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := once.Version(ctx); !errors.Is(err, llm.ErrUnavailable) || !llm.Transient(err) {
		t.Errorf("during the restart: got %v, want ErrUnavailable", err)
	}
	var pieces []string
	resp, err := c.Chat(ctx, &llm.ChatRequest{Model: base, Messages: user("hi"), Stream: collect(&pieces)})
	if err != nil || resp.Text != "after" {
		t.Fatalf("got %+v, %v; want the answer once the server is back", resp, err)
	}
	if o.ChatCount(base) != 2 {
		t.Errorf("got %d chats, want 2 (state kept)", o.ChatCount(base))
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	_, err = newClient(t, url).Chat(t.Context(), &llm.ChatRequest{Model: base, Messages: user("hi")})
	if !errors.Is(err, llm.ErrUnavailable) {
		t.Errorf("got %v, want ErrUnavailable", err)
	}
}

// blockModel streams one piece when asked to stream, then waits for its
// call to end.
type blockModel struct{ llmtest.Model }

func (m *blockModel) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	if req.Stream != nil {
		if err := req.Stream(llm.Chunk{Text: "first "}); err != nil {
			return nil, err
		}
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestCancel(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			o := newFake(t, &blockModel{})
			c := newClient(t, o.URL)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			req := &llm.ChatRequest{Model: base, Messages: user("hi")}
			if stream {
				// Cancel as the first piece arrives.
				req.Stream = func(llm.Chunk) error { cancel(); return nil }
			} else {
				// Cancel once the server has the request: a fixed delay
				// may end before a loaded machine sent it.
				go func() {
					for deadline := time.Now().Add(10 * time.Second); len(requestsTo(o, "/api/chat")) == 0 && time.Now().Before(deadline); {
						time.Sleep(time.Millisecond)
					}
					cancel()
				}()
			}
			_, err := c.Chat(ctx, req)
			if !errors.Is(err, context.Canceled) || errors.Is(err, llm.ErrUnavailable) {
				t.Errorf("got %v, want context.Canceled", err)
			}
			if n := len(requestsTo(o, "/api/chat")); n != 1 {
				t.Errorf("got %d requests, want 1", n)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	o := newFake(t, &blockModel{})
	c, err := ollama.New(o.URL, &ollama.Options{Timeout: 50 * time.Millisecond, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Chat(t.Context(), &llm.ChatRequest{Model: base, Messages: user("hi")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want DeadlineExceeded", err)
	}
}
