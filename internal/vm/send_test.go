package vm_test

import (
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/vm"
)

// TestSendDataSlot: as in Self, sending a data slot's name answers its
// value, own or inherited, at the top and through send(); it takes no
// arguments.
func TestSendDataSlot(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	mustEval(t, db, m, "genesis.colour = 'blue'\ngenesis.sizes = [1, 2]\nroot.kid = new(genesis)")
	res, err := sendUpdate(t, db, m, "name")
	if err != nil || res.Value != image.String("genesis") {
		t.Errorf("send genesis name: got %v, %v, want \"genesis\"", res.Value, err)
	}
	if res, err := sendUpdate(t, db, m, "sizes"); err != nil || res.Repr != "[1, 2]" {
		t.Errorf("send genesis sizes: got %s, %v, want [1, 2]", res.Repr, err)
	}
	if _, err := sendUpdate(t, db, m, "name", image.Int(1)); err == nil || !strings.Contains(err.Error(), "slot name holds a string, not a method: sending it takes no arguments") {
		t.Errorf("send genesis name 1: got %v, want an error saying a data slot takes no arguments", err)
	}
	res = mustEval(t, db, m, "[send(genesis, 'colour'), send(kid, 'colour'), send(genesis, 'name')]")
	if res.Repr != `["blue", "blue", "genesis"]` {
		t.Errorf("send() of data slots: got %s", res.Repr)
	}
}

// TestReadNotUnderstood: reading a name nothing in the lineage has, with
// no call, is an error, in eval and in a method; getattr with a default,
// hasattr and has_slot still answer; a call of the name still goes to
// the doesNotUnderstand handler, whatever the receiver's guarded names.
func TestReadNotUnderstood(t *testing.T) {
	db := imagetest.Open(t, nil)
	h := &recordingHandler{}
	m := vm.New(&vm.Options{Handler: h})
	for _, code := range []string{"genesis.nosuch", "x = genesis.nosuch", "[genesis.nosuch]", "genesis.join", "(genesis.nosuch)(1)"} {
		_, err := evalUpdate(t, db, m, code)
		if err == nil || !strings.Contains(err.Error(), "has no slot ") || !strings.Contains(err.Error(), "only a call") {
			t.Errorf("eval %q: got %v, want an error saying genesis has no such slot", code, err)
		}
	}
	setMethod(t, db, m, "peek", "def peek(self):\n    return self.missing")
	if _, err := sendUpdate(t, db, m, "peek"); err == nil || !strings.Contains(err.Error(), "has no slot missing") {
		t.Errorf("a method reading self.missing: got %v, want an error", err)
	}
	res := mustEval(t, db, m, "[getattr(genesis, 'nosuch', 7), hasattr(genesis, 'nosuch'), hasattr(genesis, 'name'), has_slot(genesis, 'nosuch'), getattr(genesis, 'name')]")
	if res.Repr != `[7, False, True, False, "genesis"]` {
		t.Errorf("getattr, hasattr, has_slot: got %s", res.Repr)
	}
	if len(h.msgs) != 0 {
		t.Fatalf("reads asked the handler %d times", len(h.msgs))
	}
	res = mustEval(t, db, m, "[genesis.nosuch(1), genesis.join('-'), send(genesis, 'other')]")
	if res.Repr != `["learned nosuch", "learned join", "learned other"]` || len(h.msgs) != 3 {
		t.Errorf("calls of not-understood names: got %s, %d handler calls", res.Repr, len(h.msgs))
	}
	if res, err := sendUpdate(t, db, m, "top_level"); err != nil || res.Repr != `"learned top_level"` {
		t.Errorf("top-level send: got %s, %v", res.Repr, err)
	}
}

// TestCallsOfOtherValues: method calls on Starlark's own values are
// unchanged, their errors and spelling hints included.
func TestCallsOfOtherValues(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	res := mustEval(t, db, m, "l = []\nl.append('a,b'.split(','))\n{'k': 1}.get('k'), l, '-'.join(['x', 'y']), 'q'.upper()")
	if res.Repr != `(1, [["a", "b"]], "x-y", "Q")` {
		t.Errorf("got %s", res.Repr)
	}
	_, err := evalUpdate(t, db, m, "'abc'.uper()")
	if err == nil || !strings.Contains(err.Error(), "string has no .uper field or method (did you mean .upper?)") || strings.Contains(err.Error(), "attr.star") {
		t.Errorf("'abc'.uper(): got %v, want Starlark's error with its hint", err)
	}
	_, err = evalUpdate(t, db, m, "None.foo()")
	if err == nil || !strings.Contains(err.Error(), "NoneType has no .foo field or method") {
		t.Errorf("None.foo(): got %v", err)
	}
}
