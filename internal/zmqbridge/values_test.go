package zmqbridge_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/protocol"
	"batos/internal/store"
	"batos/internal/uvm/uvmtest"
	"batos/internal/vm"
	"batos/internal/zmqbridge"
)

// reprService answers every eval with a result that has no image value
// and the code as its repr, as vm makes for values it cannot store.
type reprService struct{ command.Service }

func (reprService) Eval(ctx context.Context, req command.EvalRequest) (vm.Result, error) {
	if req.Code == "None" {
		return vm.Result{Repr: "None"}, nil
	}
	return vm.Result{Repr: req.Code}, nil
}

// TestValuesWithoutAnImageForm: an answer that is no image value comes
// as {"$repr", "$type"}, never nil, and reads back as the result it was.
func TestValuesWithoutAnImageForm(t *testing.T) {
	_, addr, _ := startServer(t, reprService{})
	d := dealer(t, addr)
	c, err := zmqbridge.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	remote := protocol.NewRemote(c, 0)
	for _, tc := range []struct{ repr, typ string }{
		{"<method greet of oid:3>", "method"},
		{"<message frob not understood by oid:3>", "message"},
		{"<message ping to genesis>", "message"},
		{"<function f>", "function"},
		{"<function lambda>", "function"},
		{"<built-in function len>", "builtin"},
		{"<built-in method append of list value>", "builtin"},
		{"<primitive clock>", "primitive"},
		{"<system object clock>", "system"},
		{"set([1, 2])", "set"},
		{"1180591620717411303424", "int"},
		{"-1180591620717411303424", "int"},
		{"[1, <function f>]", "list"},
		{"(1, set([]))", "tuple"},
		{`{"f": <function f>}`, "dict"},
		{"something else", "value"},
	} {
		r := req(t, d, map[string]any{"id": 1, "command": "eval", "code": tc.repr})
		res, _ := r["result"].(map[string]any)
		want := map[string]any{"$repr": tc.repr, "$type": tc.typ}
		if diff := cmp.Diff(res["value"], any(want)); diff != "" {
			t.Errorf("%s: value (-got +want):\n%s", tc.repr, diff)
		}
		got, err := remote.Eval(t.Context(), command.EvalRequest{Code: tc.repr})
		if err != nil || got.Value != nil || got.Repr != tc.repr {
			t.Errorf("%s through Remote: got %#v, %v; want no value and the repr", tc.repr, got, err)
		}
	}
	r := req(t, d, map[string]any{"id": 1, "command": "eval", "code": "None"})
	if res, _ := r["result"].(map[string]any); res["value"] != nil {
		t.Errorf("None: got value %#v, want nil", res["value"])
	}
}

// TestImageAnswersOnTheWire: with a real image, each answer the protocol
// has no plain form for comes tagged, and plain values stay plain.
func TestImageAnswersOnTheWire(t *testing.T) {
	u := uvmtest.Open(t, nil)
	if _, err := u.Eval(t.Context(), `genesis.greet = method("def greet(self):\n    return 'hi'")`); err != nil {
		t.Fatal(err)
	}
	_, addr, _ := startServer(t, command.NewLocal(u, "tester"))
	d := dealer(t, addr)
	tagged := func(repr, typ string) any { return map[string]any{"$repr": repr, "$type": typ} }
	for _, tc := range []struct {
		code string
		want any
	}{
		{"None", nil},
		{"[1, None]", []any{int64(1), nil}},
		{"1 << 62", int64(1) << 62},
		{"lambda x: x", tagged("<function lambda>", "function")},
		{"len", tagged("<built-in function len>", "builtin")},
		{"set([1])", tagged("set([1])", "set")},
		{"1 << 70", tagged("1180591620717411303424", "int")},
		{"-(1 << 70)", tagged("-1180591620717411303424", "int")},
		{"[1, len]", tagged("[1, <built-in function len>]", "list")},
		{"genesis.greet", tagged("<method greet of "+oidOf(t, u, "genesis")+">", "method")},
	} {
		r := req(t, d, map[string]any{"id": tc.code, "command": "eval", "code": tc.code})
		res, ok := r["result"].(map[string]any)
		if !ok {
			t.Errorf("%s: got %v", tc.code, r)
			continue
		}
		if diff := cmp.Diff(res["value"], tc.want); diff != "" {
			t.Errorf("%s: value (-got +want):\n%s", tc.code, diff)
		}
	}
}

func oidOf(t *testing.T, u interface {
	Eval(context.Context, string) (vm.Result, error)
}, root string) string {
	t.Helper()
	res, err := u.Eval(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	ref, ok := res.Value.(image.Ref)
	if !ok {
		t.Fatalf("%s: got %#v, want a reference", root, res.Value)
	}
	return store.OID(ref).String()
}
