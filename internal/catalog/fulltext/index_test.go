package fulltext

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/blevesearch/bleve/v2"
	index "github.com/blevesearch/bleve_index_api"
)

// newTestIndex creates an index in a temporary directory; its cleanup
// checks the index's consistency and closes it.
func newTestIndex(tb testing.TB) *Index {
	tb.Helper()
	ix, err := Create(filepath.Join(tb.TempDir(), "text"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if !ix.closed {
			checkIndex(tb, ix)
		}
		if err := ix.Close(); err != nil {
			tb.Error(err)
		}
	})
	return ix
}

// checkIndex checks that the stats record counts what the index holds:
// its entries and the token counts stored with them.
func checkIndex(tb testing.TB, ix *Index) {
	tb.Helper()
	adv, err := ix.bi.Advanced()
	if err != nil {
		tb.Fatal(err)
	}
	r, err := adv.Reader()
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	ids, err := r.DocIDReaderAll()
	if err != nil {
		tb.Fatal(err)
	}
	defer ids.Close()
	want := stats{Version: formatVersion}
	for {
		id, err := ids.Next()
		if err != nil {
			tb.Fatal(err)
		}
		if id == nil {
			break
		}
		ext, err := r.ExternalID(id)
		if err != nil {
			tb.Fatal(err)
		}
		d, err := r.Document(ext)
		if err != nil || d == nil {
			tb.Fatalf("entry %q: %v", ext, err)
		}
		n, err := storedLengths(d)
		if err != nil {
			tb.Fatalf("entry %q: %v", ext, err)
		}
		want.add(1, n)
	}
	want.Gen = ix.stats.Load().Gen // batches are not counted from the entries
	if diff := cmp.Diff(*ix.stats.Load(), want); diff != "" {
		tb.Errorf("stats (-got +want):\n%s", diff)
	}
	st, err := loadStats(ix.bi)
	if err != nil {
		tb.Fatal(err)
	}
	if diff := cmp.Diff(*st, want); diff != "" {
		tb.Errorf("stored stats (-got +want):\n%s", diff)
	}
}

func put(tb testing.TB, ix *Index, entries ...Entry) {
	tb.Helper()
	if err := ix.Put(entries); err != nil {
		tb.Fatal(err)
	}
}

// ids searches and returns the hits' IDs in order.
func ids(tb testing.TB, ix *Index, q Query) []string {
	tb.Helper()
	hits, err := ix.Search(context.Background(), q)
	if err != nil {
		tb.Fatalf("search %q: %v", q.Text, err)
	}
	var out []string
	for _, h := range hits {
		out = append(out, h.ID)
	}
	return out
}

func count(tb testing.TB, ix *Index) uint64 {
	tb.Helper()
	n, err := ix.Count()
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// sampleEntries are a few entries of each kind the catalog indexes.
func sampleEntries(n int) []Entry {
	var es []Entry
	for i := range n {
		es = append(es, Entry{
			ID:     fmt.Sprintf("c%d", i),
			Title:  fmt.Sprintf("Document %d", i/3),
			Text:   fmt.Sprintf("Chunk %d talks about segment number %d and its merges.", i, i),
			Fields: map[string]string{"kind": "chunk", "doc": fmt.Sprintf("d%d", i/3)},
		})
	}
	return es
}

func TestReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "text")
	ix, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	put(t, ix, sampleEntries(30)...)
	put(t, ix, Entry{ID: "c0", Title: "Replaced", Text: "A zebra replaced chunk zero."})
	if err := ix.Delete([]string{"c1", "c2"}); err != nil {
		t.Fatal(err)
	}
	before := ids(t, ix, Query{Text: "segment zebra", K: 100})
	checkIndex(t, ix)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	ix, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	checkIndex(t, ix)
	if got := count(t, ix); got != 28 {
		t.Errorf("got %d entries, want 28", got)
	}
	if diff := cmp.Diff(ids(t, ix, Query{Text: "segment zebra", K: 100}), before); diff != "" {
		t.Errorf("hits after reopening (-got +want):\n%s", diff)
	}
	if got := ids(t, ix, Query{Text: "zebra"}); !slices.Equal(got, []string{"c0"}) {
		t.Errorf("zebra: got %v, want [c0]", got)
	}
	put(t, ix, Entry{ID: "new", Text: "written after reopening"})
	if got := count(t, ix); got != 29 {
		t.Errorf("got %d entries, want 29", got)
	}
}

