package image_test

// Hostile tests of the object layer: misuse, odd values and races a
// careless or adversarial caller can produce. Each test states the
// behaviour it pins; those that fail on the current code show a bug.

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/big"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
)

// storedSlots decodes oid's current record straight from the store,
// bypassing the image's cache.
func storedSlots(t testing.TB, db *image.DB, oid store.OID) []image.Slot {
	t.Helper()
	rec, err := db.Store().Load(ctx, oid)
	if err != nil {
		t.Fatal(err)
	}
	slots, err := image.DecodeState(rec.Data)
	if err != nil {
		t.Fatal(err)
	}
	return slots
}

func storedValue(t testing.TB, db *image.DB, oid store.OID, name string) image.Value {
	t.Helper()
	for _, s := range storedSlots(t, db, oid) {
		if s.Name == name {
			return s.Value
		}
	}
	t.Fatalf("%s has no slot %q in the store", oid, name)
	return nil
}

func setSlot(t testing.TB, db *image.DB, oid store.OID, name string, v image.Value) store.TID {
	t.Helper()
	tid, err := db.UpdateTID(ctx, func(tx *image.Tx) error {
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		return o.Set(name, v)
	})
	if err != nil {
		t.Fatalf("set %s.%s: %v", oid, name, err)
	}
	return tid
}

// runChild reruns the current test in a child process with HOSTILE_CHILD
// set, for code that may kill the process (a stack overflow is fatal, not
// a panic). It returns the child's combined output and whether it passed.
func runChild(t *testing.T) (string, bool) {
	t.Helper()
	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "HOSTILE_CHILD=1")
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

func inChild() bool { return os.Getenv("HOSTILE_CHILD") == "1" }

// firstLines keeps a crash report readable.
func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// TestHostileViewContainersInsideTuplesAreCopies: a Tuple of scalars read in a View is the
// cached one (Clone returns immutable values as they are); Tuple
// immutability is a documented convention, so this only pins that
// containers (the mutable kinds) are copied, including inside tuples.
func TestHostileViewContainersInsideTuplesAreCopies(t *testing.T) {
	db := imagetest.Open(t, nil)
	inner := image.NewList(image.Int(1))
	d := &image.Dict{}
	if err := d.Set(image.String("k"), image.NewList(image.Int(2))); err != nil {
		t.Fatal(err)
	}
	m := &image.Method{Source: "def f(): pass", Meta: d}
	oid := newObject(t, db,
		image.Slot{Name: "t", Value: image.Tuple{inner}},
		image.Slot{Name: "m", Value: m},
		image.Slot{Name: "x", Value: image.Int(0)})
	err := db.View(ctx, func(tx *image.Tx) error {
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		tv, _ := o.Get("t")
		l := tv.(image.Tuple)[0].(*image.List)
		l.Elems = append(l.Elems, image.Int(99))
		mv, _ := o.Get("m")
		mv.(*image.Method).Source = "def g(): pass"
		ml, _ := mv.(*image.Method).Meta.Get(image.String("k"))
		ml.(*image.List).Elems[0] = image.Int(-2)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// An unrelated Update of the same object must not carry the View's
	// changes into the store.
	setSlot(t, db, oid, "x", image.Int(1))
	if got := image.Repr(storedValue(t, db, oid, "t")); got != "([1],)" {
		t.Errorf("stored t = %s, want ([1],)", got)
	}
	sm := storedValue(t, db, oid, "m").(*image.Method)
	ml, _ := sm.Meta.Get(image.String("k"))
	if sm.Source != "def f(): pass" || image.Repr(ml) != "[2]" {
		t.Errorf("stored method = %q meta k %s, want the original", sm.Source, image.Repr(ml))
	}
}

// TestHostileCyclicValueSetFailsAtCommit: a list appended to itself (or a
// dict holding itself) is refused at commit with ErrTooDeep; nothing is
// saved and the process survives.
func TestHostileCyclicValueSetFailsAtCommit(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "x", Value: image.Int(1)})
	cases := map[string]func() image.Value{
		"list in itself": func() image.Value {
			l := image.NewList(image.Int(1))
			l.Elems = append(l.Elems, l)
			return l
		},
		"list twice in itself": func() image.Value {
			l := image.NewList()
			l.Elems = append(l.Elems, l, l)
			return l
		},
		"dict in itself": func() image.Value {
			d := &image.Dict{}
			d.Set(image.String("self"), d)
			return d
		},
		"method meta holding the method": func() image.Value {
			m := &image.Method{Source: "def f(): pass", Meta: &image.Dict{}}
			m.Meta.Set(image.String("me"), m)
			return m
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			before := db.Store().LastTID()
			err := db.Update(ctx, func(tx *image.Tx) error {
				o, err := tx.Object(oid)
				if err != nil {
					return err
				}
				return o.Set("x", mk())
			})
			if !errors.Is(err, image.ErrTooDeep) {
				t.Errorf("commit of a cyclic value: got %v, want ErrTooDeep", err)
			}
			if db.Store().LastTID() != before {
				t.Errorf("a failed commit advanced LastTID")
			}
			if v := get(t, db, oid, "x"); !image.Equal(v, image.Int(1)) {
				t.Errorf("x = %s after the failed commit, want 1", image.Repr(v))
			}
		})
	}
}

