package vm_test

// Hostile tests of the VM: method code is untrusted, so it must never
// crash or hang the process, escape its limits, leak changes from a
// failed execution, or reach anything but the image. Tests that fail on
// the current code show a bug.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
	"batos/internal/vm"
)

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

// evalUpdate runs code through Eval in its own Update.
func evalUpdate(t *testing.T, db *image.DB, m *vm.VM, code string) (vm.Result, error) {
	t.Helper()
	var res vm.Result
	err := db.Update(ctx, func(tx *image.Tx) error {
		var err error
		res, err = m.Eval(ctx, tx, code, vm.GlobalsOf(rootGlobals(t, db)))
		return err
	})
	return res, err
}

func mustEval(t *testing.T, db *image.DB, m *vm.VM, code string) vm.Result {
	t.Helper()
	res, err := evalUpdate(t, db, m, code)
	if err != nil {
		t.Fatalf("eval %q: %v", code, err)
	}
	return res
}

// setGenesisSlot stores v in genesis's slot name through the image API,
// bypassing every check method() and assignment make.
func setGenesisSlot(t *testing.T, db *image.DB, name string, v image.Value) {
	t.Helper()
	err := db.Update(ctx, func(tx *image.Tx) error {
		g, err := tx.Object(genesisOID(t, db))
		if err != nil {
			return err
		}
		return g.Set(name, v)
	})
	if err != nil {
		t.Fatal(err)
	}
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

// TestHostileBadMethodSlotsStoredDirectly: method slots written through the
// image API skip method()'s checks; a send to one must fail cleanly, and
// the VM keep serving.
func TestHostileBadMethodSlotsStoredDirectly(t *testing.T) {
	huge := "def big(self):\n    x = 0\n" + strings.Repeat("    x = x + 1\n", 50_000) + "    return x"
	cases := []struct{ slot, source, want string }{
		{"wrong", "def other(self):\n    return 1", "must be named like its slot"},
		{"broken", "def broken(self):\n    return (", "broken.star:2"},
		{"loader", "load('x.star', 'y')\ndef loader(self):\n    return 1", "load is not available"},
		{"twice", "def twice(self):\n    return 1\ndef twice2(self):\n    return 2", "more than one function"},
		{"noself", "def noself(x):\n    return 1", "first parameter must be self"},
		{"toplevel", "x = 1\ndef toplevel(self):\n    return x", "only a docstring and one def"},
		{"undefined", "def undefined(self):\n    return open('/etc/passwd')", "undefined: open"},
		{"nested", "def nested(self):\n    return " + strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000), "excessive nesting"},
		{"empty", "", "defines no function"},
		{"big", huge, ""},
	}
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	for _, tc := range cases {
		setGenesisSlot(t, db, tc.slot, &image.Method{Source: tc.source})
	}
	for _, tc := range cases {
		t.Run(tc.slot, func(t *testing.T) {
			before := db.Store().LastTID()
			res, err := sendUpdate(t, db, m, tc.slot)
			switch {
			case tc.want == "" && (err != nil || res.Repr != "50000"):
				t.Errorf("got %q %v, want 50000", res.Repr, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
			if db.Store().LastTID() != before {
				t.Errorf("the send committed")
			}
		})
	}
	setMethod(t, db, m, "fine", "def fine(self):\n    return slots(self)")
	if res, err := sendUpdate(t, db, m, "fine"); err != nil || !strings.Contains(res.Repr, `"broken"`) {
		t.Errorf("the VM after the bad methods: %q %v", res.Repr, err)
	}
}

func TestHostileInjectedClock(t *testing.T) {
	db := imagetest.Open(t, nil)
	at := time.Date(2001, 2, 3, 4, 5, 6, 500_000_000, time.UTC)
	m := vm.New(&vm.Options{Now: func() time.Time { return at }})
	setMethod(t, db, m, "stamp", "def stamp(self):\n    return [time.now(), time.now()]")
	res, err := sendUpdate(t, db, m, "stamp")
	want := float64(at.UnixNano()) / 1e9
	if err != nil || !image.Equal(res.Value, image.NewList(image.Float(want), image.Float(want))) {
		t.Errorf("got %v %v, want [%v, %v] from the injected clock", res.Repr, err, want, want)
	}
}

// settleGoroutines waits for the goroutine count to fall to at most n.
func settleGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines remain, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHostileConcurrentSends: many goroutines send the same methods at
// once, some hitting the step limit, some contending for one counter;
// each execution's limit is its own, every increment that commits lands
// once (the others give up on write conflicts), and the
// watchdog goroutine ends when the VM is idle.
func TestHostileConcurrentSends(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(&vm.Options{MaxSteps: 200_000})
	mustEval(t, db, m, "genesis.count = 0")
	setMethod(t, db, m, "bump", "def bump(self):\n    self.count += 1\n    return self.count")
	setMethod(t, db, m, "spin", "def spin(self):\n    self.count = -1\n    while True:\n        pass")
	setMethod(t, db, m, "twice", "def twice(self, x):\n    return 2 * x")
	base := runtime.NumGoroutine()
	const senders = 24
	var wg sync.WaitGroup
	var bumped atomic.Int64
	errs := make(chan error, 3*senders)
	for i := range senders {
		wg.Add(3)
		go func() {
			defer wg.Done()
			_, err := sendUpdate(t, db, m, "bump")
			switch {
			case err == nil:
				bumped.Add(1)
			case !errors.Is(err, store.ErrConflict):
				errs <- fmt.Errorf("bump: %w", err)
			}
		}()
		go func() {
			defer wg.Done()
			_, err := sendUpdate(t, db, m, "spin")
			if le := (*vm.LimitError)(nil); !errors.As(err, &le) || le.Limit != vm.StepLimit {
				errs <- fmt.Errorf("spin: got %v, want the step limit", err)
			}
		}()
		go func() {
			defer wg.Done()
			err := db.View(ctx, func(tx *image.Tx) error {
				res, err := m.Send(ctx, tx, genesisOID(t, db), "twice", []image.Value{image.Int(int64(i))}, nil)
				if err == nil && !image.Equal(res.Value, image.Int(int64(2*i))) {
					err = fmt.Errorf("twice(%d) = %s", i, res.Repr)
				}
				return err
			})
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if res := mustEval(t, db, m, "genesis.count"); res.Repr != fmt.Sprint(bumped.Load()) || bumped.Load() == 0 {
		t.Errorf("count after %d committed bumps: %s", bumped.Load(), res.Repr)
	}
	settleGoroutines(t, base)
}

// TestHostileCancelManyExecutions: cancelling the ctx of many spinning
// executions stops each promptly with the ctx's error, nothing committed,
// and leaves no goroutine behind.
func TestHostileCancelManyExecutions(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(&vm.Options{Timeout: time.Minute, MaxSteps: 1 << 62})
	setMethod(t, db, m, "spin", "def spin(self):\n    self.spun = True\n    while True:\n        pass")
	base := runtime.NumGoroutine()
	before := db.Store().LastTID()
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Update(cctx, func(tx *image.Tx) error {
				_, err := m.Send(cctx, tx, genesisOID(t, db), "spin", nil, nil)
				return err
			})
		}()
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	cancel()
	wg.Wait()
	if took := time.Since(start); took > time.Second {
		t.Errorf("executions took %v to stop after cancel", took)
	}
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("execution %d: got %v, want context.Canceled", i, err)
		}
	}
	if db.Store().LastTID() != before {
		t.Errorf("a cancelled execution committed")
	}
	settleGoroutines(t, base)
}

type writingHandler struct{}

func (writingHandler) DoesNotUnderstand(ctx context.Context, tx *image.Tx, msg *vm.Message) (image.Value, error) {
	if _, err := tx.New(image.Slot{Name: "learned", Value: image.String(msg.Selector)}); err != nil {
		return nil, err
	}
	return image.String("learned"), nil
}

// TestHostileDoesNotUnderstandInView: in a read-only execution the
// handler gets the read-only transaction and cannot change the image.
func TestHostileDoesNotUnderstandInView(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(&vm.Options{Handler: writingHandler{}})
	setMethod(t, db, m, "ask", "def ask(self):\n    return self.unknown(1)")
	err := db.View(ctx, func(tx *image.Tx) error {
		_, err := m.Send(ctx, tx, genesisOID(t, db), "ask", nil, nil)
		return err
	})
	if !errors.Is(err, image.ErrReadOnly) {
		t.Errorf("handler writing in a view: got %v, want image.ErrReadOnly", err)
	}
	res, err := sendUpdate(t, db, m, "ask")
	if err != nil || res.Repr != `"learned"` {
		t.Errorf("the same send in an update: %q %v", res.Repr, err)
	}
}