func TestCreateReplaces(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "text")
	ix, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	put(t, ix, sampleEntries(5)...)
	ix.Close()
	ix, err = Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if got := count(t, ix); got != 0 {
		t.Errorf("got %d entries in a new index, want 0", got)
	}

	// Create also takes the place of a file, and makes missing parents.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{file, filepath.Join(t.TempDir(), "a", "b", "text")} {
		ix, err := Create(d)
		if err != nil {
			t.Fatalf("create %s: %v", d, err)
		}
		ix.Close()
	}
}

func TestInUse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "text")
	ix, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	put(t, ix, sampleEntries(3)...)
	if _, err := Open(dir); !errors.Is(err, ErrInUse) {
		t.Errorf("Open of an open index: got %v, want ErrInUse", err)
	}
	if _, err := Create(dir); !errors.Is(err, ErrInUse) {
		t.Errorf("Create over an open index: got %v, want ErrInUse", err)
	}
	if got := count(t, ix); got != 3 {
		t.Errorf("the open index has %d entries, want 3", got)
	}
	ix.Close()
	ix, err = Open(dir)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	ix.Close()
}

func TestClosed(t *testing.T) {
	ix, err := Create(filepath.Join(t.TempDir(), "text"))
	if err != nil {
		t.Fatal(err)
	}
	ix.Close()
	if err := ix.Put(sampleEntries(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Put: got %v, want ErrClosed", err)
	}
	if err := ix.Delete([]string{"c0"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Delete: got %v, want ErrClosed", err)
	}
	if _, err := ix.Search(context.Background(), Query{Text: "chunk"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Search: got %v, want ErrClosed", err)
	}
	if _, err := ix.Count(); !errors.Is(err, ErrClosed) {
		t.Errorf("Count: got %v, want ErrClosed", err)
	}
}

// TestOpenDamaged damages an index's files in each way below, and checks
// that Open says missing or damaged (never panics, never opens), and that
// Create then rebuilds in the same place.
func TestOpenDamaged(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   error
	}{
		{"no directory", func(t *testing.T, dir string) { must(t, os.RemoveAll(dir)) }, ErrMissing},
		{"empty directory", func(t *testing.T, dir string) {
			must(t, os.RemoveAll(dir))
			must(t, os.Mkdir(dir, 0o755))
		}, ErrMissing},
		{"a file instead", func(t *testing.T, dir string) {
			must(t, os.RemoveAll(dir))
			must(t, os.WriteFile(dir, []byte("not an index"), 0o644))
		}, ErrDamaged},
		{"garbage files only", func(t *testing.T, dir string) {
			must(t, os.RemoveAll(dir))
			must(t, os.Mkdir(dir, 0o755))
			must(t, os.WriteFile(filepath.Join(dir, "junk"), []byte("junk"), 0o644))
			must(t, os.WriteFile(filepath.Join(dir, "000000000001.zap"), []byte("junk"), 0o644))
		}, ErrDamaged},
		{"no metadata", func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, "index_meta.json"))) }, ErrDamaged},
		{"garbage metadata", func(t *testing.T, dir string) { overwrite(t, filepath.Join(dir, "index_meta.json"), 0, "{]") }, ErrDamaged},
		{"no store", func(t *testing.T, dir string) { must(t, os.RemoveAll(filepath.Join(dir, "store"))) }, ErrDamaged},
		{"empty snapshot file", func(t *testing.T, dir string) { must(t, os.Truncate(rootBolt(dir), 0)) }, ErrDamaged},
		{"garbage snapshot file", func(t *testing.T, dir string) {
			must(t, os.WriteFile(rootBolt(dir), []byte(strings.Repeat("garbage!", 4096)), 0o600))
		}, ErrDamaged},
		{"snapshot file half gone", func(t *testing.T, dir string) { truncateHalf(t, rootBolt(dir)) }, ErrDamaged},
		{"segment gone", func(t *testing.T, dir string) { must(t, os.Remove(segments(t, dir)[0])) }, ErrDamaged},
		{"segment truncated", func(t *testing.T, dir string) { truncateHalf(t, segments(t, dir)[0]) }, ErrDamaged},
		{"segment footer truncated", func(t *testing.T, dir string) {
			seg := segments(t, dir)[0]
			fi, err := os.Stat(seg)
			must(t, err)
			must(t, os.Truncate(seg, fi.Size()-3))
		}, ErrDamaged},
		{"segment byte flipped", func(t *testing.T, dir string) { flipByte(t, segments(t, dir)[0]) }, ErrDamaged},
		{"segment overwritten", func(t *testing.T, dir string) {
			seg := segments(t, dir)[0]
			fi, err := os.Stat(seg)
			must(t, err)
			must(t, os.WriteFile(seg, []byte(strings.Repeat("\xff", int(fi.Size()))), 0o600))
		}, ErrDamaged},
		{"not this package's", func(t *testing.T, dir string) {
			must(t, os.RemoveAll(dir))
			bi, err := bleve.New(dir, bleve.NewIndexMapping())
			must(t, err)
			must(t, bi.Index("x", map[string]any{"text": "hello"}))
			must(t, bi.Close())
		}, ErrDamaged},
		{"another format version", func(t *testing.T, dir string) {
			setInternal(t, dir, statsKey, `{"version": 99}`)
		}, ErrDamaged},
		{"stats disagree", func(t *testing.T, dir string) {
			setInternal(t, dir, statsKey, fmt.Sprintf(`{"version": %d, "docs": 7}`, formatVersion))
		}, ErrDamaged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "text")
			ix, err := Create(dir)
			must(t, err)
			put(t, ix, sampleEntries(20)...)
			must(t, ix.Close())
			tt.damage(t, dir)

			ix, err = Open(dir)
			if err == nil {
				ix.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if tt.want == ErrDamaged && errors.Is(err, ErrMissing) || tt.want == ErrMissing && errors.Is(err, ErrDamaged) {
				t.Errorf("%v is both missing and damaged", err)
			}
			t.Log(err)

			ix, err = Create(dir)
			if err != nil {
				t.Fatalf("rebuild: %v", err)
			}
			put(t, ix, sampleEntries(2)...)
			must(t, ix.Close())
			ix, err = Open(dir)
			if err != nil {
				t.Fatalf("open the rebuilt index: %v", err)
			}
			if got := count(t, ix); got != 2 {
				t.Errorf("the rebuilt index has %d entries, want 2", got)
			}
			must(t, ix.Close())
		})
	}
}

