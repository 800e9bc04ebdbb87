package vm_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
	"batos/internal/vm"
)

// hostile tests of perf-18: pooled Starlark threads, lazily made context
// and maps, methods compiled once per source text, and read-only sends
// that load and commit nothing.

const countSource = "def count(self, n):\n    print('counting', n)\n    t = 0\n    for i in range(n):\n        t += i\n    return t"

func sendView(ctx context.Context, db *image.DB, m *vm.VM, target store.OID, selector string, args ...image.Value) (vm.Result, error) {
	var res vm.Result
	err := db.View(ctx, func(tx *image.Tx) error {
		var err error
		res, err = m.Send(ctx, tx, target, selector, args, nil)
		return err
	})
	return res, err
}

// TestHostileThreadAfterMidSendCancel: a send cancelled while it runs
// (its caller gone, its time limit) leaves no trace on the sends after
// it, which take the same steps and print the same.
func TestHostileThreadAfterMidSendCancel(t *testing.T) {
	db := imagetest.Open(t, nil)
	// Steps without bound: a quiet core takes 10M steps (the default)
	// in less than the time limit the test is about.
	m := vm.New(&vm.Options{Timeout: 200 * time.Millisecond, MaxSteps: 1 << 62})
	setMethod(t, db, m, "count", countSource)
	setMethod(t, db, m, "spin", "def spin(self):\n    print('spinning')\n    while True:\n        pass")
	g := genesisOID(t, db)
	want, err := sendView(ctx, db, m, g, "count", image.Int(10))
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 20 {
					res, err := sendView(ctx, db, m, g, "count", image.Int(10))
					if err != nil || res.Steps != want.Steps || res.Output != want.Output || !image.Equal(res.Value, want.Value) {
						t.Errorf("%s: %d steps, output %q, %s, %v; want %d, %q, %s", when, res.Steps, res.Output, res.Repr, err, want.Steps, want.Output, want.Repr)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	for i := range 5 {
		c, cancel := context.WithTimeout(ctx, time.Duration(10+i*5)*time.Millisecond)
		_, err := sendView(c, db, m, g, "spin")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("cancelled mid-send: got %v, want context.DeadlineExceeded", err)
		}
		check(fmt.Sprintf("after cancel %d", i))
	}
	var le *vm.LimitError
	if _, err := sendView(ctx, db, m, g, "spin"); !errors.As(err, &le) || le.Limit != vm.TimeLimit {
		t.Fatalf("spin: got %v, want the time limit", err)
	}
	check("after the time limit")
}

// TestHostileThreadPoolAcrossVMs: the pool is shared by every VM; a
// thread carries no VM's step limit to another.
func TestHostileThreadPoolAcrossVMs(t *testing.T) {
	db := imagetest.Open(t, nil)
	small := vm.New(&vm.Options{MaxSteps: 300})
	big := vm.New(&vm.Options{MaxSteps: 1_000_000})
	setMethod(t, db, big, "count", countSource)
	g := genesisOID(t, db)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for range 30 {
				if w%2 == 0 {
					res, err := sendView(ctx, db, big, g, "count", image.Int(1000))
					if err != nil {
						t.Errorf("big VM, 1000 iterations: %v", err)
						return
					}
					if res.Steps < 1000 {
						t.Errorf("big VM: %d steps", res.Steps)
					}
				} else {
					_, err := sendView(ctx, db, small, g, "count", image.Int(1000))
					var le *vm.LimitError
					if !errors.As(err, &le) || le.Limit != vm.StepLimit {
						t.Errorf("small VM, 1000 iterations: got %v, want the step limit", err)
						return
					}
					res, err := sendView(ctx, db, small, g, "count", image.Int(5))
					if err != nil || res.Output != "counting 5\n" {
						t.Errorf("small VM, 5 iterations: %q, %v", res.Output, err)
					}
				}
			}
		})
	}
	wg.Wait()
}