// TestHostileCyclicValueInNew: passing a cyclic container to Tx.New must
// fail with an error, as Set followed by commit does. Tx.New clones its
// slots with Clone, which has no depth guard, so the goroutine overflows
// its stack: a fatal error that kills the process, not a panic Update can
// roll back. Run in a child process so the crash is observable.
func TestHostileCyclicValueInNew(t *testing.T) {
	if inChild() {
		debug.SetMaxStack(32 << 20) // crash fast instead of using 1 GB
		db := imagetest.Open(t, nil)
		l := image.NewList(image.Int(1))
		l.Elems = append(l.Elems, l)
		err := db.Update(ctx, func(tx *image.Tx) error {
			_, err := tx.New(image.Slot{Name: "l", Value: l})
			return err
		})
		if !errors.Is(err, image.ErrTooDeep) {
			t.Errorf("Tx.New with a cyclic list: got %v, want ErrTooDeep", err)
		}
		return
	}
	if out, ok := runChild(t); !ok {
		t.Errorf("Tx.New with a list containing itself killed the process instead of returning an error:\n%s", firstLines(out, 12))
	}
}

// TestHostileSelfContainingTupleKey: a Tuple whose element is itself is
// not hashable data an image can hold; Dict.Set must return an error
// rather than recursing forever in Hashable.
func TestHostileSelfContainingTupleKey(t *testing.T) {
	if inChild() {
		debug.SetMaxStack(32 << 20)
		tup := make(image.Tuple, 1)
		tup[0] = tup
		d := &image.Dict{}
		if err := d.Set(tup, image.Int(1)); err == nil {
			t.Errorf("Dict.Set with a self-containing tuple key succeeded")
		}
		return
	}
	if out, ok := runChild(t); !ok {
		t.Errorf("Dict.Set with a self-containing tuple key killed the process:\n%s", firstLines(out, 12))
	}
}

