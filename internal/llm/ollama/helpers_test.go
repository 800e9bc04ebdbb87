package ollama_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/llm/ollama"
)

// fastRetry keeps retrying tests quick.
var fastRetry = llm.Retry{Attempts: 4, Base: 5 * time.Millisecond, Max: 20 * time.Millisecond}

const base = "llama3.2:1b"

// newFake starts a fake Ollama with base present, answering from model.
func newFake(t testing.TB, model llm.Model) *llmtest.Ollama {
	t.Helper()
	return llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: model, Models: []string{base}})
}

// newClient is a client of url with fastRetry.
func newClient(t testing.TB, url string) *ollama.Client {
	t.Helper()
	c, err := ollama.New(url, &ollama.Options{Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// requestsTo returns the recorded requests for path.
func requestsTo(o *llmtest.Ollama, path string) []llmtest.RecordedRequest {
	var out []llmtest.RecordedRequest
	for _, r := range o.Requests() {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// lastBody decodes the body of the last request to path.
func lastBody(t testing.TB, o *llmtest.Ollama, path string) map[string]any {
	t.Helper()
	reqs := requestsTo(o, path)
	if len(reqs) == 0 {
		t.Fatalf("no request to %s", path)
	}
	var m map[string]any
	if err := json.Unmarshal(reqs[len(reqs)-1].Body, &m); err != nil {
		t.Fatalf("request to %s: %v", path, err)
	}
	return m
}

// rawServer serves handler, for answers the fake Ollama would not give.
func rawServer(t testing.TB, handler http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

func user(text string) []llm.Message {
	return []llm.Message{{Role: llm.RoleUser, Content: text}}
}

// collect returns a Stream callback appending to pieces.
func collect(pieces *[]string) func(llm.Chunk) error {
	return func(c llm.Chunk) error {
		*pieces = append(*pieces, c.Text)
		return nil
	}
}
