package image_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
)

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
	// Told for the client: the object and slot, the size and the limit.
	var big *image.TooLargeError
	if !errors.As(err, &big) || big.Object != oid.String() || big.Slot != "x" || big.Size <= store.MaxRecordSize {
		t.Fatalf("got %v, want a TooLargeError of %s, slot x", err, oid)
	}
	want := fmt.Sprintf(`image: %s, slot "x", is too large to store: it encodes to at least %d bytes, and an object's record holds at most %d bytes (64 MiB)`, oid, big.Size, store.MaxRecordSize)
	if err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if v := storedValue(t, db, oid, "x"); !image.Equal(v, image.Int(0)) {
		t.Errorf("x = %s after the refused commit", image.Repr(v))
	}
}
