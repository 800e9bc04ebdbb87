package zmqbridge_test

// Holding replies against docs/protocol.md's examples: docMatcher compares
// what the server answered with what the doc shows, and turns the doc's
// requests into what is sent.

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"batos/internal/image"
	"batos/internal/zmqbridge"
)

// fieldKind is what a field whose value changes from run to run must be;
// the doc's value for it only shows its form.
type fieldKind struct {
	name string
	// docForm reports whether the doc's value is of this kind: a field
	// named so but shown otherwise (a catalog_show "doc" that is a map, a
	// "tid" that is nil) is compared as any other.
	docForm func(want any) bool
	check   func(got any) bool
	// bound: the doc's value names the actual one from then on. Later
	// requests that show it send the actual value instead, and later
	// replies that show it must hold that same value.
	bound bool
}

var (
	tidPattern   = regexp.MustCompile(`^[0-9a-f]{16}$`)
	docIDPattern = regexp.MustCompile(`^d[0-9a-f]{16}$`)

	tidKind = fieldKind{name: "a TID (16 hex digits)", bound: true,
		docForm: func(w any) bool { s, ok := w.(string); return ok && tidPattern.MatchString(s) },
		check:   func(g any) bool { s, ok := g.(string); return ok && tidPattern.MatchString(s) }}
	docIDKind = fieldKind{name: `a document ID ("d" and 16 hex digits)`, bound: true,
		docForm: func(w any) bool { s, ok := w.(string); return ok && docIDPattern.MatchString(s) },
		check:   func(g any) bool { s, ok := g.(string); return ok && docIDPattern.MatchString(s) }}
	timeKind  = fieldKind{name: "an RFC 3339 time in UTC", docForm: isUTCTime, check: isUTCTime}
	countKind = fieldKind{name: "a non-negative integer",
		docForm: func(w any) bool { n, ok := w.(json.Number); _, err := n.Int64(); return ok && err == nil },
		check:   func(g any) bool { n, ok := wireInt(g); return ok && n >= 0 }}
	// A latency in milliseconds is an integer or a float, as it falls.
	millisKind = fieldKind{name: "a non-negative number",
		docForm: func(w any) bool { _, ok := w.(json.Number); return ok },
		check: func(g any) bool {
			if f, ok := g.(float64); ok {
				return f >= 0
			}
			n, ok := wireInt(g)
			return ok && n >= 0
		}}
)

// isUTCTime reports whether v is a time as the protocol writes one.
func isUTCTime(v any) bool {
	s, ok := v.(string)
	_, err := time.Parse(time.RFC3339Nano, s)
	return ok && err == nil && strings.HasSuffix(s, "Z")
}

// varyingFields are the fields, by name wherever they appear in a reply,
// whose values differ from run to run: transactions, times, durations,
// file sizes, the IDs of documents added from files (derived from their
// paths, which the test maps to a temporary directory), and the sizes of
// prompts.
var varyingFields = map[string]fieldKind{
	// Transactions.
	"tid": tidKind, "undone": tidKind, "last_tid": tidKind, "serial": tidKind,
	// Documents added from files.
	"doc": docIDKind,
	// Times.
	"time": timeKind, "before": timeKind, "added": timeKind, "created": timeKind, "updated": timeKind,
	"at": timeKind, "first": timeKind, "last": timeKind, "started": timeKind, "finished": timeKind,
	"decided": timeKind, "installed_at": timeKind,
	// Durations.
	"ms": countKind, "took_ms": countKind, "p50_ns": countKind, "p99_ns": countKind,
	"latency_ms": millisKind, "mean_latency_ms": millisKind, "model_ms": millisKind,
	// File sizes.
	"bytes_before": countKind, "bytes_after": countKind, "file_bytes": countKind,
	// A prompt's length follows its wording, which changes whenever the
	// personas' prompts are tuned.
	"prompt_tokens": countKind,
}

// wireRef is an object reference as a reply carries it: msgpack
// extension type 1.
type wireRef uint64

// wireInt reads a decoded msgpack integer.
func wireInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case uint64:
		return int64(n), n <= math.MaxInt64
	}
	return 0, false
}

