package openai

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
)

func TestErrorShapes(t *testing.T) {
	long := strings.Repeat("é", 600) // 1200 bytes, cut on a rune boundary
	tests := []struct {
		name   string
		status int
		body   string
		want   llm.APIError // Op and Status filled in below
	}{
		{"openai int code", 400, `{"error":{"message":"context too long","type":"invalid_request_error","code":400}}`,
			llm.APIError{Message: "context too long", Type: "invalid_request_error", Code: "400"}},
		{"openai string code", 401, `{"error":{"message":"Incorrect API key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			llm.APIError{Message: "Incorrect API key", Type: "invalid_request_error", Code: "invalid_api_key"}},
		{"null code", 400, `{"error":{"message":"bad","type":"invalid_request_error","code":null}}`,
			llm.APIError{Message: "bad", Type: "invalid_request_error"}},
		{"error text", 500, `{"error":"model crashed"}`,
			llm.APIError{Message: "model crashed"}},
		{"flat vLLM", 400, `{"object":"error","message":"max_tokens too large","type":"BadRequestError","param":null,"code":400}`,
			llm.APIError{Message: "max_tokens too large", Type: "BadRequestError", Code: "400"}},
		{"FastAPI detail", 422, `{"detail":[{"loc":["body","messages"],"msg":"field required"}]}`,
			llm.APIError{Message: `[{"loc":["body","messages"],"msg":"field required"}]`}},
		{"plain text", 500, "internal failure\n",
			llm.APIError{Message: "internal failure"}},
		{"long plain text", 500, long,
			llm.APIError{Message: strings.Repeat("é", 256)}},
		{"JSON without an error", 500, `{"status":"sad"}`,
			llm.APIError{Message: `{"status":"sad"}`}},
		{"empty", 500, "",
			llm.APIError{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("unused")})
			fake.FailNext(tt.status, tt.body)
			c := newClient(t, fake.URL, nil)
			_, err := c.Chat(t.Context(), userChat("m", "hi"))
			want := tt.want
			want.Op, want.Status = "POST "+fake.URL+"/v1/chat/completions", tt.status
			if diff := cmp.Diff(asAPIError(t, err), &want); diff != "" {
				t.Errorf("error (-got +want):\n%s", diff)
			}
			if llm.Transient(err) {
				t.Errorf("%d is transient", tt.status)
			}
			if n := len(fake.Requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestUnknownModel(t *testing.T) {
	for _, tt := range []struct {
		flavor llmtest.Flavor
		typ    string
		code   string
	}{
		{llmtest.VLLM, "NotFoundError", "404"},
		{llmtest.Generic, "invalid_request_error", "model_not_found"},
	} {
		t.Run(tt.flavor.String(), func(t *testing.T) {
			fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("unused"), Flavor: tt.flavor, Models: []string{"tiny"}})
			c := newClient(t, fake.URL, nil)
			_, err := c.Chat(t.Context(), userChat("huge", "hi"))
			api := asAPIError(t, err)
			got := []string{fmt.Sprint(api.Status), api.Message, api.Type, api.Code}
			want := []string{"404", "The model `huge` does not exist.", tt.typ, tt.code}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("status, message, type, code (-got +want):\n%s", diff)
			}
			if errors.Is(err, llm.ErrUnsupported) {
				t.Error("an unknown model is not an unsupported endpoint")
			}
		})
	}
}

func TestNotImplemented(t *testing.T) {
	fake := llmtest.NewOpenAI(t, nil)
	fake.FailNext(http.StatusNotImplemented, `{"error":{"code":501,"message":"This server does not support embeddings. Start it with `+"`--embeddings`"+`","type":"not_supported_error"}}`)
	_, err := newClient(t, fake.URL, nil).Embed(t.Context(), &llm.EmbedRequest{Model: "m", Input: []string{"x"}})
	if !errors.Is(err, llm.ErrUnsupported) {
		t.Errorf("got %v, want llm.ErrUnsupported", err)
	}
	if api := asAPIError(t, err); api.Type != "not_supported_error" {
		t.Errorf("type %q, want not_supported_error", api.Type)
	}
}

func TestErrorMidStream(t *testing.T) {
	for _, flavor := range []llmtest.Flavor{llmtest.LlamaServer, llmtest.VLLM, llmtest.Generic} {
		t.Run(flavor.String(), func(t *testing.T) {
			fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("one two three four"), Flavor: flavor})
			fake.ErrorMidStream(2, "out of memory")
			var got collector
			req := userChat("default", "hi")
			req.Stream = got.add
			_, err := newClient(t, fake.URL, nil).Chat(t.Context(), req)
			api := asAPIError(t, err)
			if !api.InStream || api.Status != http.StatusOK || api.Message != "out of memory" {
				t.Errorf("got %+v, want an in-stream error on a 200 saying %q", api, "out of memory")
			}
			if diff := cmp.Diff(got.pieces, []string{"one ", "two "}); diff != "" {
				t.Errorf("pieces (-got +want):\n%s", diff)
			}
			if n := len(fake.Requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestStreamCut(t *testing.T) {
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("one two three four")})
	fake.CutStreamAfter(2)
	var got collector
	req := userChat("m", "hi")
	req.Stream = got.add
	_, err := newClient(t, fake.URL, nil).Chat(t.Context(), req)
	if !errors.Is(err, llm.ErrBadResponse) {
		t.Fatalf("got %v, want llm.ErrBadResponse", err)
	}
	if diff := cmp.Diff(got.pieces, []string{"one ", "two "}); diff != "" {
		t.Errorf("pieces (-got +want):\n%s", diff)
	}
	if n := len(fake.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// sseHandler answers every request with the given stream text.
func sseHandler(stream string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, stream)
	}
}

func chunk(text string) string {
	return fmt.Sprintf(`{"object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":%q},"finish_reason":null}]}`, text)
}

func TestStreamFormat(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		pieces  []string
		wantErr error
		errText string
	}{{
		name: "comments, CRLF, other fields, multi-line data",
		stream: ": keep-alive\r\n\r\nid: 1\r\nretry: 100\r\ndata: " + chunk("a") + "\r\n\r\n" +
			"data: {\"choices\":[{\"delta\":\n" + "data: {\"content\":\"b\"}}]}\n\n" +
			"event: message\rdata: " + chunk("c") + "\r\r" +
			"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n" +
			"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":3}}\n\n" +
			"data: [DONE]\n\n",
		pieces: []string{"a", "b", "c"},
	}, {
		name:   "[DONE] without the blank line",
		stream: "data: " + chunk("a") + "\n\ndata: [DONE]",
		pieces: []string{"a"},
	}, {
		name:    "ends without [DONE]",
		stream:  "data: " + chunk("a") + "\n\n",
		pieces:  []string{"a"},
		wantErr: llm.ErrBadResponse,
	}, {
		name:    "cut inside an event",
		stream:  "data: " + chunk("a") + "\n\ndata: {\"choi",
		pieces:  []string{"a"},
		wantErr: llm.ErrBadResponse,
	}, {
		name:    "malformed data line",
		stream:  "data: " + chunk("a") + "\n\ndata: {not json}\n\ndata: [DONE]\n\n",
		pieces:  []string{"a"},
		wantErr: llm.ErrBadResponse,
	}, {
		name:    "oversized line",
		stream:  "data: " + chunk("a") + "\n\ndata: \"" + strings.Repeat("x", maxSSELine+10) + "\"\n\ndata: [DONE]\n\n",
		pieces:  []string{"a"},
		wantErr: ErrTooLarge,
	}, {
		name:    "oversized event",
		stream:  strings.Repeat("data: "+strings.Repeat("x", 1<<16)+"\n", 20) + "\n",
		wantErr: ErrTooLarge,
	}, {
		name:    "old llama-server error line",
		stream:  "data: " + chunk("a") + "\n\nerror: {\"error\":{\"code\":500,\"message\":\"slot died\",\"type\":\"server_error\"}}\n\n",
		pieces:  []string{"a"},
		errText: "slot died",
	}, {
		name:    "error event",
		stream:  "event: error\ndata: {\"message\":\"overloaded\",\"type\":\"overloaded_error\"}\n\n",
		errText: "overloaded",
	}, {
		name:    "flat vLLM error object",
		stream:  "data: {\"object\":\"error\",\"message\":\"engine dead\",\"type\":\"InternalServerError\",\"code\":500}\n\ndata: [DONE]\n\n",
		errText: "engine dead",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, rawServer(t, sseHandler(tt.stream)), nil)
			var got collector
			req := userChat("m", "hi")
			req.Stream = got.add
			resp, err := c.Chat(t.Context(), req)
			switch {
			case tt.errText != "":
				api := asAPIError(t, err)
				if !api.InStream || api.Message != tt.errText {
					t.Errorf("got %+v, want an in-stream error saying %q", api, tt.errText)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, llm.ErrBadResponse) {
					t.Errorf("got %v, want %v (and llm.ErrBadResponse)", err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("Chat: %v", err)
			default:
				if resp.Text != strings.Join(tt.pieces, "") {
					t.Errorf("text %q, want %q", resp.Text, strings.Join(tt.pieces, ""))
				}
			}
			if diff := cmp.Diff(got.pieces, tt.pieces); diff != "" {
				t.Errorf("pieces (-got +want):\n%s", diff)
			}
		})
	}
}

func TestStreamUsage(t *testing.T) {
	stream := "data: " + chunk("a") + "\n\n" +
		`data: {"model":"m2","choices":[{"delta":{},"finish_reason":"length"}],"timings":{"prompt_n":4,"prompt_ms":2.5,"predicted_n":1,"predicted_ms":10}}` + "\n\n" +
		`data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":1,"total_tokens":5}}` + "\n\n" +
		"data: [DONE]\n\n"
	req := userChat("m", "hi")
	req.Stream = func(llm.Chunk) error { return nil }
	resp, err := newClient(t, rawServer(t, sseHandler(stream)), nil).Chat(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Timings.Latency = 0
	want := &llm.ChatResponse{
		Text: "a", Model: "m2", FinishReason: "length", Usage: llm.Usage{PromptTokens: 4, CompletionTokens: 1},
		Timings: llm.Timings{Total: 12500 * time.Microsecond, PromptEval: 2500 * time.Microsecond, Eval: 10 * time.Millisecond},
	}
	if diff := cmp.Diff(resp, want); diff != "" {
		t.Errorf("response (-got +want):\n%s", diff)
	}
}

