package command_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"batos/internal/command"
	"batos/internal/store"
	"batos/internal/uvm/uvmtest"
	"batos/internal/vm"
)

// TestMessage: what a client is shown has no Go package prefixes,
// wherever the wrapping put them; a remote error's message is shown as
// it came.
func TestMessage(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"a sentinel", store.ErrConflict, "write conflict"},
		{"wrapped", fmt.Errorf("commit: %w", store.ErrConflict), "commit: write conflict"},
		{"one prefix after another", &vm.Error{Msg: "store: object not found"}, "object not found"},
		{"not understood", &vm.NotUnderstoodError{Receiver: "oid:3 (genesis)", Selector: "x"}, `oid:3 (genesis) does not understand "x", and cannot learn it: no mind: no inference server has answered yet`},
		{"undo", &store.UndoError{TID: 0x10, Changed: map[store.OID]store.TID{3: 0x11}}, "cannot undo 0000000000000010: later transactions changed oid:3 (changed by 0000000000000011)"},
		{"a name in quotes stays", errors.New(`key "vm: x" not in dict`), `key "vm: x" not in dict`},
		{"remote", &command.Error{Kind: command.KindInternal, Message: "as sent"}, "as sent"},
		{"no mind", fmt.Errorf("cannot do it: %w", vm.ErrNoMind), "cannot do it: no mind: no inference server has answered yet"},
		{"no mind for a retry", &vm.NoMindError{Doing: "retry cycle 3"}, "cannot retry cycle 3: no mind: no inference server has answered yet"},
		{"no mind, a server asked", &vm.NoMindError{Doing: "warm personas", Why: "tried ollama at http://127.0.0.1:11434: connection refused"},
			"cannot warm personas: no mind: no inference server has answered yet (tried ollama at http://127.0.0.1:11434: connection refused)"},
		{"not understood, a server asked", &vm.NotUnderstoodError{Receiver: "oid:3", Selector: "x", Why: "connection refused"},
			`oid:3 does not understand "x", and cannot learn it: no mind: no inference server has answered yet (connection refused)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := command.Message(tc.err); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestUndoConflict: an undo that later transactions stand in the way of
// is a conflict naming them, and undoing the root's creation is a bad
// request.
func TestUndoConflict(t *testing.T) {
	ctx := context.Background()
	u := uvmtest.Open(t, nil)
	svc := command.NewLocal(u, "tester")
	for _, code := range []string{"genesis.x = 1", "genesis.x = 2"} {
		if _, err := svc.Eval(ctx, command.EvalRequest{Code: code}); err != nil {
			t.Fatal(err)
		}
	}
	txns, err := svc.Log(ctx, store.LogQuery{})
	if err != nil || len(txns) < 2 {
		t.Fatalf("log: %v, %v", txns, err)
	}
	_, err = svc.Undo(ctx, txns[1].TID)
	if command.KindOf(err) != command.KindConflict || !strings.Contains(command.Message(err), "later transactions changed") || strings.Contains(command.Message(err), "store:") {
		t.Errorf("undo of an overwritten change: got %s %q, want a conflict naming the later transaction", command.KindOf(err), command.Message(err))
	}
	_, err = svc.Undo(ctx, txns[len(txns)-1].TID)
	if command.KindOf(err) != command.KindBadRequest {
		t.Errorf("undo of the root's creation: got %s %v, want bad_request", command.KindOf(err), err)
	}
}

// TestSyntaxErrorPosition: a syntax error in eval code carries its line
// and column, in the message and as fields.
func TestSyntaxErrorPosition(t *testing.T) {
	ctx := context.Background()
	svc := command.NewLocal(uvmtest.Open(t, nil), "tester")
	cases := []struct {
		code      string
		line, col int
		msg       string
	}{
		{"x = [", 1, 6, "syntax error at line 1, column 6: got end of file, want primary expression"},
		{"x = 1\ny = 1 +* 2", 2, 8, "syntax error at line 2, column 8: got '*', want primary expression"},
		{"a = 1\nb = undefined_name", 2, 5, "syntax error at line 2, column 5: undefined: undefined_name"},
	}
	for _, tc := range cases {
		_, err := svc.Eval(ctx, command.EvalRequest{Code: tc.code})
		line, col := command.PositionOf(err)
		if line != tc.line || col != tc.col || command.Message(err) != tc.msg {
			t.Errorf("eval %q: got %d:%d %q, want %d:%d %q", tc.code, line, col, command.Message(err), tc.line, tc.col, tc.msg)
		}
	}
	remote := &command.Error{Kind: command.KindMethodError, Message: "m", Line: 4, Col: 2}
	if line, col := command.PositionOf(remote); line != 4 || col != 2 {
		t.Errorf("a remote error's position: got %d:%d, want 4:2", line, col)
	}
}

// TestClientMessages: a failure reads the same through the bridge and
// run here, in words written for the client: no Go package prefixes, Go
// slices or operations ("stat"), one wording for a missing mind whatever
// needed it, and hostile arguments (empty names, invalid UTF-8, values
// over the store's limits) refused by what they are.
func TestClientMessages(t *testing.T) {
	ctx := context.Background()
	_, local := openLocal(t)
	_, c := serve(t, local)
	const noMind = "no mind: no inference server has answered yet"
	bigCode := `genesis.blob = "x" * (70 << 20)`
	for _, tt := range []struct {
		name    string
		command string
		args    map[string]any
		local   func() error
		kind    command.Kind
		want    string
	}{
		{"not understood", "send", map[string]any{"target": "genesis", "selector": "nope"},
			func() error {
				_, err := local.Send(ctx, command.SendRequest{Target: "genesis", Selector: "nope"})
				return err
			}, command.KindNoMind, `oid:3 (genesis) does not understand "nope", and cannot learn it: ` + noMind},
		{"cycle without a mind", "initiate_cognitive_cycle", map[string]any{"target_oid": "genesis", "mission_brief": "learn"},
			func() error { _, err := local.InitiateCycle(ctx, "genesis", "learn"); return err },
			command.KindNoMind, `cannot start a cycle for oid:3 ("learn"): ` + noMind},
		{"warm without a mind", "persona_warm", nil,
			func() error { _, err := local.WarmPersonas(ctx, nil); return err },
			command.KindNoMind, "cannot warm personas: " + noMind},
		{"audit without a mind", "audit_run", nil,
			func() error { _, err := local.AuditRun(ctx); return err },
			command.KindNoMind, "cannot run an audit (it asks ALFRED): " + noMind},
		{"unknown persona", "persona_show", map[string]any{"name": "NOPE"},
			func() error { _, err := local.Personas(ctx, "NOPE"); return err },
			command.KindNotFound, `no such persona: "NOPE" (have BRICK, ROBIN, BABS, ALFRED)`},
		{"missing adapter", "persona_set", map[string]any{"name": "BRICK", "adapter": "/nonexistent.gguf"},
			func() error {
				_, err := local.EditPersona(ctx, "BRICK", command.PersonaEdit{Adapter: "/nonexistent.gguf"})
				return err
			}, command.KindBadRequest, "adapter /nonexistent.gguf: no such file"},
		{"missing catalog path", "catalog_add", map[string]any{"paths": []any{"/nonexistent"}},
			func() error {
				_, err := local.CatalogAdd(ctx, command.CatalogAddRequest{Paths: []string{"/nonexistent"}})
				return err
			}, command.KindBadRequest, "path /nonexistent: no such file"},
		{"method without a name", "method_set", map[string]any{"target": "genesis", "name": "", "source": "def x(self):\n    return 1"},
			func() error {
				_, err := local.SetMethod(ctx, command.MethodRequest{Target: "genesis", Source: "def x(self):\n    return 1"})
				return err
			}, command.KindBadRequest, "bad request: a method needs a name"},
		{"revert without a name", "method_revert", map[string]any{"target": "genesis", "name": ""},
			func() error { _, err := local.RevertMethod(ctx, "genesis", ""); return err },
			command.KindBadRequest, "bad request: a method needs a name"},
		{"code not UTF-8", "eval", map[string]any{"code": "'a\xffb'"},
			func() error { _, err := local.Eval(ctx, command.EvalRequest{Code: "'a\xffb'"}); return err },
			command.KindBadRequest, `bad request: "code" is not valid UTF-8`},
		{"selector not UTF-8", "send", map[string]any{"target": "genesis", "selector": "x\xc3"},
			func() error {
				_, err := local.Send(ctx, command.SendRequest{Target: "genesis", Selector: "x\xc3"})
				return err
			}, command.KindBadRequest, `bad request: "selector" is not valid UTF-8`},
		{"a value over a record", "eval", map[string]any{"code": bigCode},
			func() error { _, err := local.Eval(ctx, command.EvalRequest{Code: bigCode}); return err },
			command.KindLimit, `oid:3 (genesis), slot "blob", is too large to store: it encodes to at least 73400351 bytes, and an object's record holds at most 67108864 bytes (64 MiB)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, rerr := c.Call(ctx, tt.command, tt.args)
			lerr := tt.local()
			if got := command.KindOf(rerr); got != tt.kind || rerr == nil || rerr.Error() != tt.want {
				t.Errorf("through the bridge: got %s %q, want %s %q", got, rerr, tt.kind, tt.want)
			}
			if lerr == nil {
				t.Fatalf("here: got no error, want %s %q", tt.kind, tt.want)
			}
			if got := command.KindOf(lerr); got != tt.kind || command.Message(lerr) != tt.want {
				t.Errorf("here: got %s %q, want %s %q", got, command.Message(lerr), tt.kind, tt.want)
			}
		})
	}
}

// TestModelImportMissingFile: a model file that is not there is named
// as the model, without Go's operation.
func TestModelImportMissingFile(t *testing.T) {
	_, local := openLocal(t)
	_, err := local.ImportModel(context.Background(), command.ModelImport{Path: "/nonexistent.gguf"})
	if want := "model /nonexistent.gguf: no such file"; command.KindOf(err) != command.KindBadRequest || command.Message(err) != want || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %s %v, want bad_request %q matching fs.ErrNotExist", command.KindOf(err), err, want)
	}
}
