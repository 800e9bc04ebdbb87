package command_test

import (
	"context"
	"errors"
	"fmt"
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
		{"not understood", &vm.NotUnderstoodError{Receiver: "oid:3 (genesis)", Selector: "x"}, `oid:3 (genesis) does not understand "x", and no mind is configured to learn it`},
		{"undo", &store.UndoError{TID: 0x10, Changed: map[store.OID]store.TID{3: 0x11}}, "cannot undo 0000000000000010: later transactions changed oid:3 (changed by 0000000000000011)"},
		{"a name in quotes stays", errors.New(`key "vm: x" not in dict`), `key "vm: x" not in dict`},
		{"remote", &command.Error{Kind: command.KindInternal, Message: "as sent"}, "as sent"},
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
