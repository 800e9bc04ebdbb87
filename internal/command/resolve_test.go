package command_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"batos/internal/command"
	"batos/internal/store"
	"batos/internal/uvm/uvmtest"
)

// commonPrefix is the longest prefix a and b share.
func commonPrefix(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return a[:i]
}

// TestUndoByTIDPrefix: Undo takes the first digits of a TID, as typed
// from the log; a prefix that begins several TIDs lists them and undoes
// nothing, one that begins none is not_found.
func TestUndoByTIDPrefix(t *testing.T) {
	ctx := context.Background()
	u := uvmtest.Open(t, nil)
	svc := command.NewLocal(u, "tester")
	for _, code := range []string{"genesis.a = 1", "genesis.b = 2"} {
		if _, err := svc.Eval(ctx, command.EvalRequest{Code: code}); err != nil {
			t.Fatal(err)
		}
	}
	txns, err := svc.Log(ctx, store.LogQuery{Limit: 2})
	if err != nil || len(txns) != 2 {
		t.Fatalf("log: %v, %v", txns, err)
	}
	newer, older := txns[0].TID.String(), txns[1].TID.String()
	shared := commonPrefix(newer, older)
	last := u.DB().Store().LastTID()

	_, err = command.ResolveTID(ctx, svc, shared)
	var amb *command.AmbiguousTIDError
	if !errors.As(err, &amb) || command.KindOf(err) != command.KindBadRequest || !strings.Contains(err.Error(), newer) || !strings.Contains(err.Error(), older) {
		t.Fatalf("undo %s: %v, want a bad_request listing %s and %s", shared, err, newer, older)
	}
	if u.DB().Store().LastTID() != last {
		t.Fatal("an ambiguous prefix committed something")
	}

	unique := newer[:len(shared)+1]
	tid, err := command.ResolveTID(ctx, svc, unique)
	if err != nil {
		t.Fatal(err)
	}
	undone, err := svc.Undo(ctx, tid)
	if err != nil || undone.Undone != txns[0].TID {
		t.Fatalf("undo %s: %+v, %v, want %s undone", unique, undone, err, newer)
	}

	// no TID begins 2 before 2043
	if _, err := command.ResolveTID(ctx, svc, "2"); command.KindOf(err) != command.KindNotFound || !strings.Contains(err.Error(), "begins 2") {
		t.Errorf("undo 2: %v, want not_found", err)
	}
	// All 16 digits are taken as they are, never as a prefix, leading
	// zeros included.
	if tid, err := command.ResolveTID(ctx, svc, "0000000000000001"); err != nil || tid != 1 {
		t.Errorf("ResolveTID of 16 digits: %v %v, want 1", tid, err)
	}
	if _, err := svc.Undo(ctx, txns[0].TID+1); command.KindOf(err) != command.KindNotFound {
		t.Errorf("undo of a TID no transaction has: %v, want not_found", err)
	}
}

// TestHistoryByPath: History takes a root name or a dotted path through
// slots holding objects.
func TestHistoryByPath(t *testing.T) {
	ctx := context.Background()
	u := uvmtest.Open(t, nil)
	svc := command.NewLocal(u, "tester")
	if _, err := svc.Eval(ctx, command.EvalRequest{Code: "genesis.child = new(name='kid')\ngenesis.child.toy = new(name='ball')\ngenesis.n = 1"}); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"genesis", "genesis.child", "genesis.child.toy"} {
		if revs, err := svc.History(ctx, target, 0); err != nil || len(revs) == 0 {
			t.Errorf("history %s: %v, %v", target, revs, err)
		}
	}
	for target, want := range map[string]string{"genesis.nobody": "no slot nobody", "genesis.n": "holds no object", "nobody.child": "nobody"} {
		if _, err := svc.History(ctx, target, 0); command.KindOf(err) != command.KindNotFound || !strings.Contains(err.Error(), want) {
			t.Errorf("history %s: %v, want not_found saying %q", target, err, want)
		}
	}
}
