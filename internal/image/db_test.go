package image_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
)

var ctx = context.Background()

// newObject creates an object linked from the root, so pack keeps it.
func newObject(t testing.TB, db *image.DB, slots ...image.Slot) store.OID {
	t.Helper()
	var oid store.OID
	err := db.Update(ctx, func(tx *image.Tx) error {
		o, err := tx.New(slots...)
		if err != nil {
			return err
		}
		root, err := tx.Root()
		if err != nil {
			return err
		}
		oid = o.OID()
		return root.Set("obj_"+oid.String()[4:], o.Ref())
	})
	if err != nil {
		t.Fatal(err)
	}
	return oid
}

func get(t testing.TB, db *image.DB, oid store.OID, name string) image.Value {
	t.Helper()
	var v image.Value
	err := db.View(ctx, func(tx *image.Tx) error {
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		v, _ = o.Get(name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestInitCreatesRootAndSystemObjects(t *testing.T) {
	db := imagetest.Open(t, nil)
	if created, err := db.Init(ctx); err != nil || created {
		t.Errorf("second Init: created=%v err=%v, want false, nil", created, err)
	}
	err := db.View(ctx, func(tx *image.Tx) error {
		root, err := tx.Root()
		if err != nil {
			return err
		}
		for _, name := range image.SystemNames {
			v, ok := root.Get(name)
			if !ok {
				t.Errorf("root has no %s", name)
				continue
			}
			o, err := tx.Deref(v)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if n, _ := o.Get("name"); !image.Equal(n, image.String(name)) {
				t.Errorf("%s is named %s", name, image.Repr(n))
			}
		}
		genesis, _ := root.Get("genesis")
		g, _ := tx.Deref(genesis)
		parents, err := g.Parents()
		if err != nil || len(parents) != 1 {
			t.Fatalf("genesis parents: %v %v", parents, err)
		}
		if n, _ := parents[0].Get("name"); !image.Equal(n, image.String("traits")) {
			t.Errorf("genesis parent* is %s, want traits", image.Repr(n))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNestedChangesAreSaved: mutating a container inside a slot, with no
// Set call, is saved at commit.
func TestNestedChangesAreSaved(t *testing.T) {
	db := imagetest.Open(t, nil)
	d := &image.Dict{}
	d.Set(image.String("k"), image.NewList(image.Int(1)))
	oid := newObject(t, db, image.Slot{Name: "data", Value: d})
	err := db.Update(ctx, func(tx *image.Tx) error {
		o, _ := tx.Object(oid)
		v, _ := o.Get("data")
		inner, _ := v.(*image.Dict).Get(image.String("k"))
		l := inner.(*image.List)
		l.Elems = append(l.Elems, image.Int(2))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := image.Repr(get(t, db, oid, "data"))
	if got != `{"k": [1, 2]}` {
		t.Errorf("after nested append: %s, want {\"k\": [1, 2]}", got)
	}
}

func TestUnchangedUpdateCommitsNothing(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "x", Value: image.Int(1)})
	before := db.Store().LastTID()
	tid, err := db.UpdateTID(ctx, func(tx *image.Tx) error {
		o, _ := tx.Object(oid)
		return o.Set("x", image.Int(1)) // same value: no change
	})
	if err != nil || tid != 0 || db.Store().LastTID() != before {
		t.Errorf("no-op update committed: tid %s err %v", tid, err)
	}
}

func TestRollbackOnErrorAndPanic(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "x", Value: image.Int(1)})
	boom := errors.New("boom")
	err := db.Update(ctx, func(tx *image.Tx) error {
		o, _ := tx.Object(oid)
		o.Set("x", image.Int(2))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	func() {
		defer func() {
			if r := recover(); r != "kaboom" {
				t.Errorf("recovered %v, want the panic to continue", r)
			}
		}()
		db.Update(ctx, func(tx *image.Tx) error {
			o, _ := tx.Object(oid)
			o.Set("x", image.Int(3))
			panic("kaboom")
		})
	}()
	if v := get(t, db, oid, "x"); !image.Equal(v, image.Int(1)) {
		t.Errorf("x = %s after failed updates, want 1", image.Repr(v))
	}
}

func TestViewIsReadOnly(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "x", Value: image.Int(1)})
	var kept *image.Object
	err := db.View(ctx, func(tx *image.Tx) error {
		o, _ := tx.Object(oid)
		kept = o
		if err := o.Set("x", image.Int(2)); !errors.Is(err, image.ErrReadOnly) {
			t.Errorf("Set in View: got %v, want ErrReadOnly", err)
		}
		if _, err := tx.New(); !errors.Is(err, image.ErrReadOnly) {
			t.Errorf("New in View: got %v, want ErrReadOnly", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := kept.Set("x", image.Int(3)); !errors.Is(err, image.ErrTxDone) {
		t.Errorf("Set after the transaction: got %v, want ErrTxDone", err)
	}
}

// TestSnapshotIsolation: a View keeps seeing its snapshot while updates
// commit, and ViewAt reads the past.
func TestSnapshotIsolation(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "x", Value: image.Int(1)})
	first := db.Store().LastTID()
	err := db.View(ctx, func(tx *image.Tx) error {
		if err := db.Update(ctx, func(tx2 *image.Tx) error {
			o, _ := tx2.Object(oid)
			return o.Set("x", image.Int(2))
		}); err != nil {
			return err
		}
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		if v, _ := o.Get("x"); !image.Equal(v, image.Int(1)) {
			t.Errorf("snapshot saw %s, want 1", image.Repr(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.ViewAt(ctx, first, func(tx *image.Tx) error {
		o, _ := tx.Object(oid)
		if v, _ := o.Get("x"); !image.Equal(v, image.Int(1)) {
			t.Errorf("ViewAt(%s) saw %s, want 1", first, image.Repr(v))
		}
		return nil
	})
}

// TestConflictsRetried: concurrent increments of one slot all land.
func TestConflictsRetried(t *testing.T) {
	db := imagetest.Open(t, &imagetest.Options{Image: &image.Options{MaxRetries: 1000}})
	oid := newObject(t, db, image.Slot{Name: "n", Value: image.Int(0)})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				err := db.Update(ctx, func(tx *image.Tx) error {
					o, err := tx.Object(oid)
					if err != nil {
						return err
					}
					n, _ := o.Get("n")
					return o.Set("n", n.(image.Int)+1)
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if v := get(t, db, oid, "n"); !image.Equal(v, image.Int(200)) {
		t.Errorf("n = %s, want 200", image.Repr(v))
	}
}

func TestConflictRetriesBounded(t *testing.T) {
	db := imagetest.Open(t, &imagetest.Options{Image: &image.Options{MaxRetries: 2}})
	oid := newObject(t, db, image.Slot{Name: "n", Value: image.Int(0)})
	runs := 0
	err := db.Update(ctx, func(tx *image.Tx) error {
		runs++
		o, _ := tx.Object(oid)
		// Another writer always gets in first.
		if err := db.Update(ctx, func(tx2 *image.Tx) error {
			o2, _ := tx2.Object(oid)
			return o2.Set("n", image.Int(runs*100))
		}); err != nil {
			return err
		}
		return o.Set("n", image.Int(-1))
	})
	if !errors.Is(err, store.ErrConflict) || runs != 3 {
		t.Errorf("got %v after %d runs, want a conflict after 3", err, runs)
	}
	if !strings.Contains(err.Error(), oid.String()) {
		t.Errorf("error %q does not name %s", err, oid)
	}
}

func TestUndoAndPack(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "x", Value: image.Int(1)})
	tid, err := db.UpdateTID(ctx, func(tx *image.Tx) error {
		o, _ := tx.Object(oid)
		return o.Set("x", image.Int(2))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Undo(ctx, tid, "tester"); err != nil {
		t.Fatal(err)
	}
	if v := get(t, db, oid, "x"); !image.Equal(v, image.Int(1)) {
		t.Errorf("after undo x = %s, want 1", image.Repr(v))
	}
	// An object dropped from the root is garbage for pack.
	var garbage store.OID
	db.Update(ctx, func(tx *image.Tx) error {
		o, _ := tx.New(image.Slot{Name: "junk", Value: image.String("j")})
		garbage = o.OID()
		return nil
	})
	time.Sleep(time.Millisecond)
	res, err := db.Pack(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != 1 {
		t.Errorf("pack dropped %d objects, want 1", res.Objects)
	}
	err = db.View(ctx, func(tx *image.Tx) error {
		_, err := tx.Object(garbage)
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("garbage after pack: %v, want ErrNotFound", err)
	}
	if v := get(t, db, oid, "x"); !image.Equal(v, image.Int(1)) {
		t.Errorf("after pack x = %s, want 1", image.Repr(v))
	}
}

func TestBlobs(t *testing.T) {
	db := imagetest.Open(t, nil)
	var ref image.BlobRef
	oid := store.OID(0)
	err := db.Update(ctx, func(tx *image.Tx) error {
		var err error
		if ref, err = tx.PutBlob(strings.NewReader("model weights")); err != nil {
			return err
		}
		o, err := tx.New(image.Slot{Name: "blob", Value: ref})
		oid = o.OID()
		root, _ := tx.Root()
		root.Set("model", o.Ref())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := get(t, db, oid, "blob"); !image.Equal(v, ref) || ref.Size != 13 {
		t.Errorf("blob slot = %s, want %s of 13 bytes", image.Repr(v), image.Repr(ref))
	}
}

// TestViewValuesAreCopies: mutating a container read in a View changes
// neither the image nor what later transactions read from the cache.
func TestViewValuesAreCopies(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "l", Value: image.NewList(image.Int(1))})
	for range 2 {
		db.View(ctx, func(tx *image.Tx) error {
			o, _ := tx.Object(oid)
			v, _ := o.Get("l")
			l := v.(*image.List)
			l.Elems = append(l.Elems, image.Int(99))
			s := o.Slots()[0].Value.(*image.List)
			s.Elems[0] = image.Int(-1)
			return nil
		})
	}
	if got := image.Repr(get(t, db, oid, "l")); got != "[1]" {
		t.Errorf("after mutating View copies: %s, want [1]", got)
	}
}

// Peek hands out the cached value itself (for reading); Get a copy the
// caller may change. A value built from peeked parts and set anew is
// saved.
func TestPeekSharesGetCopies(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "log", Value: image.NewList(image.NewList(image.Int(1)))})
	// Warm the cache with the committed revision.
	get(t, db, oid, "log")
	err := db.Update(ctx, func(tx *image.Tx) error {
		o, _ := tx.Object(oid)
		peeked, _ := o.Peek("log")
		again, _ := o.Peek("log")
		got, _ := o.Get("log")
		if peeked != again || got == peeked {
			t.Errorf("Peek should share (%p, %p) and Get copy (%p)", peeked, again, got)
		}
		old := peeked.(*image.List).Elems
		return o.Set("log", &image.List{Elems: append(append([]image.Value{}, old...), image.Int(2))})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := image.Repr(get(t, db, oid, "log")); got != `[[1], 2]` {
		t.Errorf("after the update: %s", got)
	}
	imagetest.Verify(t, db)
}

// PeekSlots yields every own slot in order, each value as Peek hands it
// out, and reading through it leaves an Update's object untouched.
func TestPeekSlots(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "a", Value: image.Int(1)},
		image.Slot{Name: "m", Value: &image.Method{Source: "def m(self):\n    return 1"}},
		image.Slot{Name: "l", Value: image.NewList(image.Int(2))})
	get(t, db, oid, "a")
	before := db.Store().LastTID()
	err := db.Update(ctx, func(tx *image.Tx) error {
		o, _ := tx.Object(oid)
		var names []string
		for name, v := range o.PeekSlots() {
			names = append(names, name)
			if peeked, _ := o.Peek(name); peeked != v {
				t.Errorf("slot %s: PeekSlots gave %p, Peek %p", name, v, peeked)
			}
		}
		if got, want := strings.Join(names, " "), strings.Join(o.Names(), " "); got != want {
			t.Errorf("PeekSlots gave the slots %s, want %s", got, want)
		}
		for name := range o.PeekSlots() {
			if name == "m" {
				break // stopping early is allowed
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if after := db.Store().LastTID(); after != before {
		t.Errorf("reading with PeekSlots committed %s", after)
	}
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
		if err := inTx(ctx, db, writable, fn); err != nil {
			t.Fatal(err)
		}
	}
}

// inTx runs fn in an Update when writable, else in a View.
func inTx(ctx context.Context, db *image.DB, writable bool, fn func(*image.Tx) error) error {
	if writable {
		return db.Update(ctx, fn)
	}
	return db.View(ctx, fn)
}
