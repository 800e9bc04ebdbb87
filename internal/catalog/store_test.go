package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
)

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

var testOpts = &Options{Bounds: Bounds{MinTokens: 8, MaxTokens: 40}, Now: func() time.Time { return testNow }}

// manySentences is plain text of n sentences in paragraphs of four.
func manySentences(n int, word string) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Sentence %d speaks of %s and other things.", i, word)
		if i%4 == 3 {
			b.WriteString("\n\n")
		} else {
			b.WriteString(" ")
		}
	}
	return []byte(b.String())
}

func add(t *testing.T, db *image.DB, src Source, opts *Options) (*Doc, AddResult) {
	t.Helper()
	var d *Doc
	var r AddResult
	err := db.Update(t.Context(), func(tx *image.Tx) error {
		var err error
		d, r, err = Add(tx, src, opts)
		return err
	})
	if err != nil {
		t.Fatalf("add %s: %v", src.Path, err)
	}
	return d, r
}

func get(t *testing.T, db *image.DB, id string) (*Doc, []Passage) {
	t.Helper()
	var d *Doc
	var ps []Passage
	err := db.View(t.Context(), func(tx *image.Tx) error {
		var err error
		d, ps, err = Get(tx, id)
		return err
	})
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return d, ps
}

func list(t *testing.T, db *image.DB) []*Doc {
	t.Helper()
	var ds []*Doc
	if err := db.View(t.Context(), func(tx *image.Tx) (err error) { ds, err = List(tx); return err }); err != nil {
		t.Fatalf("list: %v", err)
	}
	return ds
}