func TestBodyLimit(t *testing.T) {
	_, err := readBody(t.Context(), "GET x", bytes.NewReader(make([]byte, 11)), 10)
	if !errors.Is(err, ErrTooLarge) || !errors.Is(err, llm.ErrBadResponse) {
		t.Errorf("got %v, want ErrTooLarge and llm.ErrBadResponse", err)
	}
	if data, err := readBody(t.Context(), "GET x", bytes.NewReader(make([]byte, 10)), 10); err != nil || len(data) != 10 {
		t.Errorf("got %d bytes, %v; want 10 bytes", len(data), err)
	}
}

func TestMalformedAnswer(t *testing.T) {
	for name, body := range map[string]string{
		"not JSON":   "<html>hello</html>",
		"no choices": `{"choices":[]}`,
		"no message": `{"choices":[{"index":0}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			url := rawServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
			_, err := newClient(t, url, nil).Chat(t.Context(), userChat("m", "hi"))
			if !errors.Is(err, llm.ErrBadResponse) {
				t.Errorf("got %v, want llm.ErrBadResponse", err)
			}
		})
	}
}

func TestRetry(t *testing.T) {
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("finally")})
	fake.FailNext(http.StatusServiceUnavailable, `{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`)
	fake.FailNext(http.StatusTooManyRequests, `{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limited"}}`)
	fake.FailNext(http.StatusBadGateway, "bad gateway")
	resp, err := newClient(t, fake.URL, nil).Chat(t.Context(), userChat("m", "hi"))
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if resp.Text != "finally" {
		t.Errorf("text %q, want %q", resp.Text, "finally")
	}
	if n := len(fake.Requests()); n != 4 {
		t.Errorf("%d requests, want 4", n)
	}
}

func TestRetryGivesUp(t *testing.T) {
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("never")})
	for range 5 {
		fake.FailNext(http.StatusServiceUnavailable, `{"error":"busy"}`)
	}
	c := newClient(t, fake.URL, &Options{Retry: llm.Retry{Attempts: 3, Base: time.Millisecond}})
	_, err := c.Chat(t.Context(), userChat("m", "hi"))
	if api := asAPIError(t, err); api.Status != http.StatusServiceUnavailable || api.Message != "busy" {
		t.Errorf("got %+v, want the last 503", api)
	}
	if n := len(fake.Requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// resetAfter is a server whose first answer streams the given chunks
// and then resets the connection (a transient failure); later answers
// are a whole stream.
func resetAfter(t *testing.T, chunks int, requests *atomic.Int32) string {
	return rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) > 1 {
			sseHandler("data: "+chunk("whole")+"\n\ndata: [DONE]\n\n")(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range chunks {
			fmt.Fprintf(w, "data: %s\n\n", chunk(fmt.Sprint(i)))
		}
		http.NewResponseController(w).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.(*net.TCPConn).SetLinger(0) // close with a RST
		conn.Close()
	})
}

func TestNoRetryAfterChunks(t *testing.T) {
	var requests atomic.Int32
	c := newClient(t, resetAfter(t, 2, &requests), nil)
	var got collector
	req := userChat("m", "hi")
	req.Stream = got.add
	_, err := c.Chat(t.Context(), req)
	if err == nil {
		t.Fatal("Chat succeeded after a reset")
	}
	// The cause is transient: only the delivered text stops the retry.
	if !llm.Transient(err) || !errors.Is(err, llm.ErrBadResponse) {
		t.Errorf("got %v, want a transient cause under llm.ErrBadResponse", err)
	}
	if diff := cmp.Diff(got.pieces, []string{"0", "1"}); diff != "" {
		t.Errorf("pieces (-got +want):\n%s", diff)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1: a chat is not retried once text was delivered", n)
	}
}

func TestRetryBeforeChunks(t *testing.T) {
	var requests atomic.Int32
	c := newClient(t, resetAfter(t, 0, &requests), nil)
	var got collector
	req := userChat("m", "hi")
	req.Stream = got.add
	resp, err := c.Chat(t.Context(), req)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if resp.Text != "whole" || requests.Load() != 2 {
		t.Errorf("got %q after %d requests, want %q after 2", resp.Text, requests.Load(), "whole")
	}
}

func TestRestart(t *testing.T) {
	model := llmtest.Texts("before", "after")
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: model, RestartDelay: 100 * time.Millisecond})
	c := newClient(t, fake.URL, &Options{Retry: llm.Retry{Attempts: 30, Base: 5 * time.Millisecond, Max: 40 * time.Millisecond}})
	if _, err := c.Chat(t.Context(), userChat("m", "hi")); err != nil {
		t.Fatalf("first chat: %v", err)
	}
	fake.Restart(t)
	start := time.Now()
	resp, err := c.Chat(t.Context(), userChat("m", "hi"))
	if err != nil {
		t.Fatalf("chat during the downtime: %v", err)
	}
	if resp.Text != "after" {
		t.Errorf("text %q, want %q", resp.Text, "after")
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("chat returned after %v, before the server was back", d)
	}
}