// readWireValue turns what msgp decoded into plain values: integers as
// int64 or uint64, floats as float64, references as wireRef.
func readWireValue(v any) any {
	switch v := v.(type) {
	case float32:
		return float64(v)
	case *msgp.RawExtension:
		if v.Type == zmqbridge.RefExtension && len(v.Data) == 8 {
			return wireRef(binary.BigEndian.Uint64(v.Data))
		}
	case []any:
		for i := range v {
			v[i] = readWireValue(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = readWireValue(v[k])
		}
	}
	return v
}

// docMatcher compares replies with the doc. Its bindings tie the doc's
// varying identifiers to the actual ones, and rewrite maps the doc's
// fixture paths and URLs to the test's.
type docMatcher struct {
	bindings map[string]string
	rewrite  func(string) string
}

// request turns a doc request into the map to send: numbers as int64 or
// float64, {"$ref": "oid:N"} as the extension it shows, fixtures
// rewritten, bound identifiers replaced.
func (m *docMatcher) request(v any) any {
	if ref, ok := docRef(v); ok {
		data := binary.BigEndian.AppendUint64(nil, ref)
		return &msgp.RawExtension{Type: zmqbridge.RefExtension, Data: data}
	}
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		f, _ := v.Float64()
		return f
	case string:
		return m.actual(v)
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = m.request(v[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = m.request(e)
		}
		return out
	}
	return v
}

// actual is a doc string as this run has it: fixtures rewritten, and
// every identifier bound so far (a TID quoted in a message too) replaced.
func (m *docMatcher) actual(s string) string {
	for shown, actual := range m.bindings {
		s = strings.ReplaceAll(s, shown, actual)
	}
	return m.rewrite(s)
}

// match compares got with want at path, returning what differs.
func (m *docMatcher) match(path string, want, got any) []string {
	differs := func(format string, args ...any) []string {
		return []string{path + ": " + fmt.Sprintf(format, args...)}
	}
	switch w := want.(type) {
	case nil:
		if got != nil {
			return differs("got %s, want nil", renderWire(got))
		}
	case bool:
		if got != w {
			return differs("got %s, want %t", renderWire(got), w)
		}
	case string:
		g, ok := got.(string)
		if !ok || !matchText(m.actual(w), g) {
			return differs("got %s, want %q", renderWire(got), m.actual(w))
		}
	case json.Number:
		return m.matchNumber(path, w, got)
	case []any:
		return m.matchArray(path, w, got)
	case map[string]any:
		return m.matchMap(path, w, got)
	}
	return nil
}

// matchNumber: an integer in the doc is an integer on the wire (1 and 1.0
// differ in the image); a float is a float that rounds to the digits shown.
func (m *docMatcher) matchNumber(path string, want json.Number, got any) []string {
	if n, err := want.Int64(); err == nil {
		if g, ok := wireInt(got); !ok || g != n {
			return []string{fmt.Sprintf("%s: got %s, want the integer %s", path, renderWire(got), want)}
		}
		return nil
	}
	f, _ := want.Float64()
	g, ok := got.(float64)
	_, frac, _ := strings.Cut(want.String(), ".")
	shown := func(x float64) string { return strconv.FormatFloat(x, 'f', len(frac), 64) }
	if strings.ContainsAny(want.String(), "eE") {
		shown = func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	}
	if !ok || shown(g) != shown(f) {
		return []string{fmt.Sprintf("%s: got %s, want a float %s", path, renderWire(got), want)}
	}
	return nil
}

func (m *docMatcher) matchArray(path string, want []any, got any) []string {
	g, ok := got.([]any)
	if !ok {
		return []string{fmt.Sprintf("%s: got %s, want an array", path, renderWire(got))}
	}
	more := len(want) > 0 && want[len(want)-1] == moreMarker
	if more {
		want = want[:len(want)-1]
	}
	if slices.Contains(want, any(moreMarker)) {
		return []string{path + ": a bare … may only end an array"}
	}
	if len(g) < len(want) || (!more && len(g) != len(want)) {
		return []string{fmt.Sprintf("%s: got %d elements, want %d", path, len(g), len(want))}
	}
	var diffs []string
	for i := range want {
		diffs = append(diffs, m.match(fmt.Sprintf("%s[%d]", path, i), want[i], g[i])...)
	}
	return diffs
}

// docRef reads the doc's form of an object reference, {"$ref": "oid:N"}.
func docRef(v any) (uint64, bool) {
	m, ok := v.(map[string]any)
	s, isString := m["$ref"].(string)
	if !ok || !isString || len(m) != 1 {
		return 0, false
	}
	digits, ok := strings.CutPrefix(s, "oid:")
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, ok && err == nil
}

func (m *docMatcher) matchMap(path string, want map[string]any, got any) []string {
	if ref, ok := docRef(want); ok {
		if g, ok := got.(wireRef); !ok || uint64(g) != ref {
			return []string{fmt.Sprintf("%s: got %s, want a reference to oid:%d", path, renderWire(got), ref)}
		}
		return nil
	}
	g, ok := got.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("%s: got %s, want a map", path, renderWire(got))}
	}
	_, more := want[moreMarker]
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if k == moreMarker {
			continue
		}
		at := path + "." + k
		gv, present := g[k]
		if !present {
			diffs = append(diffs, at+": missing")
			continue
		}
		if kind, ok := varyingFields[k]; ok && kind.docForm(want[k]) {
			diffs = append(diffs, m.matchVarying(at, kind, want[k], gv)...)
			continue
		}
		diffs = append(diffs, m.match(at, want[k], gv)...)
	}
	if !more {
		for _, k := range slices.Sorted(maps.Keys(g)) {
			if _, shown := want[k]; !shown {
				diffs = append(diffs, fmt.Sprintf("%s.%s: got %s, not in the doc", path, k, renderWire(g[k])))
			}
		}
	}
	return diffs
}

