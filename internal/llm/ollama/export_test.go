package ollama

import (
	"context"
	"io"

	"batos/internal/llm"
)

// SetLimits lowers c's read limits, so that tests need not send 64 MiB.
func SetLimits(c *Client, answer int64, line int) { c.maxAnswer, c.maxLine = answer, line }

// ReadChatStream exposes the stream parser to the fuzz target.
func ReadChatStream(ctx context.Context, r io.Reader, fn func(llm.Chunk) error) (*llm.ChatResponse, bool, error) {
	return readChatStream(ctx, "POST test/api/chat", 200, r, maxLine, maxAnswer, fn)
}
