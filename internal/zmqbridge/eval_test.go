package zmqbridge_test

import (
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
