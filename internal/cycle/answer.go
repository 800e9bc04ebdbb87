package cycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Reading a model's JSON answer. Models wrap the object in prose and
// Markdown fences, and write the JSON of Python habits: single quotes,
// trailing commas, smart quotes, raw line breaks inside strings, True
// and None. decodeAnswer takes the first complete top-level object out of
// the text, and repairs what has one reading only, saying what it
// repaired; what it cannot read it reports with the position and the
// likely cause, for the persona to fix.

// DecodeAnswer is decodeAnswer for other personas' answers (ALFRED's
// audit): a model's JSON, repaired where it has one reading only.
func DecodeAnswer[T any](answer string) (*T, string, error) { return decodeAnswer[T](answer) }

// decodeAnswer decodes the JSON object in answer into a new T, refusing
// fields T does not have. It returns what it repaired to read it ("" for
// nothing), for the step's record.
func decodeAnswer[T any](answer string) (*T, string, error) {
	spans, open := objectSpans(answer)
	if len(spans) == 0 {
		if open >= 0 {
			return nil, "", fmt.Errorf("%s: the JSON object opened here is never closed (was the answer cut off?)", position(answer, open))
		}
		return nil, "", errors.New("the answer holds no JSON object; answer with one object, {...}")
	}
	var firstErr error
	longest := -1
	for _, sp := range spans {
		v, repairs, err := decodeSpan[T](answer, sp)
		if err == nil {
			if outside := strings.TrimSpace(fenceless(answer[:sp.start]) + fenceless(answer[sp.end:])); outside != "" {
				repairs = append([]string{"took the JSON object out of the text around it"}, repairs...)
			}
			return v, strings.Join(repairs, "; "), nil
		}
		// Of several failing candidates ({name} in prose, then the
		// answer), the longest is most likely the one meant.
		if n := sp.end - sp.start; n > longest {
			longest, firstErr = n, err
		}
	}
	return nil, "", firstErr
}

// span is a balanced {...} in an answer, end exclusive.
type span struct{ start, end int }

// objectSpans finds the balanced top-level {...} spans of s in order,
// reading strings in any quotes so that braces inside them do not count.
// open is where an object that never closes starts, or -1.
func objectSpans(s string) (spans []span, open int) {
	open = -1
	depth, start := 0, 0
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case depth == 0 && r == '{':
			depth, start, open = 1, i, i
		case depth == 0:
		case r == '{':
			depth++
		case r == '}':
			depth--
			if depth == 0 {
				spans, open = append(spans, span{start, i + 1}), -1
			}
		case closingQuote(r) != nil:
			i = skipString(s, i+n, closingQuote(r))
			continue
		}
		i += n
	}
	return spans, open
}

// closingQuote says which runes close a string opened by r (nil: r opens
// none). A straight quote is closed by itself only (a smart quote inside
// is text); a smart one by either smart quote or the straight one, as
// models mix them.
func closingQuote(r rune) func(rune) bool {
	switch r {
	case '"':
		return func(c rune) bool { return c == '"' }
	case '\'':
		return func(c rune) bool { return c == '\'' }
	case '“', '”':
		return func(c rune) bool { return c == '"' || c == '”' || c == '“' }
	case '‘', '’':
		return func(c rune) bool { return c == '\'' || c == '’' || c == '‘' }
	}
	return nil
}

// skipString returns the index past the string whose body starts at i.
func skipString(s string, i int, closes func(rune) bool) int {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\':
			i += n
			if i < len(s) {
				_, n = utf8.DecodeRuneInString(s[i:])
			}
		case closes(r):
			return i + n
		}
		i += n
	}
	return i
}

// fenceless is text with its Markdown fence lines (```json) removed.
func fenceless(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if !strings.HasPrefix(strings.TrimSpace(line), "```") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// decodeSpan decodes one candidate: as it is, or repaired if it is not
// valid JSON and a repair changes it.
func decodeSpan[T any](answer string, sp span) (*T, []string, error) {
	text := answer[sp.start:sp.end]
	v, err := decodeStrict[T](text)
	if err == nil {
		return v, nil, nil
	}
	var se *json.SyntaxError
	if !errors.As(err, &se) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, nil, explain(answer, sp, err)
	}
	fixed, repairs := repairJSON(text)
	if len(repairs) == 0 {
		return nil, nil, explain(answer, sp, err)
	}
	if v, rerr := decodeStrict[T](fixed); rerr == nil {
		return v, repairs, nil
	}
	return nil, nil, explain(answer, sp, err)
}

func decodeStrict[T any](text string) (*T, error) {
	var v T
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return &v, nil
}

