package vm_test

import (
	"testing"

	"batos/internal/image/imagetest"
	"batos/internal/vm"
)

// TestHostileSelfContainingValues: a value that contains itself prints
// with [...], and a method may return one: the caller gets its repr and
// no value. Storing one is refused (testdata/selfref.star).
func TestHostileSelfContainingValues(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	res := mustEval(t, db, m, "l = [1]\nl.append(l)\nprint(l)")
	if res.Output != "[1, [...]]\n" {
		t.Errorf("print of a list containing itself: %q", res.Output)
	}
	setMethod(t, db, m, "loop", "def loop(self):\n    l = [1]\n    l.append(l)\n    return l")
	res, err := sendUpdate(t, db, m, "loop")
	if err != nil || res.Value != nil || res.Repr != "[1, [...]]" {
		t.Errorf("returning a list containing itself: %v %v %q, want no value and its repr", err, res.Value, res.Repr)
	}
}

// TestHostileReturnedClosure: a method may return a function; the caller
// gets its repr and no value and may call it in the same execution.
// Storing it is refused (testdata/closures.star).
func TestHostileReturnedClosure(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	setMethod(t, db, m, "counter", "def counter(self):\n    n = [0]\n    def inc():\n        n[0] += 1\n        return n[0]\n    return inc")
	res, err := sendUpdate(t, db, m, "counter")
	if err != nil || res.Value != nil || res.Repr != "<function inc>" {
		t.Errorf("send counter: %v %v %q, want no value and <function inc>", err, res.Value, res.Repr)
	}
	if res := mustEval(t, db, m, "f = genesis.counter()\nf()\nprint(f())"); res.Output != "2\n" || len(res.Dropped) != 1 || res.Dropped[0] != "f" {
		t.Errorf("calling the closure in the same execution: output %q, dropped %v", res.Output, res.Dropped)
	}
}