// TestHostileDeepRecursionThenShallow: a send that ends at the depth
// limit, deep in nested sends, leaves its thread fit for the next.
func TestHostileDeepRecursionThenShallow(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	setMethod(t, db, m, "count", countSource)
	setMethod(t, db, m, "deep", "def deep(self, n):\n    return self.deep(n + 1)")
	setMethod(t, db, m, "rec", "def rec(self, n):\n    if n == 0:\n        return 0\n    return 1 + self.rec(n - 1)")
	g := genesisOID(t, db)
	want, err := sendView(ctx, db, m, g, "count", image.Int(3))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		var le *vm.LimitError
		if _, err := sendView(ctx, db, m, g, "deep", image.Int(0)); !errors.As(err, &le) || le.Limit != vm.DepthLimit {
			t.Fatalf("deep: got %v, want the depth limit", err)
		}
		res, err := sendView(ctx, db, m, g, "count", image.Int(3))
		if err != nil || res.Steps != want.Steps || res.Output != want.Output {
			t.Fatalf("after deep: %d steps %q %v; want %d %q", res.Steps, res.Output, err, want.Steps, want.Output)
		}
		res, err = sendView(ctx, db, m, g, "rec", image.Int(20))
		if err != nil || !image.Equal(res.Value, image.Int(20)) {
			t.Fatalf("rec(20) after deep: %s, %v", res.Repr, err)
		}
	}
}

// TestHostileEvalGlobalsDoNotLeak: names an eval defined are not seen by
// the next eval or send on a reused thread.
func TestHostileEvalGlobalsDoNotLeak(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	mustEval(t, db, m, "leaked = 42\ndef helper():\n    return 1")
	for _, code := range []string{"leaked", "helper()"} {
		if res, err := evalUpdate(t, db, m, code); err == nil {
			t.Errorf("%s in a later eval: %s, want undefined", code, res.Repr)
		}
	}
}

// TestHostileSameSourceOnDifferentObjects: methods compiled once per
// source text answer for the receiver they are sent to, and a source
// changed on one object changes nothing on the other.
func TestHostileSameSourceOnDifferentObjects(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	src := quote("def who(self):\n    return self.name")
	res := mustEval(t, db, m, "genesis.a = new(None, name='a', who=method("+src+"))\ngenesis.b = new(None, name='b', who=method("+src+"))\n[genesis.a, genesis.b]")
	refs := res.Value.(*image.List).Elems
	for i, name := range []string{"a", "b"} {
		for range 2 {
			r, err := sendView(ctx, db, m, store.OID(refs[i].(image.Ref)), "who")
			if err != nil || !image.Equal(r.Value, image.String(name)) {
				t.Errorf("%s.who(): %s, %v", name, r.Repr, err)
			}
		}
	}
	mustEval(t, db, m, "genesis.b.who = method("+quote("def who(self):\n    return 'changed ' + self.name")+")")
	r, err := sendView(ctx, db, m, store.OID(refs[0].(image.Ref)), "who")
	if err != nil || !image.Equal(r.Value, image.String("a")) {
		t.Errorf("a.who() after b's changed: %s, %v", r.Repr, err)
	}
	r, err = sendView(ctx, db, m, store.OID(refs[1].(image.Ref)), "who")
	if err != nil || !image.Equal(r.Value, image.String("changed b")) {
		t.Errorf("b.who() after changed: %s, %v", r.Repr, err)
	}
}

