package zmqbridge_test

// Reading docs/protocol.md's examples: parseDocExamples finds the requests
// and replies in the Markdown and groups them into exchanges.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// moreMarker stands for a bare … in a doc example, once parsed: as an
// array's last element, more elements may follow; as a map key, more
// keys may follow. No reply holds it.
const moreMarker = "\ufffe…more"

// docObject is one request or reply an example shows.
type docObject struct {
	line  int            // where it begins in docs/protocol.md, from 1
	text  string         // as written
	value map[string]any // parsed: numbers as json.Number, … as moreMarker
}

func (o docObject) isRequest() bool { _, ok := o.value["command"]; return ok }
func (o docObject) isReply() bool   { _, ok := o.value["ok"]; return ok }

// exchange is requests sent at once (pipelined) and the replies they
// get, matched by id in whatever order they arrive.
type exchange struct{ requests, replies []docObject }

// parseDocExamples reads the examples of doc, a Markdown text: objects
// in fenced or indented code blocks, one request or reply each (which may
// span lines), in document order. An object with a <placeholder> outside
// its strings is a template, not an example; an object that is neither a
// request nor a reply is no example either. A fenced block with an info
// string (```sh) is a shell session or another transport's (the HTTP
// API's JSON), not a bridge exchange: it is skipped.
func parseDocExamples(doc string) ([]exchange, error) {
	var (
		all     []exchange
		cur     exchange
		fenced  bool
		other   bool     // in a fenced block with an info string
		pending []string // lines of an object not yet closed
		start   int
	)
	flush := func() {
		if len(cur.requests)+len(cur.replies) > 0 {
			all = append(all, cur)
		}
		cur = exchange{}
	}
	for i, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			if pending != nil {
				return nil, fmt.Errorf("docs/protocol.md:%d: the object is not closed before its code block ends", start)
			}
			flush()
			fenced = !fenced
			other = fenced && strings.TrimSpace(strings.TrimPrefix(line, "```")) != ""
			continue
		}
		if other {
			continue
		}
		code, indented := strings.CutPrefix(line, "    ")
		if !fenced && !indented {
			if pending != nil {
				return nil, fmt.Errorf("docs/protocol.md:%d: the object is not closed before its code block ends", start)
			}
			flush()
			continue
		}
		if !fenced {
			line = code
		}
		if pending == nil {
			if !strings.HasPrefix(strings.TrimSpace(line), `{"`) {
				continue
			}
			start = i + 1
		}
		pending = append(pending, line)
		text := strings.Join(pending, "\n")
		depth, template, err := scanObject(text)
		if err != nil {
			return nil, fmt.Errorf("docs/protocol.md:%d: %v", start, err)
		}
		if depth > 0 {
			continue
		}
		pending = nil
		if template {
			continue
		}
		v, err := parseDocValue(text)
		if err != nil {
			return nil, fmt.Errorf("docs/protocol.md:%d: %v\n%s", start, err, text)
		}
		o := docObject{line: start, text: text, value: v}
		switch {
		case o.isRequest():
			if len(cur.replies) > 0 {
				flush()
			}
			cur.requests = append(cur.requests, o)
		case o.isReply():
			cur.replies = append(cur.replies, o)
		}
	}
	if pending != nil {
		return nil, fmt.Errorf("docs/protocol.md:%d: the object is never closed", start)
	}
	flush()
	return all, nil
}

// check refuses an exchange the doc cannot mean: a reply with no request
// shown before it, a request with no reply, an id used twice.
func (ex exchange) check() error {
	ids := map[string]docObject{}
	for _, r := range ex.requests {
		id := fmt.Sprint(r.value["id"])
		if prev, dup := ids[id]; dup {
			return fmt.Errorf("docs/protocol.md:%d: id %s is already the id of the request at line %d, whose reply is awaited with it", r.line, id, prev.line)
		}
		ids[id] = r
	}
	answered := map[string]bool{}
	for _, r := range ex.replies {
		id := fmt.Sprint(r.value["id"])
		if answered[id] {
			return fmt.Errorf("docs/protocol.md:%d: a second reply with id %s", r.line, id)
		}
		if _, ok := ids[id]; !ok {
			return fmt.Errorf("docs/protocol.md:%d: a reply with id %s, but no request with that id is shown before it (in its code block, after the previous replies)", r.line, id)
		}
		answered[id] = true
	}
	for id, r := range ids {
		if !answered[id] {
			return fmt.Errorf("docs/protocol.md:%d: a request whose reply is not shown", r.line)
		}
	}
	return nil
}