// matchVarying checks a varying field's form and, for an identifier, that
// it is the one the doc's value stood for before.
func (m *docMatcher) matchVarying(path string, kind fieldKind, want, got any) []string {
	if !kind.check(got) {
		return []string{fmt.Sprintf("%s: got %s, want %s", path, renderWire(got), kind.name)}
	}
	if !kind.bound {
		return nil
	}
	w, g := want.(string), got.(string)
	if prev, ok := m.bindings[w]; ok && prev != g {
		return []string{fmt.Sprintf("%s: got %q, want %q, which %q stood for earlier", path, g, prev, w)}
	}
	for shown, actual := range m.bindings {
		if actual == g && shown != w {
			return []string{fmt.Sprintf("%s: got %q, which the doc showed as %q earlier, not %q", path, g, shown, w)}
		}
	}
	m.bindings[w] = g
	return nil
}

// matchText matches a doc string: each … stands for any text.
func matchText(want, got string) bool {
	parts := strings.Split(want, "…")
	if len(parts) == 1 {
		return want == got
	}
	if !strings.HasPrefix(got, parts[0]) {
		return false
	}
	got = got[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(got, p)
		if i < 0 {
			return false
		}
		got = got[i+len(p):]
	}
	return strings.HasSuffix(got, parts[len(parts)-1])
}

// renderWire writes a reply value as the doc would show it.
func renderWire(v any) string {
	var b bytes.Buffer
	writeWire(&b, v)
	return b.String()
}

func writeWire(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case wireRef:
		fmt.Fprintf(b, `{"$ref": "oid:%d"}`, uint64(v))
	case []byte:
		fmt.Fprintf(b, `<bin %s>`, base64.StdEncoding.EncodeToString(v))
	case float64:
		s := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		b.WriteString(s)
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			writeWire(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		b.WriteByte('{')
		for i, k := range slices.Sorted(maps.Keys(v)) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(b, "%q: ", k)
			writeWire(b, v[k])
		}
		b.WriteByte('}')
	default:
		// As the doc writes it: <input>, not \u003cinput\u003e.
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			fmt.Fprintf(b, "%#v", v)
			return
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
}