// TestHostileSharedListTwoObjects: one *List set in two objects in one
// Update is saved in both, with changes made after Set; once committed
// the two are independent values (values are trees, not shared).
func TestHostileSharedListTwoObjects(t *testing.T) {
	db := imagetest.Open(t, nil)
	a := newObject(t, db, image.Slot{Name: "x", Value: image.Int(0)})
	b := newObject(t, db, image.Slot{Name: "x", Value: image.Int(0)})
	err := db.Update(ctx, func(tx *image.Tx) error {
		oa, _ := tx.Object(a)
		ob, _ := tx.Object(b)
		shared := image.NewList(image.Int(1))
		if err := oa.Set("l", shared); err != nil {
			return err
		}
		if err := ob.Set("l", shared); err != nil {
			return err
		}
		if err := oa.Set("m", shared); err != nil { // a second slot too
			return err
		}
		shared.Elems = append(shared.Elems, image.Int(2))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, oid := range []store.OID{a, b} {
		if got := image.Repr(storedValue(t, db, oid, "l")); got != "[1, 2]" {
			t.Errorf("%s.l = %s, want [1, 2]", oid, got)
		}
	}
	// Now change a.l only: b.l and a.m must not follow.
	err = db.Update(ctx, func(tx *image.Tx) error {
		oa, _ := tx.Object(a)
		ob, _ := tx.Object(b) // loaded, so a shared value would show
		_ = ob
		v, _ := oa.Get("l")
		v.(*image.List).Elems[0] = image.Int(100)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := image.Repr(storedValue(t, db, a, "l")); got != "[100, 2]" {
		t.Errorf("a.l = %s, want [100, 2]", got)
	}
	if got := image.Repr(storedValue(t, db, a, "m")); got != "[1, 2]" {
		t.Errorf("a.m = %s, want [1, 2]", got)
	}
	if got := image.Repr(storedValue(t, db, b, "l")); got != "[1, 2]" {
		t.Errorf("b.l = %s, want [1, 2]", got)
	}
}

// TestHostileFloatChangeDetection: change detection compares encodings,
// so the same NaN is no change while another NaN payload, -0.0 over 0.0
// and 1.0 over Int(1) are changes.
func TestHostileFloatChangeDetection(t *testing.T) {
	db := imagetest.Open(t, nil)
	nan := image.Float(math.NaN())
	oid := newObject(t, db, image.Slot{Name: "f", Value: nan}, image.Slot{Name: "z", Value: image.Float(0)},
		image.Slot{Name: "i", Value: image.Int(1)})
	if tid := setSlot(t, db, oid, "f", image.Float(math.NaN())); tid != 0 {
		t.Errorf("setting the same NaN committed %s, want no commit", tid)
	}
	other := image.Float(math.Float64frombits(math.Float64bits(math.NaN()) ^ 1))
	if tid := setSlot(t, db, oid, "f", other); tid == 0 {
		t.Errorf("a NaN with another payload was not saved")
	}
	if v := storedValue(t, db, oid, "f"); !image.Equal(v, other) {
		t.Errorf("stored NaN bits %x, want %x", math.Float64bits(float64(v.(image.Float))), math.Float64bits(float64(other)))
	}
	if tid := setSlot(t, db, oid, "z", image.Float(math.Copysign(0, -1))); tid == 0 {
		t.Errorf("-0.0 over 0.0 was not saved")
	}
	if tid := setSlot(t, db, oid, "i", image.Float(1)); tid == 0 {
		t.Errorf("1.0 over 1 was not saved")
	}
	if tid := setSlot(t, db, oid, "i", image.Float(1)); tid != 0 {
		t.Errorf("1.0 over 1.0 committed %s", tid)
	}
}

// TestHostileSlotNames: the 256-byte limit, UTF-8 and uniqueness are
// enforced by Set and New, not only at commit.
func TestHostileSlotNames(t *testing.T) {
	db := imagetest.Open(t, nil)
	longest := strings.Repeat("é", image.MaxSlotName/2) // 256 bytes
	oid := newObject(t, db, image.Slot{Name: longest, Value: image.Int(1)})
	if v := storedValue(t, db, oid, longest); !image.Equal(v, image.Int(1)) {
		t.Errorf("256-byte slot name round trip: %s", image.Repr(v))
	}
	bad := map[string]string{
		"257 bytes":     strings.Repeat("a", image.MaxSlotName+1),
		"1 MB":          strings.Repeat("a", 1<<20),
		"empty":         "",
		"invalid UTF-8": "a\xffb",
		"cut rune":      longest[:255] + "a\xc3", // 257 bytes ending mid-rune
	}
	err := db.Update(ctx, func(tx *image.Tx) error {
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		for name, slot := range bad {
			if err := o.Set(slot, image.Int(1)); !errors.Is(err, image.ErrSlotName) {
				t.Errorf("Set %s: got %v, want ErrSlotName", name, err)
			}
			if _, err := tx.New(image.Slot{Name: slot, Value: image.Int(1)}); !errors.Is(err, image.ErrSlotName) {
				t.Errorf("New %s: got %v, want ErrSlotName", name, err)
			}
		}
		if _, err := tx.New(image.Slot{Name: "a", Value: image.Int(1)}, image.Slot{Name: "a", Value: image.Int(2)}); !errors.Is(err, image.ErrSlotName) {
			t.Errorf("New with a repeated slot: got %v, want ErrSlotName", err)
		}
		if err := o.Set("n", nil); !errors.Is(err, image.ErrInvalid) {
			t.Errorf("Set nil: got %v, want ErrInvalid", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A typed nil *List has no encoding: Set or the commit must refuse it.
	err = db.Update(ctx, func(tx *image.Tx) error {
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		return o.Set("l", (*image.List)(nil))
	})
	if !errors.Is(err, image.ErrInvalid) {
		t.Errorf("a nil *List: got %v, want ErrInvalid", err)
	}
	if _, ok := storedSlotsByName(t, db, oid)["l"]; ok {
		t.Errorf("a nil *List was committed")
	}
}

func storedSlotsByName(t testing.TB, db *image.DB, oid store.OID) map[string]image.Value {
	m := map[string]image.Value{}
	for _, s := range storedSlots(t, db, oid) {
		m[s.Name] = s.Value
	}
	return m
}

// TestHostileIntRange: integers beyond int64 are refused naming the
// number; the extremes of int64 survive a commit.
func TestHostileIntRange(t *testing.T) {
	belowMin := new(big.Int).Sub(big.NewInt(math.MinInt64), big.NewInt(1))
	for _, x := range []any{uint64(math.MaxUint64), uint(math.MaxInt64) + 1, new(big.Int).Lsh(big.NewInt(1), 64), belowMin} {
		_, err := image.ValueOf(x)
		if !errors.Is(err, image.ErrIntRange) {
			t.Errorf("ValueOf(%v): got %v, want ErrIntRange", x, err)
			continue
		}
		if !strings.Contains(err.Error(), stringOf(x)) {
			t.Errorf("ValueOf(%v): error %q does not name the number", x, err)
		}
	}
	if _, err := image.ValueOf([]any{1, map[string]any{"k": uint64(math.MaxUint64)}}); !errors.Is(err, image.ErrIntRange) {
		t.Errorf("nested big uint: got %v, want ErrIntRange", err)
	}
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "min", Value: image.Int(math.MinInt64)}, image.Slot{Name: "max", Value: image.Int(math.MaxInt64)})
	if v := storedValue(t, db, oid, "min"); !image.Equal(v, image.Int(math.MinInt64)) {
		t.Errorf("min = %s", image.Repr(v))
	}
	if v := storedValue(t, db, oid, "max"); !image.Equal(v, image.Int(math.MaxInt64)) {
		t.Errorf("max = %s", image.Repr(v))
	}
}

func stringOf(x any) string {
	switch x := x.(type) {
	case *big.Int:
		return x.String()
	case uint64:
		return new(big.Int).SetUint64(x).String()
	case uint:
		return new(big.Int).SetUint64(uint64(x)).String()
	}
	return ""
}

// TestHostileObjectKeptAfterUpdate: an *Object, a Tx and values kept past
// the end of Update can change nothing: writes fail with ErrTxDone and
// nested changes to kept containers reach neither the store nor later
// transactions.
func TestHostileObjectKeptAfterUpdate(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "l", Value: image.NewList(image.Int(1))})
	var keptTx *image.Tx
	var kept *image.Object
	var keptList *image.List
	err := db.Update(ctx, func(tx *image.Tx) error {
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		keptTx, kept = tx, o
		v, _ := o.Get("l")
		keptList = v.(*image.List)
		keptList.Elems = append(keptList.Elems, image.Int(2))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := kept.Set("l", image.Int(3)); !errors.Is(err, image.ErrTxDone) {
		t.Errorf("Set after Update: got %v, want ErrTxDone", err)
	}
	if _, err := kept.Delete("l"); !errors.Is(err, image.ErrTxDone) {
		t.Errorf("Delete after Update: got %v, want ErrTxDone", err)
	}
	if _, err := keptTx.Object(oid); !errors.Is(err, image.ErrTxDone) {
		t.Errorf("Object after Update: got %v, want ErrTxDone", err)
	}
	if _, err := keptTx.New(); !errors.Is(err, image.ErrTxDone) {
		t.Errorf("New after Update: got %v, want ErrTxDone", err)
	}
	if _, err := keptTx.PutBlob(strings.NewReader("x")); !errors.Is(err, image.ErrTxDone) {
		t.Errorf("PutBlob after Update: got %v, want ErrTxDone", err)
	}
	keptList.Elems[0] = image.Int(-1)
	keptList.Elems = append(keptList.Elems, image.Int(99))
	if got := image.Repr(get(t, db, oid, "l")); got != "[1, 2]" {
		t.Errorf("View after mutating a kept list: %s, want [1, 2]", got)
	}
	before := db.Store().LastTID()
	tid, err := db.UpdateTID(ctx, func(tx *image.Tx) error {
		_, err := tx.Object(oid)
		return err
	})
	if err != nil || tid != 0 || db.Store().LastTID() != before {
		t.Errorf("a read-only Update after mutating a kept list committed %s (err %v)", tid, err)
	}
	if got := image.Repr(storedValue(t, db, oid, "l")); got != "[1, 2]" {
		t.Errorf("stored l = %s, want [1, 2]", got)
	}
}

// TestHostileRetriedFnKeepsObject: an *Object captured by a first attempt
// is dead in the retry.
func TestHostileRetriedFnKeepsObject(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "n", Value: image.Int(0)})
	var first *image.Object
	runs := 0
	err := db.Update(ctx, func(tx *image.Tx) error {
		runs++
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		if first == nil {
			first = o
			// Another writer gets in: this attempt will conflict.
			if err := db.Update(ctx, func(tx2 *image.Tx) error {
				o2, _ := tx2.Object(oid)
				return o2.Set("n", image.Int(10))
			}); err != nil {
				return err
			}
			return o.Set("n", image.Int(1))
		}
		if err := first.Set("n", image.Int(2)); !errors.Is(err, image.ErrTxDone) {
			t.Errorf("Set through the first attempt's object: got %v, want ErrTxDone", err)
		}
		n, _ := o.Get("n")
		return o.Set("n", n.(image.Int)+1)
	})
	if err != nil || runs != 2 {
		t.Fatalf("got %v after %d runs, want success after 2", err, runs)
	}
	if v := storedValue(t, db, oid, "n"); !image.Equal(v, image.Int(11)) {
		t.Errorf("n = %s, want 11", image.Repr(v))
	}
}

// TestHostileCancelBeforeCommit: when ctx is cancelled while fn runs,
// Update must not commit and must say so. The store's submit selects
// between queueing the commit and ctx.Done, so a cancelled commit is
// saved about half of the time.
func TestHostileCancelBeforeCommit(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "n", Value: image.Int(0)})
	committed := 0
	for i := range 40 {
		cctx, cancel := context.WithCancel(ctx)
		before := db.Store().LastTID()
		err := db.Update(cctx, func(tx *image.Tx) error {
			o, err := tx.Object(oid)
			if err != nil {
				return err
			}
			if err := o.Set("n", image.Int(i+1)); err != nil {
				return err
			}
			cancel() // the caller gives up while fn runs
			return nil
		})
		cancel()
		changed := db.Store().LastTID() != before
		// Whatever happens, the error must tell the truth.
		if (err == nil) != changed {
			t.Fatalf("attempt %d: err %v but committed=%v", i, err, changed)
		}
		if changed {
			committed++
		} else if !errors.Is(err, context.Canceled) {
			t.Errorf("attempt %d: got %v, want context.Canceled", i, err)
		}
	}
	if committed > 0 {
		t.Errorf("%d of 40 Updates whose ctx was cancelled before commit committed anyway; want 0 (check ctx.Err() before committing)", committed)
	}
}

// TestHostileConflictExhaustedNamesObjects: with the default MaxRetries
// an always-losing Update runs 9 times, then fails with a
// *store.ConflictError naming every object it lost on; nothing it wrote
// is saved.
func TestHostileConflictExhaustedNamesObjects(t *testing.T) {
	db := imagetest.Open(t, nil)
	a := newObject(t, db, image.Slot{Name: "n", Value: image.Int(0)})
	b := newObject(t, db, image.Slot{Name: "n", Value: image.Int(0)})
	runs := 0
	err := db.Update(ctx, func(tx *image.Tx) error {
		runs++
		oa, _ := tx.Object(a)
		ob, _ := tx.Object(b)
		if err := db.Update(ctx, func(tx2 *image.Tx) error {
			for _, oid := range []store.OID{a, b} {
				o, _ := tx2.Object(oid)
				if err := o.Set("n", image.Int(runs)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		oa.Set("n", image.Int(-1))
		return ob.Set("n", image.Int(-1))
	})
	if runs != 9 {
		t.Errorf("fn ran %d times, want 9 (1 + default MaxRetries 8)", runs)
	}
	var ce *store.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a *store.ConflictError", err)
	}
	if len(ce.OIDs) != 2 || ce.OIDs[0] != min(a, b) || ce.OIDs[1] != max(a, b) {
		t.Errorf("conflict names %v, want [%s %s]", ce.OIDs, a, b)
	}
	for _, oid := range []store.OID{a, b} {
		if !strings.Contains(err.Error(), oid.String()) {
			t.Errorf("error %q does not name %s", err, oid)
		}
		if v := storedValue(t, db, oid, "n"); !image.Equal(v, image.Int(9)) {
			t.Errorf("%s.n = %s, want 9 (the other writer's)", oid, image.Repr(v))
		}
	}
}

// TestHostileConcurrentConflictsNoLostUpdates: with MaxRetries 1 many
// writers give up; each failure is a conflict naming the object, and the
// final count equals the successes exactly.
func TestHostileConcurrentConflictsNoLostUpdates(t *testing.T) {
	db := imagetest.Open(t, &imagetest.Options{Image: &image.Options{MaxRetries: 1}})
	oid := newObject(t, db, image.Slot{Name: "n", Value: image.Int(0)})
	var mu sync.Mutex
	ok := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				err := db.Update(ctx, func(tx *image.Tx) error {
					o, err := tx.Object(oid)
					if err != nil {
						return err
					}
					n, _ := o.Get("n")
					time.Sleep(100 * time.Microsecond) // widen the window
					return o.Set("n", n.(image.Int)+1)
				})
				if err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
					continue
				}
				if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), oid.String()) {
					t.Errorf("failed update: %v, want a conflict naming %s", err, oid)
				}
			}
		})
	}
	wg.Wait()
	if v := storedValue(t, db, oid, "n"); !image.Equal(v, image.Int(ok)) {
		t.Errorf("n = %s after %d successful increments", image.Repr(v), ok)
	}
}