// TestHostileSendChangesInPlace: in an Update, a send that only reads a
// container slot (own or inherited) and changes it in place is saved; a
// send that then fails saves nothing; a read-only send commits nothing;
// a View's send cannot change anything later sends see.
func TestHostileSendChangesInPlace(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	setGenesisSlot(t, db, "items", image.NewList(image.Int(1)))
	d := &image.Dict{}
	d.Set(image.String("k"), image.Int(1))
	setGenesisSlot(t, db, "table", d)
	setMethod(t, db, m, "add", "def add(self, x):\n    self.items.append(x)\n    self.table[str(x)] = x")
	setMethod(t, db, m, "get", "def get(self):\n    return [self.items, self.table]")
	setMethod(t, db, m, "bad", "def bad(self, x):\n    self.items.append(x)\n    fail('after append')")
	child := mustEval(t, db, m, "genesis.child = new(genesis)\ngenesis.child").Value.(image.Ref)
	g := genesisOID(t, db)
	items := func() image.Value {
		t.Helper()
		var v image.Value
		db.View(ctx, func(tx *image.Tx) error {
			o, _ := tx.Object(g)
			v, _ = o.Get("items")
			return nil
		})
		return v
	}
	// Warm up read-only sends in Updates and Views.
	for range 3 {
		var tid store.TID
		var res vm.Result
		tid, err := db.UpdateTID(ctx, func(tx *image.Tx) error {
			var err error
			res, err = m.Send(ctx, tx, g, "get", nil, nil)
			return err
		})
		if err != nil || tid != 0 {
			t.Fatalf("read-only send in an Update: committed %s, %v", tid, err)
		}
		// The caller changes the result: nothing may show.
		res.Value.(*image.List).Elems[0].(*image.List).Elems[0] = image.Int(-1)
		if _, err := sendView(ctx, db, m, g, "get"); err != nil {
			t.Fatal(err)
		}
	}
	if got := items(); !image.Equal(got, image.NewList(image.Int(1))) {
		t.Fatalf("items %s after read-only sends, want [1]", image.Repr(got))
	}
	if _, err := sendUpdate(t, db, m, "add", image.Int(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := sendTo(t, db, m, store.OID(child), "add", image.Int(3)); err != nil {
		t.Fatal(err)
	}
	want := image.NewList(image.Int(1), image.Int(2), image.Int(3))
	if got := items(); !image.Equal(got, want) {
		t.Errorf("items %s after adds (own and inherited), want %s", image.Repr(got), image.Repr(want))
	}
	if _, err := sendUpdate(t, db, m, "bad", image.Int(4)); err == nil {
		t.Fatal("bad: no error")
	}
	if got := items(); !image.Equal(got, want) {
		t.Errorf("items %s after a failed send, want %s", image.Repr(got), image.Repr(want))
	}
	// In a View the method cannot change the container.
	if _, err := sendView(ctx, db, m, g, "add", image.Int(5)); err == nil {
		t.Error("add in a View: no error")
	}
	if got := items(); !image.Equal(got, want) {
		t.Errorf("items %s after a View's add, want %s", image.Repr(got), image.Repr(want))
	}
	r, err := sendView(ctx, db, m, g, "get")
	if err != nil {
		t.Fatal(err)
	}
	if tbl := r.Value.(*image.List).Elems[1].(*image.Dict); tbl.Len() != 3 {
		t.Errorf("table %s, want 3 entries", image.Repr(tbl))
	}
}

// TestHostileConcurrentSendsCountExactly: sends appending to a list and
// incrementing a slot, concurrently with read-only sends, lose nothing.
func TestHostileConcurrentSendsCountExactly(t *testing.T) {
	db := imagetest.Open(t, &imagetest.Options{Image: &image.Options{MaxRetries: 1000}})
	m := vm.New(nil)
	setGenesisSlot(t, db, "items", image.NewList())
	setGenesisSlot(t, db, "n", image.Int(0))
	setMethod(t, db, m, "bump", "def bump(self, x):\n    self.items.append(x)\n    self.n = self.n + 1\n    return self.n")
	setMethod(t, db, m, "look", "def look(self):\n    if len(self.items) != self.n:\n        fail('items %d, n %d' % (len(self.items), self.n))\n    return self.n")
	g := genesisOID(t, db)
	const workers, each = 6, 30
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var rg sync.WaitGroup
	for range 3 {
		rg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := sendView(ctx, db, m, g, "look"); err != nil {
					t.Errorf("look: %v", err)
					return
				}
				var tid store.TID
				tid, err := db.UpdateTID(ctx, func(tx *image.Tx) error {
					_, err := m.Send(ctx, tx, g, "look", nil, nil)
					return err
				})
				if err != nil || tid != 0 {
					t.Errorf("look in an Update: %s, %v", tid, err)
					return
				}
			}
		})
	}
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := sendTo(t, db, m, g, "bump", image.Int(int64(w*1000+i))); err != nil {
					t.Errorf("bump: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	rg.Wait()
	r, err := sendView(ctx, db, m, g, "look")
	if err != nil || !image.Equal(r.Value, image.Int(workers*each)) {
		t.Errorf("n = %s, %v; want %d", r.Repr, err, workers*each)
	}
}

// TestHostileManyObjectsInOneSend: a send touching more objects than an
// execution wraps in place changes each once, and identity holds.
func TestHostileManyObjectsInOneSend(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	mustEval(t, db, m, "genesis.objs = [new(None, n=0, l=[]) for i in range(10)]")
	setMethod(t, db, m, "touch", "def touch(self):\n    for o in self.objs:\n        o.n = o.n + 1\n        o.l.append(o.n)\n    for o in self.objs:\n        o.l.append(o.n)\n    return [o == self.objs[i] for i, o in enumerate(self.objs)]")
	for range 2 {
		res, err := sendUpdate(t, db, m, "touch")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range res.Value.(*image.List).Elems {
			if e != image.Bool(true) {
				t.Fatalf("identity lost: %s", res.Repr)
			}
		}
	}
	res := mustEval(t, db, m, "[(o.n, o.l) for o in genesis.objs]")
	for _, e := range res.Value.(*image.List).Elems {
		want := image.Tuple{image.Int(2), image.NewList(image.Int(1), image.Int(1), image.Int(2), image.Int(2))}
		if !image.Equal(e, want) {
			t.Errorf("object state %s, want %s", image.Repr(e), image.Repr(want))
		}
	}
}
