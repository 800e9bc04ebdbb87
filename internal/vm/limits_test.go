package vm_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
	"batos/internal/vm"
)

// setMethod installs a method on genesis in its own transaction.
func setMethod(t *testing.T, db *image.DB, m *vm.VM, name, source string) {
	t.Helper()
	code := "genesis." + name + " = method(" + quote(source) + ")"
	err := db.Update(ctx, func(tx *image.Tx) error {
		_, err := m.Eval(ctx, tx, code, vm.GlobalsOf(rootGlobals(t, db)))
		return err
	})
	if err != nil {
		t.Fatalf("install %s: %v", name, err)
	}
}

func quote(s string) string { return `"""` + strings.ReplaceAll(s, `"""`, `\"\"\"`) + `"""` }

func genesisOID(t *testing.T, db *image.DB) store.OID { return rootGlobals(t, db)["genesis"] }

// sendUpdate sends in its own Update and returns the error.
func sendUpdate(t *testing.T, db *image.DB, m *vm.VM, selector string, args ...image.Value) (vm.Result, error) {
	t.Helper()
	var res vm.Result
	err := db.Update(ctx, func(tx *image.Tx) error {
		var err error
		res, err = m.Send(ctx, tx, genesisOID(t, db), selector, args, nil)
		return err
	})
	return res, err
}

// TestHostileMethods: each runaway method ends with the limit it hit, its
// transaction rolled back, and the VM still serving.
func TestHostileMethods(t *testing.T) {
	cases := []struct {
		name, source string
		opts         vm.Options
		limit        vm.Limit
		where        string
	}{
		{"infinite loop", "def spin(self):\n    self.touched = True\n    while True:\n        pass", vm.Options{MaxSteps: 1_000_000}, vm.StepLimit, "spin"},
		{"slow loop against the clock", "def slow(self):\n    self.touched = True\n    while True:\n        pass", vm.Options{Timeout: 50 * time.Millisecond}, vm.TimeLimit, "slow"},
		{"recursion through self sends", "def deep(self, n):\n    self.touched = True\n    return self.deep(n + 1)", vm.Options{}, vm.DepthLimit, "deep"},
		{"recursion through send()", "def viasend(self, n):\n    self.touched = True\n    return send(self, 'viasend', n + 1)", vm.Options{}, vm.DepthLimit, "viasend"},
		{"string doubled until memory runs out", "def hog(self):\n    self.touched = True\n    s = 'x'\n    while True:\n        s = s + s", vm.Options{MaxMemory: 64 << 20}, vm.MemoryLimit, "hog"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := imagetest.Open(t, nil)
			m := vm.New(&tc.opts)
			name := tc.where
			setMethod(t, db, m, name, tc.source)
			before := db.Store().LastTID()
			var args []image.Value
			if strings.Contains(tc.source, ", n)") {
				args = []image.Value{image.Int(0)}
			}
			_, err := sendUpdate(t, db, m, name, args...)
			var le *vm.LimitError
			if !errors.As(err, &le) || le.Limit != tc.limit {
				t.Fatalf("got %v, want a %s error", err, tc.limit)
			}
			if !strings.Contains(err.Error(), tc.limit.String()+" exceeded") || !strings.Contains(err.Error(), "in "+name) {
				t.Errorf("error %q does not say which limit and where (in %s)", err, name)
			}
			if db.Store().LastTID() != before {
				t.Errorf("the failed send committed")
			}
			// The VM and the image are healthy: another send works.
			setMethod(t, db, m, "ok", "def ok(self):\n    return has_slot(self, 'touched')")
			res, err := sendUpdate(t, db, m, "ok")
			if err != nil || res.Repr != "False" {
				t.Errorf("after the limit: %v %q, want False (nothing of the runaway send kept)", err, res.Repr)
			}
		})
	}
	runtime.GC()
}

// TestDirectRecursionIsBounded: recursion that never goes through a send
// is stopped by Starlark's own stack limit, reported as the depth limit.
func TestDirectRecursionIsBounded(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(&vm.Options{Timeout: time.Second})
	setMethod(t, db, m, "inner", "def inner(self):\n    def f(n):\n        return f(n + 1)\n    return f(0)")
	_, err := sendUpdate(t, db, m, "inner")
	// Which limit comes first depends on the machine (under -race, the
	// clock): any of them, cleanly, is right.
	var le *vm.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want a limit error", err)
	}
	if n := strings.Count(err.Error(), "\n"); n > 40 {
		t.Errorf("backtrace of %d lines; runaway recursion should be shortened", n)
	}
}

func TestCancelledContextStopsExecution(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(&vm.Options{Timeout: time.Minute})
	setMethod(t, db, m, "spin", "def spin(self):\n    while True:\n        pass")
	cctx, cancel := contextWithTimeout(30 * time.Millisecond)
	defer cancel()
	err := db.Update(cctx, func(tx *image.Tx) error {
		_, err := m.Send(cctx, tx, genesisOID(t, db), "spin", nil, nil)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("got %v, want the context's deadline", err)
	}
}

// TestSharedStructureIsNotExpanded: a value that holds the same list
// many times over expands when it is converted to an image value (the
// image has no sharing); converting it for an eval's globals or for a
// slot is refused promptly with a limit error, before it is expanded.
func TestSharedStructureIsNotExpanded(t *testing.T) {
	wide := "a = [1]\nfor i in range(25):\n    a = [a, a]\n"
	cases := []struct {
		name, code string
		limit      vm.Limit
	}{
		{"eval globals", wide, vm.ReplyLimit},
		{"stored in a slot", wide + "genesis.wide = a", vm.MemoryLimit},
		{"stored in a container slot", "genesis.l = []\n" + wide + "genesis.l.append(a)", vm.MemoryLimit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := imagetest.Open(t, nil)
			m := vm.New(nil)
			var err error
			// Expanded, the value would be 2^25 lists: gigabytes.
			allocated := allocatedBy(func() { _, err = evalUpdate(t, db, m, tc.code) })
			var le *vm.LimitError
			if !errors.As(err, &le) || le.Limit != tc.limit {
				t.Fatalf("got %v, want a %s error", err, tc.limit)
			}
			if allocated > 256<<20 {
				t.Errorf("%d MiB allocated before the refusal; want it refused before the expansion", allocated>>20)
			}
		})
	}
	// Shared structure that fits is converted as ever.
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	mustEval(t, db, m, "a = [1]\nfor i in range(4):\n    a = [a, a]\ngenesis.w = a")
	want := "[[[[[1], [1]], [[1], [1]]], [[[1], [1]], [[1], [1]]]], [[[[1], [1]], [[1], [1]]], [[[1], [1]], [[1], [1]]]]]"
	if res := mustEval(t, db, m, "genesis.w"); res.Repr != want {
		t.Errorf("genesis.w: got %s, want %s", res.Repr, want)
	}
}