// TestHostileInitOnCorruptRoot: Init on a root whose record does not
// decode fails naming the root and the corruption, and leaves it alone.
func TestHostileInitOnCorruptRoot(t *testing.T) {
	db := imagetest.Open(t, &imagetest.Options{Raw: true})
	s := imagetest.Bolt(db)
	if _, err := db.Init(ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Load(ctx, image.RootOID)
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte{1, 5, 0xff, 0xfe} // version 1, then nonsense
	if _, err := s.Commit(ctx, store.TxMeta{User: "vandal"}, []store.Write{{OID: image.RootOID, Serial: rec.Serial, Data: garbage}}); err != nil {
		t.Fatal(err)
	}
	last := s.LastTID()
	created, err := db.Init(ctx)
	if err == nil || created {
		t.Fatalf("Init on a corrupt root: created=%v err=%v, want an error", created, err)
	}
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), image.RootOID.String()) {
		t.Errorf("Init error %q: want ErrCorrupt naming %s", err, image.RootOID)
	}
	if s.LastTID() != last {
		t.Errorf("Init on a corrupt root committed something")
	}
	err = db.View(ctx, func(tx *image.Tx) error { _, err := tx.Root(); return err })
	if !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("Root on a corrupt root: got %v, want ErrCorrupt", err)
	}
	rep, err := db.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Errorf("Verify found nothing wrong with a corrupt root")
	}
}

