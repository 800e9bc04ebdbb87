package zmqbridge_test

import (
	"maps"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/uvm/uvmtest"
)

// TestHostileIDsEchoed: every kind of msgpack id comes back as sent.
func TestHostileIDsEchoed(t *testing.T) {
	_, addr, _ := startServer(t, &fakeService{})
	d := dealer(t, addr)
	refExt := []byte{0xd7, 0x01, 0, 0, 0, 0, 0, 0, 0, 7}
	ids := map[string]struct {
		raw  []byte // msgpack of the id
		want any
	}{
		"nil":      {[]byte{0xc0}, nil},
		"true":     {[]byte{0xc3}, true},
		"negint":   {msgp.AppendInt64(nil, math.MinInt64), int64(math.MinInt64)},
		"maxint":   {msgp.AppendInt64(nil, math.MaxInt64), int64(math.MaxInt64)},
		"uint63":   {msgp.AppendUint64(nil, math.MaxInt64), int64(math.MaxInt64)},
		"float32":  {msgp.AppendFloat32(nil, 1.5), 1.5},
		"float64":  {msgp.AppendFloat64(nil, math.Inf(-1)), math.Inf(-1)},
		"str":      {msgp.AppendString(nil, "é\x00id"), "é\x00id"},
		"bin":      {msgp.AppendBytes(nil, []byte{0, 1}), []byte{0, 1}},
		"emptybin": {msgp.AppendBytes(nil, nil), []byte{}},
		"array":    {append([]byte{0x92, 0x01}, msgp.AppendString(nil, "x")...), []any{int64(1), "x"}},
		"map":      {append([]byte{0x81, 0xa1, 'k'}, 0x90), map[string]any{"k": []any{}}},
		"refext":   {refExt, image.Ref(7)},
		"reftag":   {append([]byte{0x81, 0xa4, '$', 'r', 'e', 'f'}, msgp.AppendString(nil, "oid:9")...), image.Ref(9)},
		"hugestr":  {msgp.AppendString(nil, strings.Repeat("i", 900_000)), strings.Repeat("i", 900_000)},
	}
	for name, tc := range ids {
		t.Run(name, func(t *testing.T) {
			b := []byte{0x82}
			b = msgp.AppendString(b, "id")
			b = append(b, tc.raw...)
			b = msgp.AppendString(b, "command")
			b = msgp.AppendString(b, "ping")
			r := roundTrip(t, d, b)
			if r["ok"] != true || !reflect.DeepEqual(r["id"], tc.want) {
				t.Errorf("id %s: got %#v (ok %v), want %#v", name, r["id"], r["ok"], tc.want)
			}
		})
	}
}

// TestHostileArguments: arguments that cannot convert, refs to missing
// objects, huge and mistyped values all get replies.
func TestHostileArguments(t *testing.T) {
	_, addr, _ := startServer(t, &fakeService{})
	d := dealer(t, addr)
	cases := []struct {
		name string
		m    map[string]any
		kind command.Kind // "" means ok
	}{
		{"ref args", map[string]any{"id": 1, "command": "send", "target": "g", "selector": "echo", "args": []any{image.Ref(math.MaxInt64)}}, ""},
		{"kwargs nested", map[string]any{"id": 1, "command": "send", "target": "g", "selector": "echo", "kwargs": map[string]any{"a": map[string]any{"b": []any{nil, []byte{}}}, "": int64(1)}}, ""},
		{"args not array", map[string]any{"id": 1, "command": "send", "target": "g", "selector": "echo", "args": "x"}, command.KindBadRequest},
		{"kwargs not map", map[string]any{"id": 1, "command": "send", "target": "g", "selector": "echo", "kwargs": []any{}}, command.KindBadRequest},
		{"target ref", map[string]any{"id": 1, "command": "inspect", "target": image.Ref(5)}, ""},
		{"target bool", map[string]any{"id": 1, "command": "inspect", "target": true}, command.KindBadRequest},
		{"limit negative", map[string]any{"id": 1, "command": "history", "target": "g", "limit": int64(-1)}, command.KindBadRequest},
		{"limit huge", map[string]any{"id": 1, "command": "history", "target": "g", "limit": int64(math.MaxInt64)}, command.KindBadRequest},
		{"limit float", map[string]any{"id": 1, "command": "log", "limit": 1.5}, command.KindBadRequest},
		{"before junk", map[string]any{"id": 1, "command": "log", "before": "zz"}, command.KindBadRequest},
		{"tid junk", map[string]any{"id": 1, "command": "undo", "tid": strings.Repeat("f", 100)}, command.KindBadRequest},
		{"command int", map[string]any{"id": 1, "command": int64(3)}, command.KindBadRequest},
		{"command empty", map[string]any{"id": 1, "command": ""}, command.KindBadRequest},
		{"command missing", map[string]any{"id": 1}, command.KindBadRequest},
		{"command proto", map[string]any{"id": 1, "command": "__proto__"}, command.KindUnknownCommand},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := req(t, d, tc.m)
			if tc.kind == "" && r["ok"] != true {
				t.Errorf("got %v, want ok", r)
			}
			if tc.kind != "" && (r["ok"] != false || errKind(r) != tc.kind) {
				t.Errorf("got %v, want %s", r, tc.kind)
			}
			if r["id"] != int64(1) {
				t.Errorf("id not echoed: %v", r)
			}
		})
	}
}

