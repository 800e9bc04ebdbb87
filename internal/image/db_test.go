package image_test

import (
	"context"
	"errors"
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