// TestHostileUndoInit: undoing the transaction that created the root is
// refused with an UndoError, and changes nothing.
func TestHostileUndoInit(t *testing.T) {
	db := imagetest.Open(t, nil)
	init := db.Store().LastTID()
	_, err := db.Undo(ctx, init, "tester")
	var ue *store.UndoError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "root") {
		t.Errorf("undo of init: got %v, want an UndoError about the root", err)
	}
	if db.Store().LastTID() != init {
		t.Errorf("a refused undo committed")
	}
	// Still refused once the root has moved on (by the store this time).
	newObject(t, db, image.Slot{Name: "x", Value: image.Int(1)})
	if _, err := db.Undo(ctx, init, "tester"); !errors.Is(err, store.ErrUndo) {
		t.Errorf("undo of init after later changes: got %v, want ErrUndo", err)
	}
	err = db.View(ctx, func(tx *image.Tx) error { _, err := tx.Root(); return err })
	if err != nil {
		t.Errorf("root after refused undos: %v", err)
	}
}

// TestHostilePackBeforeFuture: a pack told to drop history before a time
// in the future must not make transactions committed after it
// un-undoable. The store records the cut as "packed-before" and refuses
// to undo any TID at or below it, so every commit until that date is
// refused. Pack should clamp the cut to the newest transaction it saw
// (or refuse a future time).
func TestHostilePackBeforeFuture(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "x", Value: image.Int(1)})
	if _, err := db.Pack(ctx, time.Now().AddDate(10, 0, 0)); err != nil {
		t.Logf("pack with a future time refused: %v", err)
	}
	tid := setSlot(t, db, oid, "x", image.Int(2))
	if _, err := db.Undo(ctx, tid, "tester"); err != nil {
		t.Errorf("undo of a transaction committed after the pack: %v", err)
	}
	if v := storedValue(t, db, oid, "x"); !image.Equal(v, image.Int(1)) {
		t.Errorf("x = %s after undo, want 1", image.Repr(v))
	}
}

