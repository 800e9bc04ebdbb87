package vm_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
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
			// The memory guard is what is tested: a loaded machine (the
			// whole suite under -race) must not reach the time limit first.
			m := vm.New(&vm.Options{Timeout: time.Minute})
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

// childEnv marks a test binary re-executed to run one dangerous test on
// its own, so a crash or a hang fails that test instead of the run.
const childEnv = "BATOS_VM_HOSTILE_CHILD"

// inChild reports whether this process is the child running t.
func inChild(t *testing.T) bool { return os.Getenv(childEnv) == t.Name() }

// runChild re-executes the test binary to run t alone, kills it after
// limit, and returns its output and whether it exited by itself with
// status 0.
func runChild(t *testing.T, limit time.Duration) (string, bool) {
	t.Helper()
	cctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(cctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if cctx.Err() != nil {
		return string(out), false
	}
	return string(out), err == nil
}

// tail keeps the last n bytes of s, for messages, or from a Go runtime
// crash its first line.
func tail(s string, n int) string {
	if i := strings.Index(s, "fatal error:"); i >= 0 {
		s = s[i:]
		if j := strings.IndexByte(s, '\n'); j >= 0 {
			return s[:j]
		}
	}
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// TestHostileJSONDecodeDeepNesting: json.decode recurses once per level of
// nesting with no limit, so one call on a 10 MB string of brackets grows
// the goroutine stack past Go's 1 GB maximum: "fatal error: stack
// overflow", which no recover can catch, kills the whole process.
func TestHostileJSONDecodeDeepNesting(t *testing.T) {
	if inChild(t) {
		db := imagetest.Open(t, nil)
		m := vm.New(nil)
		setMethod(t, db, m, "decode_deep", "def decode_deep(self):\n    n = 5000000\n    return len(json.decode('[' * n + ']' * n))")
		_, err := sendUpdate(t, db, m, "decode_deep")
		fmt.Printf("CHILD-DONE err=%v\n", err != nil)
		return
	}
	t.Parallel()
	out, ok := runChild(t, 30*time.Second)
	if !ok || !strings.Contains(out, "CHILD-DONE err=true") {
		t.Errorf("json.decode of deeply nested input killed the process, want an error:\n%s", tail(out, 600))
	}
}

// slowPrimitives returns a VM whose primitive "slow" sleeps d (ignoring
// ctx) after setting genesis.touched, and whose "wait" blocks until ctx
// ends or fallback passes.
func slowPrimitives(opts vm.Options, d, fallback time.Duration) *vm.VM {
	opts.Primitives = map[string]vm.Primitive{
		"slow": func(ctx context.Context, tx *image.Tx, self image.Ref, args []image.Value) (image.Value, error) {
			o, err := tx.Deref(self)
			if err != nil {
				return nil, err
			}
			if err := o.Set("touched", image.Bool(true)); err != nil {
				return nil, err
			}
			time.Sleep(d)
			return image.String("done"), nil
		},
		"wait": func(ctx context.Context, tx *image.Tx, self image.Ref, args []image.Value) (image.Value, error) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(fallback):
				return image.String("fallback"), nil
			}
		},
	}
	return vm.New(&opts)
}

// TestHostileSendToPrimitiveIgnoresTimeLimit: a send whose selector names
// a primitive runs no Starlark step after the watchdog trips, and finish
// never looks at the tripped limit: the send succeeds and commits though
// it ran 10 times its time limit.
func TestHostileSendToPrimitiveIgnoresTimeLimit(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := slowPrimitives(vm.Options{Timeout: 20 * time.Millisecond}, 200*time.Millisecond, 0)
	setGenesisSlot(t, db, "slow", image.Primitive{Name: "slow"})
	before := db.Store().LastTID()
	_, err := sendUpdate(t, db, m, "slow")
	var le *vm.LimitError
	if !errors.As(err, &le) || le.Limit != vm.TimeLimit {
		t.Errorf("a primitive that ran 200ms under a 20ms limit: got %v, want a time limit error", err)
	}
	if db.Store().LastTID() != before {
		t.Errorf("the send that overran its time limit committed")
	}
}

// TestHostileLimitsDoNotReachGoCode: primitives and the doesNotUnderstand
// handler get the caller's ctx, which the time limit never cancels, so a
// primitive or a mind waiting on ctx runs on past the limit until it
// gives up by itself.
func TestHostileLimitsDoNotReachGoCode(t *testing.T) {
	cases := []struct {
		name, source string
	}{
		{"primitive", "def viaprim(self):\n    self.wait()\n    return 1"},
		{"doesNotUnderstand handler", "def viaprim(self):\n    self.nobody_knows()\n    return 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := imagetest.Open(t, nil)
			opts := vm.Options{Timeout: 30 * time.Millisecond}
			if strings.Contains(tc.name, "handler") {
				opts.Handler = waitingHandler{fallback: time.Second}
			}
			m := slowPrimitives(opts, 0, time.Second)
			setGenesisSlot(t, db, "wait", image.Primitive{Name: "wait"})
			setMethod(t, db, m, "viaprim", tc.source)
			start := time.Now()
			_, err := sendUpdate(t, db, m, "viaprim")
			took := time.Since(start)
			var le *vm.LimitError
			if !errors.As(err, &le) || le.Limit != vm.TimeLimit {
				t.Errorf("got %v, want a time limit error", err)
			}
			if took > 500*time.Millisecond {
				t.Errorf("the send took %v under a 30ms limit: the limit never cancelled the ctx the Go code waits on", took.Round(time.Millisecond))
			}
		})
	}
}

type waitingHandler struct{ fallback time.Duration }

func (h waitingHandler) DoesNotUnderstand(ctx context.Context, tx *image.Tx, msg *vm.Message) (image.Value, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(h.fallback):
		return image.String("learned"), nil
	}
}

// TestHostileMutualRecursionThroughSends: two methods sending to each
// other forever hit the call-depth limit, named with where, and roll back.
func TestHostileMutualRecursionThroughSends(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	setMethod(t, db, m, "ping", "def ping(self, n):\n    self.pinged = n\n    return self.pong(n + 1)")
	setMethod(t, db, m, "pong", "def pong(self, n):\n    return send(self, 'ping', n + 1)")
	before := db.Store().LastTID()
	_, err := sendUpdate(t, db, m, "ping", image.Int(0))
	var le *vm.LimitError
	if !errors.As(err, &le) || le.Limit != vm.DepthLimit {
		t.Fatalf("got %v, want a call-depth limit error", err)
	}
	for _, want := range []string{"in ping", "in pong", "more frames"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
	if db.Store().LastTID() != before {
		t.Errorf("the runaway send committed")
	}
}