// TestHostileRealImage: command.Local over an image, with hostile arguments.
func TestHostileRealImage(t *testing.T) {
	u := uvmtest.Open(t, nil)
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	d := dealer(t, addr)
	cases := []map[string]any{
		{"command": "send", "target": "genesis", "selector": "nosuch", "args": []any{image.Ref(1 << 40)}},
		{"command": "send", "target": image.Ref(1 << 40), "selector": "x"},
		{"command": "send", "target": int64(math.MaxInt64), "selector": "x"},
		{"command": "send", "target": "", "selector": ""},
		{"command": "send", "target": "genesis", "selector": "__init__", "kwargs": map[string]any{"a": image.Ref(1 << 40), "b": map[string]any{"": []byte{}}}},
		{"command": "eval", "code": "genesis"},
		{"command": "eval", "code": "lambda: 1"},
		{"command": "eval", "code": "def f():\n  pass\nf"},
		{"command": "eval", "code": "{1: 2, (1,2): [3]}"},
		{"command": "eval", "code": "set([1])"},
		{"command": "eval", "code": "x = ["},
		{"command": "eval", "code": strings.Repeat("[", 500) + strings.Repeat("]", 500)},
		{"command": "inspect", "target": "oid:0"},
		{"command": "inspect", "target": image.Ref(1 << 40)},
		{"command": "inspect", "target": "genesis"},
		{"command": "history", "target": "genesis", "limit": int64(math.MaxInt32)},
		{"command": "log", "limit": int64(0)},
		{"command": "log", "before": "ffffffffffffffff"},
		{"command": "undo", "tid": "0000000000000000"},
		{"command": "undo", "tid": "ffffffffffffffff"},
		{"command": "initiate_cognitive_cycle", "target_oid": image.Ref(1 << 40), "mission_brief": ""},
		{"command": "initiate_cognitive_cycle", "target_oid": "genesis", "mission_brief": "learn to count"},
		{"command": "send", "target": "genesis", "selector": "nosuch", "learn": "handle"},
		{"command": "send", "target": "genesis", "selector": "nosuch", "timeout_ms": int64(1)},
		{"command": "send", "target": "nobody", "selector": "x", "learn": "wait"},
		{"command": "cycle_list", "limit": int64(math.MaxInt32)},
		{"command": "cycle_show", "cycle": int64(math.MaxInt64)},
		{"command": "cycle_show", "cycle": "c1"},
		{"command": "cycle_retry", "cycle": int64(1)},
		{"command": "cycle_cancel", "cycle": int64(1 << 40)},
	}
	for i, m := range cases {
		m["id"] = int64(i)
		d.SetRcvtimeo(5 * time.Second)
		r := req(t, d, m)
		if r["id"] != int64(i) {
			t.Errorf("%v: %v", m, r)
		}
		// internal means a server fault; a client's bad target or bad
		// code is not_found or bad_request (or method_error).
		if r["ok"] == false && errKind(r) == command.KindInternal {
			t.Errorf("client error classified internal: %v: %v", m, r["error"])
		}
	}
}

// TestStringsMustBeUTF8: a request's strings are text. One that is not
// valid UTF-8, wherever it is in the arguments, is refused naming where,
// rather than read with its bad bytes replaced by U+FFFD; bytes travel as
// bin, and the id, only echoed, may be anything.
func TestStringsMustBeUTF8(t *testing.T) {
	_, addr, _ := startServer(t, &fakeService{})
	d := dealer(t, addr)
	send := func(extra map[string]any) map[string]any {
		m := map[string]any{"id": int64(1), "command": "send", "target": "g", "selector": "echo"}
		maps.Copy(m, extra)
		return m
	}
	cases := []struct {
		name string
		m    map[string]any
		want string // "" means ok
	}{
		{"code", map[string]any{"id": int64(1), "command": "eval", "code": "'a\xffb'"}, `bad request: "code" is not valid UTF-8`},
		{"session", map[string]any{"id": int64(1), "command": "eval", "code": "1", "session": "s\xc3"}, `bad request: "session" is not valid UTF-8`},
		{"selector", send(map[string]any{"selector": "\xed\xa0\x80"}), `bad request: "selector" is not valid UTF-8`},
		{"an argument", send(map[string]any{"args": []any{"ok", "\xff"}}), `bad request: "args[1]" is not valid UTF-8`},
		{"a nested argument", send(map[string]any{"kwargs": map[string]any{"a": []any{map[string]any{"b": "\x80"}}}}), `bad request: "kwargs.a[0].b" is not valid UTF-8`},
		{"a keyword", send(map[string]any{"kwargs": map[string]any{"\xfe": int64(1)}}), `bad request: "kwargs key" is not valid UTF-8`},
		{"bytes", send(map[string]any{"args": []any{[]byte{0xff, 0xfe}}}), ""},
		{"text", send(map[string]any{"args": []any{"é\x00✓"}}), ""},
		{"id", map[string]any{"id": "\xff", "command": "ping"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := req(t, d, tc.m)
			if tc.want == "" && r["ok"] != true {
				t.Errorf("got %v, want ok", r)
			}
			if e, _ := r["error"].(map[string]any); tc.want != "" && (errKind(r) != command.KindBadRequest || e["message"] != tc.want) {
				t.Errorf("got %v, want bad_request %q", r, tc.want)
			}
		})
	}
}