// gone reports whether none of oids is in the image.
func gone(t *testing.T, db *image.DB, oids []store.OID) {
	t.Helper()
	err := db.View(t.Context(), func(tx *image.Tx) error {
		for _, oid := range oids {
			if _, err := tx.Object(oid); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("object %s after pack: got err %v, want not found", oid, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func pack(t *testing.T, db *image.DB) {
	t.Helper()
	if _, err := db.Pack(context.Background(), time.Now()); err != nil {
		t.Fatalf("pack: %v", err)
	}
}

func TestAddAndGet(t *testing.T) {
	db := imagetest.Open(t, nil)
	data := manySentences(20, "rivers")
	src := Source{Path: "notes/rivers.txt", Data: data, Meta: map[string]string{"topic": "geography", "lang": "en"}}
	d, r := add(t, db, src, testOpts)
	if r != Added {
		t.Errorf("result: got %v, want added", r)
	}
	got, ps := get(t, db, IDOf(src.Path))
	want := &Doc{
		OID: d.OID, ID: IDOf(src.Path), Title: src.Path, Path: src.Path, SHA256: d.SHA256,
		Kind: KindText, Meta: src.Meta, Chunks: d.Chunks, Added: testNow, Size: len(data),
		Tokens: d.Tokens, Bounds: testOpts.Bounds,
	}
	if diff := cmp.Diff(got, want, ignoreSerial); diff != "" {
		t.Errorf("document (-got +want):\n%s", diff)
	}
	if len(ps) < 2 || len(ps) != len(got.Chunks) {
		t.Fatalf("got %d passages for %d chunks, want several", len(ps), len(got.Chunks))
	}
	tokens := 0
	for i, p := range ps {
		if p.Position != i || p.Doc != d.OID || p.OID != got.Chunks[i] {
			t.Errorf("passage %d: got position %d doc %s oid %s", i, p.Position, p.Doc, p.OID)
		}
		// The span slices the passage back out of the source: the same
		// words, with the source's white space between them.
		if src := string(data[p.Span.Start:p.Span.End]); !cmp.Equal(strings.Fields(src), strings.Fields(p.Text)) {
			t.Errorf("passage %d: span %v holds %q, want the words of %q", i, p.Span, src, p.Text)
		}
		if p.Tokens > testOpts.Bounds.MaxTokens {
			t.Errorf("passage %d: %d tokens, over %d", i, p.Tokens, testOpts.Bounds.MaxTokens)
		}
		tokens += p.Tokens
	}
	if tokens != got.Tokens {
		t.Errorf("document tokens: got %d, want the chunks' %d", got.Tokens, tokens)
	}
	var s Summary
	if err := db.View(t.Context(), func(tx *image.Tx) (err error) { s, err = Stats(tx); return err }); err != nil {
		t.Fatal(err)
	}
	if want := (Summary{Documents: 1, Chunks: len(ps), Bytes: len(data), Tokens: tokens}); s != want {
		t.Errorf("stats: got %+v, want %+v", s, want)
	}
}

func TestAddIdempotent(t *testing.T) {
	db := imagetest.Open(t, nil)
	src := Source{Path: "a.md", Data: []byte("# Title\n\nSome text here. And more text.\n"), Meta: map[string]string{"k": "v"}}
	first, _ := add(t, db, src, testOpts)
	var serial store.TID
	_ = db.View(t.Context(), func(tx *image.Tx) error {
		o, err := tx.Object(first.OID)
		serial = o.Serial()
		return err
	})
	later := *testOpts
	later.Now = func() time.Time { return testNow.Add(time.Hour) }
	again, r := add(t, db, src, &later)
	if r != Unchanged {
		t.Errorf("result: got %v, want unchanged", r)
	}
	if diff := cmp.Diff(again, first, ignoreSerial); diff != "" {
		t.Errorf("document re-added (-got +want):\n%s", diff)
	}
	_ = db.View(t.Context(), func(tx *image.Tx) error {
		o, err := tx.Object(first.OID)
		if err == nil && o.Serial() != serial {
			t.Errorf("document object rewritten: serial %d, want %d", o.Serial(), serial)
		}
		return err
	})
	// Other metadata is a change.
	src.Meta = map[string]string{"k": "w"}
	if d, r := add(t, db, src, testOpts); r != Replaced || d.Meta["k"] != "w" {
		t.Errorf("new metadata: got %v with %v, want replaced with k=w", r, d.Meta)
	}
}

func TestAddReplacesChanged(t *testing.T) {
	db := imagetest.Open(t, nil)
	old, _ := add(t, db, Source{Path: "f.txt", Data: manySentences(12, "cats")}, testOpts)
	other, _ := add(t, db, Source{Path: "g.txt", Data: manySentences(4, "dogs")}, testOpts)
	d, r := add(t, db, Source{Path: "f.txt", Data: manySentences(8, "birds")}, testOpts)
	if r != Replaced || d.ID != old.ID || d.OID != old.OID {
		t.Errorf("got %v %s %s, want replaced, same id %s and object %s", r, d.ID, d.OID, old.ID, old.OID)
	}
	_, ps := get(t, db, d.ID)
	for _, p := range ps {
		if strings.Contains(p.Text, "cats") {
			t.Errorf("passage %d still holds the old text: %q", p.Position, p.Text)
		}
	}
	if got := list(t, db); len(got) != 2 || got[0].ID != old.ID || got[1].ID != other.ID {
		t.Errorf("list: got %d documents, want f.txt then g.txt", len(got))
	}
	pack(t, db)
	gone(t, db, old.Chunks)
	if _, ps := get(t, db, d.ID); len(ps) != len(d.Chunks) {
		t.Errorf("after pack: %d passages, want %d", len(ps), len(d.Chunks))
	}
}

func TestRemove(t *testing.T) {
	db := imagetest.Open(t, nil)
	d, _ := add(t, db, Source{Path: "f.txt", Data: manySentences(8, "cats")}, testOpts)
	keep, _ := add(t, db, Source{Path: "g.txt", Data: manySentences(8, "dogs")}, testOpts)
	if err := db.Update(t.Context(), func(tx *image.Tx) error { return Remove(tx, d.ID) }); err != nil {
		t.Fatalf("remove: %v", err)
	}
	err := db.Update(t.Context(), func(tx *image.Tx) error { return Remove(tx, d.ID) })
	if !errors.Is(err, ErrNoDocument) {
		t.Errorf("remove again: got %v, want ErrNoDocument", err)
	}
	err = db.View(t.Context(), func(tx *image.Tx) error { _, _, err := Get(tx, d.ID); return err })
	if !errors.Is(err, ErrNoDocument) {
		t.Errorf("get removed: got %v, want ErrNoDocument", err)
	}
	pack(t, db)
	gone(t, db, append(d.Chunks, d.OID))
	if got := list(t, db); len(got) != 1 || got[0].ID != keep.ID {
		t.Errorf("list: got %d documents, want only g.txt", len(got))
	}
	if _, ps := get(t, db, keep.ID); len(ps) != len(keep.Chunks) {
		t.Errorf("kept document: %d passages, want %d", len(ps), len(keep.Chunks))
	}
}

func TestAddRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  Source
		opts *Options
		want error
		says string
	}{
		{"binary", Source{Path: "x.txt", Data: []byte("text\x00\x01\x02 more")}, nil, ErrBinary, ""},
		{"too large", Source{Path: "big.txt", Data: manySentences(10, "x")}, &Options{MaxBytes: 100}, ErrTooLarge, "limit of 100 bytes"},
		{"empty", Source{Path: "e.txt", Data: []byte(" \n\n ")}, nil, ErrEmpty, ""},
		{"bad bounds", Source{Path: "b.txt", Data: manySentences(2, "x")}, &Options{Bounds: Bounds{MinTokens: 30, MaxTokens: 40}}, ErrBounds, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := imagetest.Open(t, nil)
			var tid store.TID
			_ = db.View(t.Context(), func(tx *image.Tx) error { tid = tx.Snapshot(); return nil })
			err := db.Update(t.Context(), func(tx *image.Tx) error {
				_, _, err := Add(tx, tc.src, tc.opts)
				return err
			})
			if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.says) {
				t.Errorf("got %v, want %v saying %q", err, tc.want, tc.says)
			}
			_ = db.View(t.Context(), func(tx *image.Tx) error {
				if tx.Snapshot() != tid {
					t.Errorf("image at TID %d, want %d: something was written", tx.Snapshot(), tid)
				}
				return nil
			})
		})
	}
}

// TestAddAllOrNothing fails a transaction after one document is added and
// while another is: neither is in the image, and a replaced document keeps
// its old chunks.
func TestAddAllOrNothing(t *testing.T) {
	db := imagetest.Open(t, nil)
	kept, _ := add(t, db, Source{Path: "kept.txt", Data: manySentences(8, "cats")}, testOpts)
	err := db.Update(t.Context(), func(tx *image.Tx) error {
		if _, _, err := Add(tx, Source{Path: "new.txt", Data: manySentences(8, "owls")}, testOpts); err != nil {
			return err
		}
		if _, r, err := Add(tx, Source{Path: "kept.txt", Data: manySentences(8, "dogs")}, testOpts); err != nil || r != Replaced {
			return fmt.Errorf("replace: %v %v", r, err)
		}
		_, _, err := Add(tx, Source{Path: "bin.dat", Data: []byte{0, 1, 2, 3}}, testOpts)
		return err
	})
	if !errors.Is(err, ErrBinary) {
		t.Fatalf("got %v, want ErrBinary", err)
	}
	got := list(t, db)
	if len(got) != 1 || got[0].ID != kept.ID {
		t.Fatalf("list: got %d documents, want only kept.txt", len(got))
	}
	if diff := cmp.Diff(got[0], kept, ignoreSerial); diff != "" {
		t.Errorf("kept document (-got +want):\n%s", diff)
	}
	_, ps := get(t, db, kept.ID)
	if len(ps) == 0 || !strings.Contains(ps[0].Text, "cats") {
		t.Errorf("kept document's chunks changed: %v", ps)
	}
}

func TestIDOf(t *testing.T) {
	a, b := IDOf("a.txt"), IDOf("b.txt")
	if a == b || a != IDOf("a.txt") || len(a) != 17 || a[0] != 'd' {
		t.Errorf("IDOf: got %q and %q, want stable, distinct, d and 16 hex digits", a, b)
	}
}

// ignoreSerial compares documents without their serial: Add returns the
// document before its transaction commits, so before it has one.
var ignoreSerial = cmpopts.IgnoreFields(Doc{}, "Serial")
