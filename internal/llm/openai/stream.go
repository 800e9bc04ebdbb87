package openai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"batos/internal/llm"
)

// readStream reads a chat's server-sent events up to "data: [DONE]",
// handing each piece of text to fn.
func readStream(ctx context.Context, op string, resp *http.Response, fn func(llm.Chunk) error, delivered *bool) (*llm.ChatResponse, error) {
	events := newEventReader(resp.Body)
	out := &llm.ChatResponse{}
	var text strings.Builder
	for {
		ev, err := events.next()
		if err != nil {
			return nil, streamError(ctx, op, err)
		}
		if ev.data == "[DONE]" {
			out.Text = text.String()
			return out, nil
		}
		if ev.partial {
			return nil, streamError(ctx, op, io.ErrUnexpectedEOF)
		}
		if ev.name == "error" {
			return nil, eventError(op, resp.StatusCode, []byte(ev.data))
		}
		var w completionWire
		if err := json.Unmarshal([]byte(ev.data), &w); err != nil {
			return nil, badResponse(op, "stream event %q: %w", plainText([]byte(ev.data)), err)
		}
		if err := w.errorIn(op, resp.StatusCode, []byte(ev.data), true); err != nil {
			return nil, err
		}
		piece := w.apply(out)
		if piece == "" {
			continue
		}
		if text.Len()+len(piece) > maxBody {
			return nil, badResponse(op, "streamed text over %d bytes: %w", maxBody, ErrTooLarge)
		}
		text.WriteString(piece)
		*delivered = true
		if err := fn(llm.Chunk{Text: piece}); err != nil {
			return nil, err
		}
	}
}

// apply records a chunk's model, usage, timings and finish reason in out
// and returns its text.
func (w *completionWire) apply(out *llm.ChatResponse) string {
	if w.Model != "" {
		out.Model = w.Model
	}
	if w.Usage != nil {
		out.Usage = *w.Usage
	}
	if w.Timings != nil {
		out.Timings = w.Timings.timings()
	}
	if len(w.Choices) == 0 {
		return ""
	}
	ch := w.Choices[0]
	if ch.FinishReason != "" {
		out.FinishReason = ch.FinishReason
	}
	if ch.Delta == nil {
		return ""
	}
	return ch.Delta.Content
}

// eventError is the error an "event: error" carries.
func eventError(op string, status int, data []byte) error {
	e := &llm.APIError{Op: op, Status: status, InStream: true}
	var ok bool
	if e.Message, e.Type, e.Code, ok = parseError(data); !ok {
		e.Message = plainText(data)
	}
	return e
}

// streamError reports a stream that stopped before its "data: [DONE]".
// A cause that is transient (a reset connection) stays visible, so that
// the attempt is retried if nothing was delivered yet.
func streamError(ctx context.Context, op string, err error) error {
	switch {
	case ctx.Err() != nil:
		return llm.Unreachable(op, ctx.Err())
	case errors.Is(err, bufio.ErrTooLong), errors.Is(err, errEventTooLarge):
		return badResponse(op, "stream line or event over %d bytes: %w", maxSSELine, ErrTooLarge)
	case err == io.EOF:
		return badResponse(op, "stream ended without [DONE]")
	}
	return badResponse(op, "stream ended without [DONE]: %w", err)
}

var errEventTooLarge = errors.New("event too large")

// event is one server-sent event.
type event struct {
	name string // its "event" field; "" for the default
	data string // its "data" lines joined with "\n"
	// partial is set for an event cut by the end of the stream, before
	// the blank line that dispatches it.
	partial bool
}

// eventReader parses a text/event-stream (the WHATWG HTML "server-sent
// events" format): lines end in LF, CRLF or CR; a blank line dispatches
// the event; lines starting with ':' are comments; fields other than
// data and event are ignored. An "error:" line, which older llama-server
// builds sent in place of "data:", is read as data of an error event.
type eventReader struct {
	sc      *bufio.Scanner
	started bool
}

func newEventReader(r io.Reader) *eventReader {
	sc := bufio.NewScanner(r)
	// Room for the longest line and its CRLF.
	sc.Buffer(make([]byte, 0, 4096), maxSSELine+2)
	sc.Split(scanLines)
	return &eventReader{sc: sc}
}

// next returns the next event with data, or io.EOF at the end of the
// stream.
func (r *eventReader) next() (event, error) {
	var ev event
	var data []byte
	hasData := false
	for r.sc.Scan() {
		line := r.sc.Bytes()
		if !r.started {
			r.started = true
			line = bytes.TrimPrefix(line, []byte("\uFEFF"))
		}
		if len(line) == 0 {
			if hasData {
				ev.data = string(data)
				return ev, nil
			}
			ev.name = ""
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, found := bytes.Cut(line, []byte(":"))
		if found {
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "event":
			ev.name = string(value)
		case "data", "error":
			if string(field) == "error" {
				ev.name = "error"
			}
			if hasData {
				data = append(data, '\n')
			}
			if len(data)+len(value) > maxSSELine {
				return event{}, fmt.Errorf("%w: over %d bytes", errEventTooLarge, maxSSELine)
			}
			data = append(data, value...)
			hasData = true
		}
	}
	if err := r.sc.Err(); err != nil {
		return event{}, err
	}
	if hasData {
		ev.data, ev.partial = string(data), true
		return ev, nil
	}
	return event{}, io.EOF
}

// scanLines is a bufio.SplitFunc for lines ending in LF, CRLF or CR. A
// last line without an ending is returned too.
func scanLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		if data[i] == '\n' {
			return i + 1, data[:i], nil
		}
		// A CR: a LF after it belongs to the same line ending.
		switch {
		case i+1 < len(data) && data[i+1] == '\n':
			return i + 2, data[:i], nil
		case i+1 < len(data) || atEOF:
			return i + 1, data[:i], nil
		}
		return 0, nil, nil
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}
