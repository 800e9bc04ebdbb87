package ollama

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"

	"batos/internal/llm"
)

// readStream reads an NDJSON answer (HTTP status status) line by line.
// Every line is first checked for an {"error": ...}, which ends the
// stream as an *llm.APIError with InStream set; other lines go to fn
// until it reports the end. A line over maxLine bytes, and a stream that
// ends before fn saw its end, wrap llm.ErrBadResponse (the latter, when
// the stream ended cleanly, errNoDone too).
func readStream(ctx context.Context, op string, status int, r io.Reader, maxLine int, fn func(line []byte) (done bool, err error)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(maxLine, 64<<10)+1), maxLine+1)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if msg, ok := parseError(line); ok {
			return &llm.APIError{Op: op, Status: status, Message: msg, InStream: true}
		}
		done, err := fn(line)
		if err != nil || done {
			return err
		}
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return badResponse(op, "stream line over %s: %w", sizeText(int64(maxLine)), ErrTooLarge)
	case err != nil:
		return cutResponse(ctx, op, "stream", err)
	}
	return badResponse(op, "%w", errNoDone)
}

// errNoDone is wrapped when a stream ends cleanly before fn saw its end:
// for a chat, Ollama's repetition guard (see llm.FinishAborted).
var errNoDone = errors.New("stream ended before its done object")