func TestRestartNoRetries(t *testing.T) {
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("x"), RestartDelay: time.Second})
	c := newClient(t, fake.URL, &Options{Retry: llm.Retry{Attempts: 1}})
	fake.Restart(t)
	_, err := c.Chat(t.Context(), userChat("m", "hi"))
	if !errors.Is(err, llm.ErrUnavailable) {
		t.Errorf("got %v, want llm.ErrUnavailable", err)
	}
}

func TestModelError(t *testing.T) {
	model := llmtest.NewModel(
		llmtest.Reply{Err: &llm.APIError{Status: http.StatusBadRequest, Message: "prompt too long", Type: "exceed_context_size_error"}},
		llmtest.Reply{Err: errors.New("weights on fire")},
	)
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: model})
	c := newClient(t, fake.URL, nil)
	for _, want := range []llm.APIError{
		{Status: 400, Message: "prompt too long", Type: "exceed_context_size_error", Code: "400"},
		{Status: 500, Message: "weights on fire", Type: "server_error", Code: "500"},
	} {
		req := userChat("m", "hi")
		req.Stream = func(llm.Chunk) error { return nil } // before the first chunk: a plain error answer
		_, err := c.Chat(t.Context(), req)
		want.Op = "POST " + fake.URL + "/v1/chat/completions"
		if diff := cmp.Diff(asAPIError(t, err), &want); diff != "" {
			t.Errorf("error (-got +want):\n%s", diff)
		}
	}
}
