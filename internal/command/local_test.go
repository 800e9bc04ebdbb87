package command_test

import (
	"context"
	"path/filepath"
	"testing"

	"batos/internal/command"
	"batos/internal/gguf/gguftest"
	"batos/internal/store"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
)

// TestLocalMethods: a method's source is checked before anything is
// stored, an install and an identical one are told apart, and a revert
// with nothing to restore is a bad request that changes nothing.
func TestLocalMethods(t *testing.T) {
	ctx := context.Background()
	u := uvmtest.Open(t, nil)
	svc := command.NewLocal(u, "tester")
	before := u.DB().Store().LastTID()
	for _, src := range []string{"def greet(self):\n    return 'hi'\ndef other(self):\n    pass", "def greet(:", "def wrong(self):\n    pass"} {
		if _, err := svc.SetMethod(ctx, command.MethodRequest{Target: "genesis", Name: "greet", Source: src}); command.KindOf(err) != command.KindBadRequest {
			t.Errorf("source %q: %v, want bad_request", src, err)
		}
	}
	if u.DB().Store().LastTID() != before {
		t.Fatal("a refused method committed something")
	}
	src := "def greet(self):\n    return 'hi'"
	c, err := svc.SetMethod(ctx, command.MethodRequest{Target: "genesis", Name: "greet", Source: src, From: "greet.star"})
	if err != nil || c.TID == 0 {
		t.Fatalf("install: %+v, %v", c, err)
	}
	if again, err := svc.SetMethod(ctx, command.MethodRequest{Target: "genesis", Name: "greet", Source: src}); err != nil || again.TID != 0 {
		t.Errorf("the same source again: %+v, %v, want no transaction", again, err)
	}
	res, err := svc.Send(ctx, command.SendRequest{Target: "genesis", Selector: "greet"})
	if err != nil || res.Repr != `"hi"` {
		t.Errorf("send greet: %s, %v", res.Repr, err)
	}
	if _, err := svc.RevertMethod(ctx, "genesis", "greet"); command.KindOf(err) != command.KindBadRequest {
		t.Errorf("revert of a method no cycle installed: %v, want bad_request", err)
	}
	if _, err := svc.SetMethod(ctx, command.MethodRequest{Target: "nobody", Name: "greet", Source: src}); command.KindOf(err) != command.KindNotFound {
		t.Errorf("unknown target: %v, want not_found", err)
	}
}

// TestLocalUndoAndHistory: an undo answers what it undid; the history of
// an object deleted by that undo is still read by its OID.
func TestLocalUndoAndHistory(t *testing.T) {
	ctx := context.Background()
	u := uvmtest.Open(t, nil)
	svc := command.NewLocal(u, "tester")
	if _, err := svc.Eval(ctx, command.EvalRequest{Code: "genesis.child = new(name='kid')"}); err != nil {
		t.Fatal(err)
	}
	txns, err := svc.Log(ctx, store.LogQuery{Limit: 1})
	if err != nil || len(txns) != 1 {
		t.Fatalf("log: %v, %v", txns, err)
	}
	view, err := svc.Inspect(ctx, "genesis")
	if err != nil {
		t.Fatal(err)
	}
	var child string
	for _, s := range view.Own {
		if s.Name == "child" {
			child = s.Repr
		}
	}
	undone, err := svc.Undo(ctx, txns[0].TID)
	if err != nil || undone.Undone != txns[0].TID || undone.TID == 0 || undone.Objects != len(txns[0].OIDs) {
		t.Fatalf("undo: %+v, %v", undone, err)
	}
	oid := txns[0].OIDs[len(txns[0].OIDs)-1]
	revs, err := svc.History(ctx, oid.String(), 0)
	if err != nil || len(revs) == 0 {
		t.Fatalf("history of %s (%s) after the undo: %v, %v", oid, child, revs, err)
	}
	if _, err := svc.History(ctx, "nobody", 0); command.KindOf(err) != command.KindNotFound {
		t.Errorf("history of an unknown name: %v, want not_found", err)
	}
}

// TestLocalCyclesWithoutMind: without a mind the cycle commands that read
// work, and those that need one say so.
func TestLocalCyclesWithoutMind(t *testing.T) {
	ctx := context.Background()
	u := uvmtest.Open(t, nil)
	svc := command.NewLocal(u, "")
	if views, err := svc.ListCycles(ctx, 0); err != nil || len(views) != 0 {
		t.Errorf("list: %v, %v", views, err)
	}
	if _, err := svc.ShowCycle(ctx, 1); command.KindOf(err) != command.KindNotFound {
		t.Errorf("show of no cycle: %v, want not_found", err)
	}
	if _, err := svc.InitiateCycle(ctx, "genesis", "learn to greet"); command.KindOf(err) != command.KindNoMind {
		t.Errorf("initiate without a mind: %v, want no_mind", err)
	}
	if _, err := svc.RetryCycle(ctx, 1); command.KindOf(err) != command.KindNotFound {
		t.Errorf("retry of no cycle: %v, want not_found", err)
	}
}

// TestCommitsCarryTheUser: what a user's commands commit is logged as
// that user, whichever command it was: a model import and a catalog add
// as much as a catalog remove or a persona edit.
func TestCommitsCarryTheUser(t *testing.T) {
	ctx := context.Background()
	u, _, err := uvm.Open(ctx, filepath.Join(t.TempDir(), "img"), &uvm.Options{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	svc := command.NewLocal(u, "alice")
	role := "tester"
	steps := []func() error{
		func() error {
			_, err := svc.ImportModel(ctx, command.ModelImport{Path: writeFile(t, "tiny.gguf", gguftest.TinyLlama(5))})
			return err
		},
		func() error {
			_, err := svc.CatalogAdd(ctx, command.CatalogAddRequest{Text: "Knots bind.", Name: "notes/knots"})
			return err
		},
		func() error { _, err := svc.CatalogRemove(ctx, "notes/knots"); return err },
		func() error { _, err := svc.EditPersona(ctx, "BRICK", command.PersonaEdit{Role: &role}); return err },
	}
	for i, step := range steps {
		before := u.DB().Store().LastTID()
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		txns, err := svc.Log(ctx, store.LogQuery{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range txns {
			if tx.TID > before && tx.User != "alice" {
				t.Errorf("step %d: %s (%s) logged as %q, want alice", i, tx.TID, tx.Description, tx.User)
			}
		}
	}
}