// scanObject reports the bracket depth at the end of text and whether a
// < appears outside its strings (a <placeholder>: a template).
func scanObject(text string) (depth int, template bool, err error) {
	inString, escaped := false, false
	for _, r := range text {
		switch {
		case inString && escaped:
			escaped = false
		case inString && r == '\\':
			escaped = true
		case inString:
			inString = r != '"'
		case r == '"':
			inString = true
		case r == '{' || r == '[':
			depth++
		case r == '}' || r == ']':
			depth--
			if depth < 0 {
				return 0, false, fmt.Errorf("unbalanced %q", r)
			}
		case r == '<':
			template = true
		}
	}
	return depth, template, nil
}

// parseDocValue parses an object as the doc writes it: JSON, where a bare
// … stands for more elements (in an array) or more keys (in a map).
func parseDocValue(text string) (map[string]any, error) {
	var b strings.Builder
	var open []rune
	inString, escaped := false, false
	for _, r := range text {
		switch {
		case inString && escaped:
			escaped = false
		case inString && r == '\\':
			escaped = true
		case inString:
			inString = r != '"'
		case r == '"':
			inString = true
		case r == '{' || r == '[':
			open = append(open, r)
		case r == '}' || r == ']':
			open = open[:len(open)-1]
		case r == '…' && len(open) > 0 && open[len(open)-1] == '[':
			b.WriteString(strconv.Quote(moreMarker))
			continue
		case r == '…' && len(open) > 0:
			b.WriteString(strconv.Quote(moreMarker) + ": null")
			continue
		}
		b.WriteRune(r)
	}
	dec := json.NewDecoder(strings.NewReader(b.String()))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("text after the object")
	}
	return v, nil
}

// TestDocExamplesAreRead: the reader of docs/protocol.md's examples finds
// requests and replies in fenced and indented blocks, over several lines,
// groups requests shown together, and leaves templates out.
func TestDocExamplesAreRead(t *testing.T) {
	doc := strings.Join([]string{
		"Prose {not an example}.",
		"```",
		`{"id": <any>, "command": "<name>", ...arguments}`,
		`{"id": 1, "command": "eval", "code": "[1, len]"}`,
		`{"id": 1, "ok": true, "result": {"repr": "[1, <built-in function len>]",`,
		`  "output": ""}}`,
		`{"id": 2, "command": "ping"}`,
		`{"id": 3, "command": "ping"}`,
		`{"id": 3, "ok": true, "result": "pong"}`,
		`{"id": 2, "ok": true, "result": "pong"}`,
		"```",
		"",
		`    {"id": 4, "command": "stats"}`,
		`    {"id": 4, "ok": true, "result": {"objects": 16, …}}`,
	}, "\n")
	exchanges, err := parseDocExamples(doc)
	if err != nil {
		t.Fatal(err)
	}
	type shape struct{ Requests, Replies []int } // lines
	var got []shape
	for _, ex := range exchanges {
		var s shape
		for _, r := range ex.requests {
			s.Requests = append(s.Requests, r.line)
		}
		for _, r := range ex.replies {
			s.Replies = append(s.Replies, r.line)
		}
		got = append(got, s)
		if err := ex.check(); err != nil {
			t.Error(err)
		}
	}
	want := []shape{{[]int{4}, []int{5}}, {[]int{7, 8}, []int{9, 10}}, {[]int{13}, []int{14}}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("exchanges (-got +want):\n%s", diff)
	}
	if _, more := exchanges[2].replies[0].value["result"].(map[string]any)[moreMarker]; !more {
		t.Errorf("a bare … in a map was not read as more keys: %v", exchanges[2].replies[0].value)
	}
}

// TestDocExamplesThatCannotRun: a reply whose request is not shown, a
// request without its reply and an object never closed are errors, not
// examples skipped.
func TestDocExamplesThatCannotRun(t *testing.T) {
	for name, doc := range map[string]string{
		"reply without request":   "```\n{\"id\": 1, \"command\": \"ping\"}\n{\"id\": 2, \"ok\": true, \"result\": \"pong\"}\n```",
		"reply in the next block": "```\n{\"id\": 1, \"command\": \"ping\"}\n```\n\n```\n{\"id\": 1, \"ok\": true, \"result\": \"pong\"}\n```",
		"request without reply":   "```\n{\"id\": 1, \"command\": \"ping\"}\n```",
		"same id twice":           "```\n{\"id\": 1, \"command\": \"ping\"}\n{\"id\": 1, \"command\": \"ping\"}\n{\"id\": 1, \"ok\": true, \"result\": \"pong\"}\n```",
		"not closed":              "```\n{\"id\": 1, \"command\": \"ping\"\n```",
	} {
		exchanges, err := parseDocExamples(doc)
		for _, ex := range exchanges {
			if err == nil {
				err = ex.check()
			}
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