// TestDocExampleMatching: how a reply is held against the doc's.
func TestDocExampleMatching(t *testing.T) {
	tests := []struct {
		name  string
		want  string // a doc value
		got   any
		match bool
	}{
		{"same string", `"pong"`, "pong", true},
		{"other string", `"pong"`, "ping", false},
		{"… for a tail", `"no embedding model: …"`, "no embedding model: chunks are fixed-size", true},
		{"… in the middle", `"target oid:9: …: object not found"`, "target oid:9: load oid:9 as of 18ec: object not found", true},
		{"… text must still match", `"target oid:9: …: object not found"`, "target oid:9: gone", false},
		{"integer", `7`, int64(7), true},
		{"integer for a float", `7`, 7.0, false},
		{"float for an integer", `7.0`, int64(7), false},
		{"float to the digits shown", `0.0164`, 0.01639344262295082, true},
		{"float off in a shown digit", `0.0165`, 0.01639344262295082, false},
		{"float with an exponent", `1e-05`, 0.00001, true},
		{"array", `[1, 2]`, []any{int64(1), int64(2)}, true},
		{"array with more", `[1, 2]`, []any{int64(1), int64(2), int64(3)}, false},
		{"array with … for more", `[1, …]`, []any{int64(1), int64(2), int64(3)}, true},
		{"array with … not last", `[…, 3]`, []any{int64(1), int64(2), int64(3)}, false},
		{"map with a key more", `{"a": 1}`, map[string]any{"a": int64(1), "b": true}, false},
		{"map with a key missing", `{"a": 1, "b": true}`, map[string]any{"a": int64(1)}, false},
		{"map with … for more", `{"a": 1, …}`, map[string]any{"a": int64(1), "b": true}, true},
		{"reference", `{"$ref": "oid:7"}`, wireRef(7), true},
		{"reference to another", `{"$ref": "oid:7"}`, wireRef(8), false},
		{"reference as a string", `{"$ref": "oid:7"}`, "oid:7", false},
		{"null", `null`, nil, true},
		{"varying TID", `{"tid": "18ec915f7ecc7987"}`, map[string]any{"tid": "0123456789abcdef"}, true},
		{"TID of another form", `{"tid": "18ec915f7ecc7987"}`, map[string]any{"tid": "oid:7"}, false},
		{"TID shown as nil", `{"tid": null}`, map[string]any{"tid": "0123456789abcdef"}, false},
		{"varying time", `{"time": "2026-12-06T13:03:11.123829258Z"}`, map[string]any{"time": "2027-01-01T00:00:00Z"}, true},
		{"time of another form", `{"time": "2026-12-06T13:03:11.123829258Z"}`, map[string]any{"time": "yesterday"}, false},
		{"varying duration", `{"ms": 2}`, map[string]any{"ms": int64(40)}, true},
		{"latency as a float", `{"latency_ms": 0.76}`, map[string]any{"latency_ms": 12.5}, true},
		{"negative duration", `{"ms": 2}`, map[string]any{"ms": int64(-1)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := parseDocValue(`{"v": ` + tt.want + `}`)
			if err != nil {
				t.Fatal(err)
			}
			m := &docMatcher{bindings: map[string]string{}, rewrite: func(s string) string { return s }}
			diffs := m.match("reply", v, map[string]any{"v": tt.got})
			if (len(diffs) == 0) != tt.match {
				t.Errorf("%s against %s: differences %q, want a match: %t", renderWire(tt.got), tt.want, diffs, tt.match)
			}
		})
	}
}

// TestDocExampleBindings: a TID a reply shows stands for the actual one
// in later requests and replies, whole or quoted in a message.
func TestDocExampleBindings(t *testing.T) {
	m := &docMatcher{bindings: map[string]string{}, rewrite: func(s string) string { return s }}
	logged, _ := parseDocValue(`{"tid": "18ec915f7ecc7987"}`)
	if d := m.match("reply", logged, map[string]any{"tid": "0123456789abcdef"}); d != nil {
		t.Fatal(d)
	}
	undo, _ := parseDocValue(`{"command": "undo", "tid": "18ec915f7ecc7987"}`)
	if got := m.request(undo).(map[string]any)["tid"]; got != "0123456789abcdef" {
		t.Errorf("request's tid: got %v, want the bound 0123456789abcdef", got)
	}
	refused, _ := parseDocValue(`{"message": "cannot undo 18ec915f7ecc7987: …"}`)
	if d := m.match("reply", refused, map[string]any{"message": "cannot undo 0123456789abcdef: later transactions changed oid:17"}); d != nil {
		t.Errorf("a bound TID in a message: %q", d)
	}
	again, _ := parseDocValue(`{"undone": "18ec915f7ecc7987"}`)
	if d := m.match("reply", again, map[string]any{"undone": "fedcba9876543210"}); d == nil {
		t.Error("a TID shown again matched another transaction's")
	}
	renamed, _ := parseDocValue(`{"undone": "18ec91601f2e3d4c"}`)
	if d := m.match("reply", renamed, map[string]any{"undone": "0123456789abcdef"}); d == nil {
		t.Error("a transaction the doc showed as one TID matched another TID the doc shows")
	}
}

// TestDocExampleReferenceIsSentAsExtension: a reference a request shows as
// {"$ref": "oid:N"} is sent as msgpack extension type 1, the form a
// client writes when it can.
func TestDocExampleReferenceIsSentAsExtension(t *testing.T) {
	m := &docMatcher{bindings: map[string]string{}, rewrite: func(s string) string { return s }}
	send, _ := parseDocValue(`{"command": "send", "target": {"$ref": "oid:17"}, "selector": "n"}`)
	b, err := msgp.AppendIntf(nil, m.request(send))
	if err != nil {
		t.Fatal(err)
	}
	got, err := zmqbridge.DecodeRequest(b, zmqbridge.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	ext := []byte{0xd7, byte(zmqbridge.RefExtension), 0, 0, 0, 0, 0, 0, 0, 17}
	if !bytes.Contains(b, ext) || got["target"] != image.Ref(17) {
		t.Errorf("sent % x, decoded target %v: want the fixext8 % x", b, got["target"], ext)
	}
}
