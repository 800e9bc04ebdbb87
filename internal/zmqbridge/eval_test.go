package zmqbridge_test

import (
	"strings"
	"testing"

	"batos/internal/command"
	"batos/internal/uvm/uvmtest"
)

// TestEvalLastExpression: over the bridge, an eval of statements whose
// last line is an expression answers that expression's value (as a REPL
// would); ending with a statement, it answers None.
func TestEvalLastExpression(t *testing.T) {
	_, addr, _ := startServer(t, command.NewLocal(uvmtest.Open(t, nil), ""))
	d := dealer(t, addr)
	cases := []struct {
		code  string
		value any
		repr  string
	}{
		{"x = 2\ny = x * 3\ny + 1", int64(7), "7"},
		{"genesis.k = 'v'\ngenesis.k", "v", `"v"`},
		{"z = 1", nil, "None"},
	}
	for i, tc := range cases {
		r := req(t, d, map[string]any{"id": int64(i + 1), "command": "eval", "code": tc.code})
		res, _ := r["result"].(map[string]any)
		if r["ok"] != true || res["value"] != tc.value || res["repr"] != tc.repr {
			t.Errorf("eval %q: got %v, want value %v, repr %s", tc.code, r, tc.value, tc.repr)
		}
	}
}

// TestSendDataSlotAndMissingRead: over the bridge, sending a data slot's
// name answers its value, as in Self, and reading a name nothing
// understands without calling it is a method_error, not a value.
func TestSendDataSlotAndMissingRead(t *testing.T) {
	_, addr, _ := startServer(t, command.NewLocal(uvmtest.Open(t, nil), ""))
	d := dealer(t, addr)
	r := req(t, d, map[string]any{"id": int64(1), "command": "send", "target": "genesis", "selector": "name"})
	if res, _ := r["result"].(map[string]any); r["ok"] != true || res["value"] != "genesis" {
		t.Errorf("send genesis name: got %v, want \"genesis\"", r)
	}
	r = req(t, d, map[string]any{"id": int64(2), "command": "eval", "code": "genesis.nosuch"})
	e, _ := r["error"].(map[string]any)
	if msg, _ := e["message"].(string); r["ok"] != false || e["kind"] != string(command.KindMethodError) || !strings.Contains(msg, "has no slot nosuch") {
		t.Errorf("eval genesis.nosuch: got %v, want a method_error saying genesis has no such slot", r)
	}
}
