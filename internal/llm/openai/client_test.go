package openai

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
)

// fastRetry keeps retries quick in tests.
var fastRetry = llm.Retry{Attempts: 4, Base: time.Millisecond, Max: 4 * time.Millisecond}

func newClient(t testing.TB, url string, opts *Options) *Client {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	if opts.Retry == (llm.Retry{}) {
		opts.Retry = fastRetry
	}
	c, err := New(url, opts)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	return c
}

// rawServer serves h, for answers the fake would not give.
func rawServer(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func asAPIError(t testing.TB, err error) *llm.APIError {
	t.Helper()
	var api *llm.APIError
	if !errors.As(err, &api) {
		t.Fatalf("got error %v (%T), want an *llm.APIError", err, err)
	}
	return api
}

func paths(reqs []llmtest.RecordedRequest) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

func TestNewBaseURL(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
		{"http://127.0.0.1:8080/v1", "http://127.0.0.1:8080"},
		{" https://api.example.com/v1/ ", "https://api.example.com"},
		{"http://gateway/llm/v1", "http://gateway/llm"},
		{"http://gateway/llm", "http://gateway/llm"},
	}
	for _, tt := range tests {
		c, err := New(tt.in, nil)
		if err != nil {
			t.Errorf("New(%q): %v", tt.in, err)
			continue
		}
		if got := c.URL(); got != tt.want {
			t.Errorf("New(%q).URL() = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://host", "http://", "http://host/?x=1", "http://host/#frag", "http://[::1"} {
		if _, err := New(bad, nil); err == nil {
			t.Errorf("New(%q) succeeded, want an error", bad)
		}
	}
	if _, err := New("http://host", &Options{Timeout: -time.Second}); err == nil {
		t.Error("New with a negative timeout succeeded, want an error")
	}
}

func TestHealth(t *testing.T) {
	for _, tt := range []struct {
		flavor llmtest.Flavor
		want   []string
	}{
		{llmtest.LlamaServer, []string{"GET /health"}},
		{llmtest.VLLM, []string{"GET /health"}},
		// OpenAI itself has no /health: the client falls back to the models.
		{llmtest.Generic, []string{"GET /health", "GET /v1/models"}},
	} {
		t.Run(tt.flavor.String(), func(t *testing.T) {
			fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Flavor: tt.flavor, APIKey: "k"})
			c := newClient(t, fake.URL, &Options{APIKey: "k"})
			if err := c.Health(t.Context()); err != nil {
				t.Fatalf("Health: %v", err)
			}
			if diff := cmp.Diff(paths(fake.Requests()), tt.want); diff != "" {
				t.Errorf("requests (-got +want):\n%s", diff)
			}
		})
	}
}

func TestHealthLoading(t *testing.T) {
	fake := llmtest.NewOpenAI(t, nil)
	fake.FailNext(http.StatusServiceUnavailable, `{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`)
	c := newClient(t, fake.URL, nil)
	api := asAPIError(t, c.Health(t.Context()))
	if api.Status != http.StatusServiceUnavailable || api.Message != "Loading model" {
		t.Errorf("got %d %q, want 503 %q", api.Status, api.Message, "Loading model")
	}
	if n := len(fake.Requests()); n != 1 {
		t.Errorf("Health made %d requests, want 1 (no retries)", n)
	}
}

func TestHealthDown(t *testing.T) {
	// A closed server's address: nobody listens there.
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	c := newClient(t, srv.URL, nil)
	err := c.Health(t.Context())
	if !errors.Is(err, llm.ErrUnavailable) || !llm.Transient(err) {
		t.Errorf("got %v, want a transient error wrapping llm.ErrUnavailable", err)
	}
	if err != nil && !strings.Contains(err.Error(), "GET "+srv.URL+"/health") {
		t.Errorf("error %q does not name the call", err)
	}
}