// TestHostileDanglingRefCommitted: every successful Update must leave an
// image Verify accepts. A Ref to an OID that was never allocated is
// committed without complaint and Verify then reports a dangling
// reference (imagetest.Open's cleanup fails the test).
func TestHostileDanglingRefCommitted(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "x", Value: image.Int(1)})
	err := db.Update(ctx, func(tx *image.Tx) error {
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		return o.Set("ghost", image.Ref(1<<40))
	})
	if err != nil {
		return // refused at commit: fine
	}
	rep, verr := db.Verify(ctx)
	if verr != nil {
		t.Fatal(verr)
	}
	if !rep.OK() {
		t.Errorf("Update committed a Ref to an OID never allocated; Verify now reports: %v", rep.Problems)
	}
}

// TestHostileObjectIdentityAndLaziness: loading twice in one transaction
// gives the same *Object; a missing OID is ErrNotFound; Deref of a
// non-Ref is ErrNotObject; a non-Ref parent slot is skipped.
func TestHostileObjectIdentityAndLaziness(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "p*", Value: image.Int(3)}, image.Slot{Name: "q*", Value: image.Ref(image.RootOID)})
	for _, writable := range []bool{false, true} {
		fn := func(tx *image.Tx) error {
			o1, err := tx.Object(oid)
			if err != nil {
				return err
			}
			o2, _ := tx.Object(oid)
			if o1 != o2 {
				t.Errorf("writable=%v: two loads gave two objects", writable)
			}
			if _, err := tx.Object(store.OID(1 << 50)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("writable=%v: missing OID: %v", writable, err)
			}
			if _, err := tx.Deref(image.Int(1)); !errors.Is(err, image.ErrNotObject) {
				t.Errorf("writable=%v: Deref(1): %v", writable, err)
			}
			ps, err := o1.Parents()
			if err != nil || len(ps) != 1 || ps[0].OID() != image.RootOID {
				t.Errorf("writable=%v: parents %v %v, want just the root", writable, ps, err)
			}
			return nil
		}
		var err error
		if writable {
			err = db.Update(ctx, fn)
		} else {
			err = db.View(ctx, fn)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestHostileHugeSharedValue: a value built by sharing one container many
// times encodes to far more than its memory size (a DAG of depth d with
// fan-out f encodes f^d leaves). An Update of one whose encoding exceeds
// the store's record limit must fail with store.ErrTooLarge, and should
// stop encoding at the limit rather than materialising the whole
// encoding: at depth 40 the current encoder would need terabytes.
func TestHostileHugeSharedValue(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "x", Value: image.Int(0)})
	chunk := image.String(bytes.Repeat([]byte("x"), 1<<20)) // 1 MiB
	l1 := image.NewList()
	for range 16 {
		l1.Elems = append(l1.Elems, chunk)
	}
	l2 := image.NewList()
	for range 16 {
		l2.Elems = append(l2.Elems, l1) // 256 MiB encoded
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	allocated := ms.TotalAlloc
	err := db.Update(ctx, func(tx *image.Tx) error {
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		return o.Set("x", l2)
	})
	runtime.ReadMemStats(&ms)
	if got := ms.TotalAlloc - allocated; got >= 256<<20 {
		t.Errorf("refusing a 256 MiB value allocated %d MiB; the encoder should stop at the %d MiB record limit", got>>20, store.MaxRecordSize>>20)
	}
	if !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("commit of a 256 MiB value: got %v, want a size error", err)
	}
	if v := storedValue(t, db, oid, "x"); !image.Equal(v, image.Int(0)) {
		t.Errorf("x = %s after the refused commit", image.Repr(v))
	}
}
