package zmqbridge_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/command"
	"batos/internal/protocol"
	"batos/internal/uvm/uvmtest"
	"batos/internal/vm"
	"batos/internal/zmqbridge"
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

// TestEvalSession: a session through the bridge carries variables and
// functions as a local one does: the same inputs give the same answers,
// output and dropped names, errors included. A session that is no string,
// or too long, is bad_request.
func TestEvalSession(t *testing.T) {
	ctx := context.Background()
	local := command.NewLocal(uvmtest.Open(t, nil), "tester")
	_, addr, _ := startServer(t, local)
	c, err := zmqbridge.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	remote := protocol.NewRemote(c, os.Getpid())
	defer remote.Close()
	script := []string{
		"x = 40",
		"def twice(n):\n    return 2 * n\n",
		"twice(x) + 2",
		"s = set([1])\nprint(len(s))",
		"s",
		"x = 0\nfail('not saved')",
		"sq = lambda n: n * n\nsq(x)",
	}
	answers := func(svc command.Service, session string) []vm.Result {
		var out []vm.Result
		for _, code := range script {
			res, err := svc.Eval(ctx, command.EvalRequest{Code: code, Session: session})
			if err != nil {
				res = vm.Result{Repr: command.Message(err)}
			}
			out = append(out, vm.Result{Value: res.Value, Repr: res.Repr, Output: res.Output, Dropped: res.Dropped})
		}
		return out
	}
	got, want := answers(remote, "remote"), answers(local, "local")
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("a session (-remote +local):\n%s", diff)
	}
	if got[2].Repr != "82" || got[6].Repr != "1600" || !slices.Equal(got[3].Dropped, []string{"s"}) {
		t.Errorf("the session did not carry: %+v", got)
	}

	d := dealer(t, addr)
	for i, session := range []string{"", "wire"} {
		r := req(t, d, map[string]any{"id": int64(10 + i), "command": "eval", "code": "s = set([1])", "session": session})
		res, _ := r["result"].(map[string]any)
		dropped, has := res["dropped"]
		if want := session != ""; has != want || want && !cmp.Equal(dropped, []any{"s"}) {
			t.Errorf("session %q: got %v, want dropped [s] only with a session", session, r)
		}
	}
	for i, bad := range []any{int64(1), strings.Repeat("s", command.MaxSessionID+1)} {
		r := req(t, d, map[string]any{"id": int64(i + 1), "command": "eval", "code": "1", "session": bad})
		if e, _ := r["error"].(map[string]any); r["ok"] != false || e["kind"] != string(command.KindBadRequest) {
			t.Errorf("session %v: got %v, want bad_request", bad, r)
		}
	}
}

// TestEvalSelf: an eval's self names an object (a root name, a dotted
// path or an OID) bound as self in its code, as an outliner's evaluator
// binds the object it shows; a session never carries it.
func TestEvalSelf(t *testing.T) {
	u := uvmtest.Open(t, nil)
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	d := dealer(t, addr)
	req(t, d, map[string]any{"id": int64(1), "command": "eval", "code": "genesis.child = new(name = 'kid')"})
	for i, self := range []any{"genesis", "genesis.child", "oid:3", int64(3)} {
		r := req(t, d, map[string]any{"id": int64(10 + i), "command": "eval", "code": "self.name", "self": self, "session": "s"})
		res, _ := r["result"].(map[string]any)
		want := "genesis"
		if self == "genesis.child" {
			want = "kid"
		}
		if r["ok"] != true || res["value"] != want {
			t.Errorf("self %v: %v, want %q", self, r, want)
		}
	}
	r := req(t, d, map[string]any{"id": int64(20), "command": "eval", "code": "self", "session": "s"})
	if errKind(r) != command.KindMethodError {
		t.Errorf("a session carried self: %v", r)
	}
	r = req(t, d, map[string]any{"id": int64(21), "command": "eval", "code": "1", "self": "nobody"})
	if errKind(r) != command.KindNotFound {
		t.Errorf("self naming nothing: %v, want not_found", r)
	}
}

// TestMethodSetSyntaxPosition: a method source that does not parse is a
// bad_request carrying the line and column where the parser stopped, for
// an editor to mark.
func TestMethodSetSyntaxPosition(t *testing.T) {
	_, addr, _ := startServer(t, command.NewLocal(uvmtest.Open(t, nil), ""))
	d := dealer(t, addr)
	r := req(t, d, map[string]any{"id": int64(1), "command": "method_set", "target": "genesis", "name": "greet",
		"source": "def greet(self):\n    return 1 +\n"})
	e, _ := r["error"].(map[string]any)
	if errKind(r) != command.KindBadRequest || e["line"] != int64(2) || e["col"] == nil {
		t.Errorf("a method that does not parse: %v, want bad_request at line 2", r)
	}
}
