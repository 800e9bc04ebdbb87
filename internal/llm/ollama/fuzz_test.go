package ollama_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"batos/internal/llm"
	"batos/internal/llm/ollama"
)

// FuzzReadChatStream feeds arbitrary bytes to the chat stream parser: it
// must not panic, and it either returns an answer whose text is the
// pieces it delivered, or an error of the server or of its answer.
func FuzzReadChatStream(f *testing.F) {
	f.Add([]byte(`{"message":{"content":"hi"},"done":false}` + "\n" + `{"done":true,"done_reason":"stop","eval_count":1,"total_duration":5}` + "\n"))
	f.Add([]byte(`{"error":"boom"}` + "\n"))
	f.Add([]byte(`{"message":{"content":"a"}}` + "\n" + `{"error":{"message":"x"}}`))
	f.Add([]byte("\n\n{\"done\":true}"))
	f.Add([]byte(`{"done":true,"total_duration":1e99}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var pieces strings.Builder
		resp, delivered, err := ollama.ReadChatStream(t.Context(), bytes.NewReader(data), func(c llm.Chunk) error {
			pieces.WriteString(c.Text)
			return nil
		})
		if delivered != (pieces.Len() > 0) {
			t.Errorf("delivered %v after %d bytes of pieces", delivered, pieces.Len())
		}
		if err != nil {
			var api *llm.APIError
			if !errors.As(err, &api) && !errors.Is(err, llm.ErrBadResponse) {
				t.Errorf("got error %v, want an APIError or ErrBadResponse", err)
			}
			return
		}
		if resp == nil || resp.Text != pieces.String() {
			t.Errorf("got %+v, want the text %q", resp, pieces.String())
		}
	})
}