// explain says where in answer err happened, and its likely cause.
func explain(answer string, sp span, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		at := sp.start + max(int(se.Offset)-1, 0)
		msg := fmt.Sprintf("%s: %s", position(answer, at), se.Error())
		if cause := likelyCause(se.Error(), answer, at); cause != "" {
			msg += " (" + cause + ")"
		}
		return errors.New(msg)
	case errors.As(err, &te):
		at := sp.start + max(int(te.Offset)-1, 0)
		return fmt.Errorf("%s: %q is a JSON %s; the schema wants a %s", position(answer, at), te.Field, te.Value, jsonKind(te.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: the JSON ends inside a string (was the answer cut off?)", position(answer, sp.end-1))
	}
	if strings.Contains(err.Error(), "unknown field") {
		return fmt.Errorf("%s (the schema has no such field)", strings.TrimPrefix(err.Error(), "json: "))
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(goKind string) string {
	switch goKind {
	case "slice":
		return "list"
	case "struct", "map":
		return "object"
	}
	return goKind
}

// likelyCause guesses why the JSON decoder stopped at answer[at].
func likelyCause(msg, answer string, at int) string {
	r, _ := utf8.DecodeRuneInString(answer[at:])
	switch {
	case r == '\'' || r == '‘' || r == '’':
		return "single quotes: JSON strings and keys take double quotes"
	case strings.Contains(msg, "in string literal"):
		return `a raw control character inside a string: write \n for a line break, \t for a tab`
	case r == '}' || r == ']':
		return "a trailing comma before " + string(r) + "?"
	case strings.Contains(msg, "after object key:value pair") || strings.Contains(msg, "after array element"):
		return `a missing comma, or a " inside a string that is not escaped as \"`
	case strings.Contains(msg, "after object key"):
		return "a missing : after a key?"
	case unicode.IsLetter(r):
		return "a bare word: strings take double quotes, and JSON writes true, false and null"
	}
	return ""
}

// position is answer[at]'s line and column, 1-based, columns in
// characters.
func position(answer string, at int) string {
	at = min(at, len(answer))
	before := answer[:at]
	line := strings.Count(before, "\n") + 1
	col := utf8.RuneCountInString(before[strings.LastIndexByte(before, '\n')+1:]) + 1
	return fmt.Sprintf("line %d, column %d", line, col)
}

// repairJSON rewrites text's unambiguous departures from JSON: strings
// in single or smart quotes become double-quoted, raw control characters
// inside strings are escaped, commas before } or ] are dropped, and the
// bare words True, False and None become true, false and null. It
// returns the text and what it repaired, in a fixed order.
func repairJSON(text string) (string, []string) {
	r := &repairer{done: map[string]bool{}}
	for i := 0; i < len(text); {
		c, n := utf8.DecodeRuneInString(text[i:])
		switch {
		case c == '"':
			i = r.str(text, i+n, closingQuote(c), "")
			continue
		case c == '“' || c == '”' || c == '‘' || c == '’':
			i = r.str(text, i+n, closingQuote(c), repairSmart)
			continue
		case c == '\'':
			i = r.str(text, i+n, closingQuote(c), repairSingle)
			continue
		case c == ',' && closesNext(text[i+n:]):
			r.done[repairComma] = true
		case unicode.IsLetter(c):
			end := i
			for end < len(text) && (isWordByte(text[end])) {
				end++
			}
			if end == i { // a letter outside ASCII: no word of ours
				r.b.WriteRune(c)
				break
			}
			if lit, ok := pythonWords[text[i:end]]; ok {
				r.b.WriteString(lit)
				r.done[repairPython] = true
			} else {
				r.b.WriteString(text[i:end])
			}
			i = end
			continue
		default:
			r.b.WriteRune(c)
		}
		i += n
	}
	var repairs []string
	for _, k := range repairOrder {
		if r.done[k] {
			repairs = append(repairs, k)
		}
	}
	return r.b.String(), repairs
}

// What repairJSON may do, as the step records it.
const (
	repairSingle  = "single-quoted strings made double-quoted"
	repairSmart   = "smart quotes made straight"
	repairControl = "raw line breaks or tabs inside strings escaped"
	repairComma   = "trailing commas removed"
	repairEscape  = `\' written as '`
	repairPython  = "Python's True, False, None written as true, false, null"
)

var repairOrder = []string{repairSingle, repairSmart, repairControl, repairEscape, repairComma, repairPython}

var pythonWords = map[string]string{"True": "true", "False": "false", "None": "null"}

type repairer struct {
	b    strings.Builder
	done map[string]bool
}

// str copies the string whose body starts at i as a double-quoted JSON
// string; repair names what reading it in other quotes repairs ("" for
// none). It returns the index past the string.
func (r *repairer) str(text string, i int, closes func(rune) bool, repair string) int {
	if repair != "" {
		r.done[repair] = true
	}
	r.b.WriteByte('"')
	for i < len(text) {
		c, n := utf8.DecodeRuneInString(text[i:])
		switch {
		case c == '\\' && i+n < len(text):
			e, en := utf8.DecodeRuneInString(text[i+n:])
			if e == '\'' {
				r.b.WriteRune('\'') // \' is no JSON escape; ' needs none
				r.done[repairEscape] = true
			} else {
				r.b.WriteRune('\\')
				r.b.WriteRune(e)
			}
			i += n + en
			continue
		case closes(c):
			r.b.WriteByte('"')
			return i + n
		case c == '"':
			r.b.WriteString(`\"`) // a " inside a string in other quotes
		case c == '\n':
			r.b.WriteString(`\n`)
			r.done[repairControl] = true
		case c == '\r':
			r.b.WriteString(`\r`)
			r.done[repairControl] = true
		case c == '\t':
			r.b.WriteString(`\t`)
			r.done[repairControl] = true
		default:
			r.b.WriteRune(c)
		}
		i += n
	}
	return i
}

// closesNext reports whether the next non-space character of s closes an
// object or array.
func closesNext(s string) bool {
	t := strings.TrimLeftFunc(s, unicode.IsSpace)
	return t != "" && (t[0] == '}' || t[0] == ']')
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
