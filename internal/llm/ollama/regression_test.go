package ollama_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"batos/internal/llm"
	"batos/internal/llm/ollama"
)

// TestChatStreamTextBounded: a server that streams text without end is
// cut off at the answer limit. Before, the client kept all of it, with
// no bound but the ten-minute timeout.
func TestChatStreamTextBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		piece := strings.Repeat("x", 100)
		for range 1000 {
			if _, err := fmt.Fprintf(w, `{"model":"m","message":{"role":"assistant","content":%q},"done":false}`+"\n", piece); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL)
	ollama.SetLimits(c, 10_000, 1<<20)
	var got int
	_, err := c.Chat(t.Context(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "go on"}},
		Stream: func(ch llm.Chunk) error { got += len(ch.Text); return nil }})
	if !errors.Is(err, ollama.ErrTooLarge) || !errors.Is(err, llm.ErrBadResponse) {
		t.Errorf("Chat: %v, want ErrTooLarge", err)
	}
	if got > 10_000 {
		t.Errorf("%d bytes of text delivered, want at most 10000", got)
	}
}
