package zmqbridge_test

import (
	"strings"
	"testing"

	"batos/internal/command"
)

// TestUnknownFieldsAreRefused: a field a command does not read is a
// bad_request naming it, before the command runs (the fake service
// would panic on most of these commands, an internal error).
func TestUnknownFieldsAreRefused(t *testing.T) {
	_, addr, _ := startServer(t, &fakeService{})
	d := dealer(t, addr)
	for _, tc := range []struct {
		name string
		req  map[string]any
		want []string // in the message
	}{
		{"cycle_list limt", map[string]any{"command": "cycle_list", "limt": 5}, []string{`unknown field "limt"`, "cycle_list takes only limit"}},
		{"send kwarg", map[string]any{"command": "send", "target": "g", "selector": "s", "kwarg": map[string]any{"a": 1}}, []string{`"kwarg"`}},
		{"send timeout", map[string]any{"command": "send", "target": "g", "selector": "s", "timeout": 5}, []string{`"timeout"`}},
		{"eval with a stray field", map[string]any{"command": "eval", "code": "1", "cod": "2"}, []string{`"cod"`}},
		{"history limits", map[string]any{"command": "history", "target": "g", "limits": 2}, []string{`"limits"`}},
		{"persona_set temprature", map[string]any{"command": "persona_set", "name": "BRICK", "temprature": 0.5}, []string{`"temprature"`}},
		{"catalog_search metas", map[string]any{"command": "catalog_search", "query": "q", "metas": map[string]any{}}, []string{`"metas"`}},
		{"pack compat", map[string]any{"command": "pack", "compat": true}, []string{`"compat"`}},
		{"audit_list limt", map[string]any{"command": "audit_list", "limt": 1}, []string{`"limt"`}},
		{"proposal_reject reasn", map[string]any{"command": "proposal_reject", "proposal": "1.1", "reasn": "no"}, []string{`"reasn"`}},
		{"ping with an argument", map[string]any{"command": "ping", "x": 1}, []string{`"x"`, "ping takes no arguments"}},
		{"several, sorted", map[string]any{"command": "stats", "b": 1, "a": 2}, []string{`unknown fields "a", "b"`}},
		{"a long name clipped", map[string]any{"command": "stats", strings.Repeat("k", 500): 1}, []string{`"` + strings.Repeat("k", 40) + `…"`}},
	} {
		tc.req["id"] = tc.name
		r := req(t, d, tc.req)
		e, _ := r["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if r["id"] != tc.name || errKind(r) != command.KindBadRequest {
			t.Errorf("%s: got %v, want bad_request with the id", tc.name, r)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: message %q does not say %q", tc.name, msg, w)
			}
		}
		if len(msg) > 600 {
			t.Errorf("%s: message of %d bytes", tc.name, len(msg))
		}
	}
	many := map[string]any{"id": 1, "command": "stats"}
	for i := range 50 {
		many[strings.Repeat("f", i+1)] = i
	}
	r := req(t, d, many)
	if e, _ := r["error"].(map[string]any); !strings.Contains(e["message"].(string), "and 42 more") {
		t.Errorf("50 unknown fields: %v", r)
	}
	// Every field of a command still reaches it: the fake service answers
	// (initiate_cognitive_cycle with no_mind).
	for _, ok := range []map[string]any{
		{"id": 1, "command": "send", "target": "g", "selector": "s", "args": []any{1}, "kwargs": map[string]any{"a": 1}},
		{"id": 2, "command": "eval", "code": "1"},
		{"id": 3, "command": "history", "target": "g", "limit": 0},
		{"id": 4, "command": "log", "limit": 1, "before": "00000000000000ff"},
		{"id": 5, "command": "inspect", "target": "g"},
		{"id": 6, "command": "initiate_cognitive_cycle", "target_oid": "g", "mission_brief": "learn"},
	} {
		if r := req(t, d, ok); r["ok"] != true && errKind(r) != command.KindNoMind {
			t.Errorf("%v: got %v", ok, r)
		}
	}
}
