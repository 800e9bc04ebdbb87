package image_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
)

// parentGraph creates one object per name, each with a "name" slot and
// the parent slots graph gives it ("p*", "p2*", ... in order), all
// reachable from the root. It returns each name's OID.
func parentGraph(t testing.TB, db *image.DB, graph map[string][]string) map[string]store.OID {
	t.Helper()
	oids := map[string]store.OID{}
	err := db.Update(ctx, func(tx *image.Tx) error {
		root, err := tx.Root()
		if err != nil {
			return err
		}
		objs := map[string]*image.Object{}
		for name := range graph {
			o, err := tx.New(image.Slot{Name: "name", Value: image.String(name)})
			if err != nil {
				return err
			}
			objs[name], oids[name] = o, o.OID()
			if err := root.Set("lineage_"+name, o.Ref()); err != nil {
				return err
			}
		}
		for name, parents := range graph {
			for i, p := range parents {
				if err := objs[name].Set(parentSlot(i), objs[p].Ref()); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return oids
}

func parentSlot(i int) string {
	if i == 0 {
		return "p*"
	}
	return fmt.Sprintf("p%d*", i+1)
}

// lineageNames walks oid's lineage in a View and in an Update, checks
// that both give the same, and returns the objects' names and the error
// that ended the walk.
func lineageNames(t testing.TB, db *image.DB, oid store.OID) ([]string, error) {
	t.Helper()
	var got [2][]string
	var walkErr [2]error
	for i, run := range []func(func(*image.Tx) error) error{
		func(fn func(*image.Tx) error) error { return db.View(ctx, fn) },
		func(fn func(*image.Tx) error) error { return db.Update(ctx, fn) },
	} {
		err := run(func(tx *image.Tx) error {
			o, err := tx.Object(oid)
			if err != nil {
				return err
			}
			for x, err := range tx.Lineage(o) {
				if err != nil {
					if x != nil {
						t.Errorf("an error came with object %s", x.OID())
					}
					walkErr[i] = err
					break
				}
				n, _ := x.Get("name")
				s, _ := n.(image.String)
				got[i] = append(got[i], string(s))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(got[0], got[1]); diff != "" || fmt.Sprint(walkErr[0]) != fmt.Sprint(walkErr[1]) {
		t.Errorf("View and Update walks differ (-view +update):\n%s\nerrors %v, %v", diff, walkErr[0], walkErr[1])
	}
	return got[0], walkErr[0]
}

func TestLineageOrder(t *testing.T) {
	tests := []struct {
		name  string
		graph map[string][]string
		want  []string
	}{
		{
			name:  "no parents",
			graph: map[string][]string{"o": nil},
			want:  []string{"o"},
		},
		{
			// A grandparent through the first parent comes before the
			// second parent.
			name:  "depth first, slot order",
			graph: map[string][]string{"o": {"p1", "p2"}, "p1": {"g"}, "p2": nil, "g": nil},
			want:  []string{"o", "p1", "g", "p2"},
		},
		{
			name:  "diamond",
			graph: map[string][]string{"o": {"l", "r"}, "l": {"top"}, "r": {"top"}, "top": nil},
			want:  []string{"o", "l", "top", "r"},
		},
		{
			// b, a parent of o, is reached first through a's chain: it
			// comes where that walk reaches it, before c's other parent.
			name:  "shared ancestor reached deep first",
			graph: map[string][]string{"o": {"a", "b"}, "a": {"c"}, "c": {"b", "e"}, "b": nil, "e": nil},
			want:  []string{"o", "a", "c", "b", "e"},
		},
		{
			name:  "cycle",
			graph: map[string][]string{"x": {"y"}, "y": {"z"}, "z": {"x", "w"}, "w": nil},
			want:  []string{"x", "y", "z", "w"},
		},
		{
			name:  "own parent",
			graph: map[string][]string{"o": {"o", "p", "p"}, "p": nil},
			want:  []string{"o", "p"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := imagetest.Open(t, nil)
			oids := parentGraph(t, db, tt.graph)
			got, err := lineageNames(t, db, oids[tt.want[0]])
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("lineage (-got +want):\n%s", diff)
			}
		})
	}
}

// TestLineageSkipsNonParents: a parent slot holding something other than
// a reference is skipped, and a reference in a slot that is not a parent
// slot is not followed.
func TestLineageSkipsNonParents(t *testing.T) {
	db := imagetest.Open(t, nil)
	oids := parentGraph(t, db, map[string][]string{"o": {"p"}, "p": nil, "other": nil})
	err := db.Update(ctx, func(tx *image.Tx) error {
		o, err := tx.Object(oids["o"])
		if err != nil {
			return err
		}
		if err := o.Set("a*", image.Int(1)); err != nil {
			return err
		}
		return o.Set("friend", image.Ref(oids["other"]))
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := lineageNames(t, db, oids["o"])
	if diff := cmp.Diff(got, []string{"o", "p"}); diff != "" || err != nil {
		t.Errorf("lineage (-got +want):\n%s\nerror %v", diff, err)
	}
}

// TestLineageMissingParent: the walk yields everything before the parent
// it cannot load, then an error naming the parent slot and its object;
// a walk stopped before that point loads nothing further and sees no
// error.
func TestLineageMissingParent(t *testing.T) {
	db := imagetest.Open(t, nil)
	oids := parentGraph(t, db, map[string][]string{"o": {"p1"}, "p1": {"g"}, "g": nil, "p3": nil})
	missing := store.OID(1 << 50)
	errRollback := errors.New("rollback")
	// A dangling reference cannot be committed: the walk runs in the
	// Update that makes it, which is then rolled back.
	err := db.Update(ctx, func(tx *image.Tx) error {
		o, err := tx.Object(oids["o"])
		if err != nil {
			return err
		}
		if err := o.Set("lost*", image.Ref(missing)); err != nil {
			return err
		}
		if err := o.Set("p3*", image.Ref(oids["p3"])); err != nil {
			return err
		}
		var got []store.OID
		var walkErr error
		for x, err := range tx.Lineage(o) {
			if err != nil {
				walkErr = err
				break
			}
			got = append(got, x.OID())
		}
		if diff := cmp.Diff(got, []store.OID{oids["o"], oids["p1"], oids["g"]}); diff != "" {
			t.Errorf("lineage (-got +want):\n%s", diff)
		}
		if !errors.Is(walkErr, store.ErrNotFound) {
			t.Errorf("got error %v, want one wrapping store.ErrNotFound", walkErr)
		}
		if msg := fmt.Sprint(walkErr); !strings.Contains(msg, `"lost*"`) || !strings.Contains(msg, oids["o"].String()) {
			t.Errorf("error %q does not name the slot lost* of %s", msg, oids["o"])
		}
		n := 0
		for x, err := range tx.Lineage(o) {
			if err != nil {
				t.Errorf("a walk stopped at %s saw %v", x.OID(), err)
			}
			if n++; n == 3 {
				break
			}
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
}

// TestLineageBound: a chain of MaxLineage objects is walked whole; one
// more makes the walk end, after MaxLineage objects, with
// ErrLineageTooLong.
func TestLineageBound(t *testing.T) {
	db := imagetest.Open(t, nil)
	graph := map[string][]string{}
	for i := range image.MaxLineage {
		graph[fmt.Sprint(i)] = []string{fmt.Sprint(i + 1)}
	}
	graph[fmt.Sprint(image.MaxLineage)] = nil
	oids := parentGraph(t, db, graph)

	got, err := lineageNames(t, db, oids["1"])
	if err != nil || len(got) != image.MaxLineage {
		t.Errorf("a chain of %d: walked %d, error %v; want all, no error", image.MaxLineage, len(got), err)
	}
	got, err = lineageNames(t, db, oids["0"])
	if !errors.Is(err, image.ErrLineageTooLong) || len(got) != image.MaxLineage {
		t.Errorf("a chain of %d: walked %d, error %v; want %d and ErrLineageTooLong", image.MaxLineage+1, len(got), err, image.MaxLineage)
	}
	if len(got) > 0 && (got[0] != "0" || got[len(got)-1] != fmt.Sprint(image.MaxLineage-1)) {
		t.Errorf("walked %s..%s, want 0..%d", got[0], got[len(got)-1], image.MaxLineage-1)
	}
}

// TestLineageOtherTx: an object from another transaction is a programmer
// error.
func TestLineageOtherTx(t *testing.T) {
	db := imagetest.Open(t, nil)
	var o *image.Object
	err := db.View(ctx, func(tx *image.Tx) error {
		var err error
		o, err = tx.Root()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(ctx, func(tx *image.Tx) error {
		defer func() {
			if recover() == nil {
				t.Error("Lineage of another transaction's object did not panic")
			}
		}()
		tx.Lineage(o)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
