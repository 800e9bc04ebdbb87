package openai

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

func readEvents(r io.Reader) ([]event, error) {
	er := newEventReader(r)
	var out []event
	for {
		ev, err := er.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

func TestEventReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []event
	}{
		{"LF", "data: a\n\ndata: b\n\n", []event{{data: "a"}, {data: "b"}}},
		{"CRLF", "data: a\r\n\r\n", []event{{data: "a"}}},
		{"CR", "data: a\r\rdata: b\r\r", []event{{data: "a"}, {data: "b"}}},
		{"BOM", "\uFEFFdata: a\n\n", []event{{data: "a"}}},
		{"multi-line", "data: a\ndata:b\ndata\n\n", []event{{data: "a\nb\n"}}},
		{"one space stripped", "data:  a \n\n", []event{{data: " a "}}},
		{"comments and other fields", ": hi\nid: 7\nretry: 10\nfoo: bar\ndata: a\n\n", []event{{data: "a"}}},
		{"event name", "event: error\ndata: x\n\ndata: y\n\n", []event{{name: "error", data: "x"}, {data: "y"}}},
		{"event name without data is dropped", "event: ping\n\ndata: y\n\n", []event{{data: "y"}}},
		{"blank lines alone", "\n\n\r\n", nil},
		{"unterminated", "data: a\n\ndata: [DONE]", []event{{data: "a"}, {data: "[DONE]", partial: true}}},
		{"no blank line at the end", "data: a\n", []event{{data: "a", partial: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte at a time too, so a CR at the end of a read is seen.
			for _, r := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in))} {
				got, err := readEvents(r)
				if err != nil {
					t.Fatalf("next: %v", err)
				}
				if diff := cmp.Diff(got, tt.want, cmp.AllowUnexported(event{})); diff != "" {
					t.Errorf("events (-got +want):\n%s", diff)
				}
			}
		})
	}
}

func TestEventReaderLimits(t *testing.T) {
	line := "data: " + strings.Repeat("x", maxSSELine-6) + "\r\n\r\n"
	got, err := readEvents(strings.NewReader(line))
	if err != nil || len(got) != 1 {
		t.Fatalf("a line of %d bytes: got %d events, %v", maxSSELine, len(got), err)
	}
	_, err = readEvents(strings.NewReader("data: " + strings.Repeat("x", maxSSELine) + "\n\n"))
	if !errors.Is(err, bufio.ErrTooLong) {
		t.Errorf("an over-long line: got %v, want bufio.ErrTooLong", err)
	}
	_, err = readEvents(strings.NewReader(strings.Repeat("data: "+strings.Repeat("x", 1<<16)+"\n", 17) + "\n"))
	if !errors.Is(err, errEventTooLarge) {
		t.Errorf("an over-long event: got %v, want errEventTooLarge", err)
	}
}

func FuzzEventReader(f *testing.F) {
	for _, s := range []string{
		"data: a\n\n", "data: a\r\n\r\n", "data: a\r\r", ": c\nevent: e\ndata: x\ndata: y\n\n",
		"data: [DONE]", "\uFEFFdata:\n\n", "error: {}\n\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		events, err := readEvents(strings.NewReader(in))
		if err != nil {
			return
		}
		total := 0
		for i, ev := range events {
			if ev.partial && i != len(events)-1 {
				t.Fatalf("partial event %d of %d", i, len(events))
			}
			total += len(ev.data)
		}
		if total > len(in) {
			t.Fatalf("%d bytes of data from %d bytes of input", total, len(in))
		}
	})
}

func FuzzParseError(f *testing.F) {
	for _, s := range []string{
		`{"error":{"message":"m","type":"t","code":400}}`, `{"error":"text"}`, `{"message":"m","code":"c"}`,
		`{"detail":"Not Found"}`, `plain`, `{"error":{"message":{"nested":1}}}`, `[1,2]`, `"str"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, typ, code, ok := parseError(body)
		if !ok && (msg != "" || typ != "" || code != "") {
			t.Fatalf("not an error body, yet %q %q %q", msg, typ, code)
		}
		if text := plainText(body); len(text) > 3*maxErrorText {
			t.Fatalf("plain text of %d bytes", len(text))
		}
		decodeCompletion("op", 200, body)
	})
}