// TestOpenExtraFiles checks that files an index does not refer to are no
// damage: scorch leaves old segments behind when it stops mid-merge.
func TestOpenExtraFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "text")
	ix, err := Create(dir)
	must(t, err)
	put(t, ix, sampleEntries(20)...)
	must(t, ix.Close())
	must(t, os.WriteFile(filepath.Join(dir, "store", "999999999999.zap"), []byte("half a merge"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o600))
	ix, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if got := count(t, ix); got != 20 {
		t.Errorf("got %d entries, want 20", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func rootBolt(dir string) string { return filepath.Join(dir, "store", "root.bolt") }

// segments returns the index's segment files.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "store", "*.zap"))
	must(t, err)
	if len(segs) == 0 {
		t.Fatal("no segment files")
	}
	return segs
}

func truncateHalf(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	must(t, err)
	must(t, os.Truncate(path, fi.Size()/2))
}

func flipByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	b[len(b)/2] ^= 0x55
	must(t, os.WriteFile(path, b, 0o600))
}

func overwrite(t *testing.T, path string, at int64, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt([]byte(s), at)
	must(t, err)
	must(t, f.Close())
}

// setInternal writes a bleve internal value into the closed index in dir.
func setInternal(t *testing.T, dir, key, val string) {
	t.Helper()
	bi, err := bleve.Open(dir)
	must(t, err)
	must(t, bi.SetInternal([]byte(key), []byte(val)))
	must(t, bi.Close())
}

var _ index.Document // the index API is bleve_index_api's

// TestOpenCutSnapshotFile cuts the snapshot file at each page boundary:
// Open must succeed with every entry or report damage, and Create must
// rebuild even where bbolt panicked and left the file locked.
func TestOpenCutSnapshotFile(t *testing.T) {
	pristine := filepath.Join(t.TempDir(), "text")
	ix, err := Create(pristine)
	must(t, err)
	for i := range 4 {
		es := sampleEntries(10)
		for j := range es {
			es[j].ID = fmt.Sprintf("%d-%s", i, es[j].ID)
		}
		put(t, ix, es...)
	}
	must(t, ix.Close())
	fi, err := os.Stat(rootBolt(pristine))
	must(t, err)
	const page = 4096
	damaged := 0
	for size := int64(0); size < fi.Size(); size += page {
		dir := filepath.Join(t.TempDir(), "text")
		must(t, os.CopyFS(dir, os.DirFS(pristine)))
		must(t, os.Truncate(rootBolt(dir), size))
		ix, err := Open(dir)
		switch {
		case err == nil:
			if got := count(t, ix); got != 40 {
				t.Errorf("cut at %d: opened with %d entries, want 40", size, got)
			}
			must(t, ix.Close())
		case errors.Is(err, ErrDamaged):
			damaged++
			t.Logf("cut at %d: %v", size, err)
		default:
			t.Fatalf("cut at %d: got %v, want ErrDamaged", size, err)
		}
		ix, err = Create(dir)
		if err != nil {
			t.Fatalf("cut at %d: rebuild: %v", size, err)
		}
		// The rebuilt index is live: no earlier failure may let it be
		// opened twice or removed.
		if _, err := Open(dir); !errors.Is(err, ErrInUse) {
			t.Errorf("cut at %d: Open of the live rebuilt index: got %v, want ErrInUse", size, err)
		}
		if _, err := Create(dir); !errors.Is(err, ErrInUse) {
			t.Errorf("cut at %d: Create over the live rebuilt index: got %v, want ErrInUse", size, err)
		}
		must(t, ix.Close())
	}
	if damaged == 0 {
		t.Error("no cut was found damaged")
	}
}

// TestOpenCutSegment cuts a segment file at points through it: Open must
// report damage each time, and Create rebuild.
func TestOpenCutSegment(t *testing.T) {
	pristine := filepath.Join(t.TempDir(), "text")
	ix, err := Create(pristine)
	must(t, err)
	put(t, ix, sampleEntries(40)...)
	must(t, ix.Close())
	seg, err := filepath.Rel(pristine, segments(t, pristine)[0])
	must(t, err)
	fi, err := os.Stat(filepath.Join(pristine, seg))
	must(t, err)
	for i := range 24 {
		size := fi.Size() * int64(i) / 24
		if i == 23 {
			size = fi.Size() - 1
		}
		dir := filepath.Join(t.TempDir(), "text")
		must(t, os.CopyFS(dir, os.DirFS(pristine)))
		must(t, os.Truncate(filepath.Join(dir, seg), size))
		if ix, err := Open(dir); !errors.Is(err, ErrDamaged) {
			if err == nil {
				ix.Close()
			}
			t.Fatalf("cut at %d of %d: got %v, want ErrDamaged", size, fi.Size(), err)
		}
		ix, err := Create(dir)
		if err != nil {
			t.Fatalf("cut at %d: rebuild: %v", size, err)
		}
		must(t, ix.Close())
	}
}
