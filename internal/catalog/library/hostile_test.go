package library_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/catalog"
	"batos/internal/catalog/library"
	"batos/internal/image"
	"batos/internal/image/imagetest"
)

// TestAddFIFO: a FIFO named on the command line fails alone, at once,
// instead of waiting for a writer that never comes; one inside a
// directory is left out.
func TestAddFIFO(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, nil)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	text := writeFile(t, filepath.Join(dir, "owls.txt"), sentences("owl", 4))
	done := make(chan []library.Outcome, 1)
	go func() {
		outs, err := l.AddPaths(t.Context(), []string{fifo, text}, nil, nil)
		if err != nil {
			t.Error(err)
		}
		done <- outs
	}()
	select {
	case outs := <-done:
		if len(outs) != 2 || outs[0].Err == nil || !strings.Contains(outs[0].Err.Error(), "not a regular file") || !outs[1].OK() {
			t.Errorf("outcomes %+v: want the FIFO refused as not a regular file and owls.txt added", outs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("adding a FIFO hangs")
	}
	outs, err := l.AddPaths(t.Context(), []string{dir}, nil, nil)
	if err != nil || len(outs) != 1 || outs[0].Result != catalog.Unchanged {
		t.Errorf("the directory: %+v, %v; want owls.txt alone, unchanged", outs, err)
	}
}

// TestAddFileThatLostItsText: a file whose document is in the catalog,
// emptied or turned binary, loses its document, and the outcome says
// so: its old text is no answer any more.
func TestAddFileThatLostItsText(t *testing.T) {
	for _, now := range []string{"", "\x00\x01\x02binary\x00"} {
		db := imagetest.Open(t, nil)
		l := openLibrary(t, db, nil)
		path := writeFile(t, filepath.Join(t.TempDir(), "s.txt"), "The armadillo digs at night. It sleeps by day.")
		if outs, err := l.AddPaths(t.Context(), []string{path}, nil, nil); err != nil || !outs[0].OK() {
			t.Fatalf("add: %+v, %v", outs, err)
		}
		writeFile(t, path, now)
		outs, err := l.AddPaths(t.Context(), []string{path}, nil, nil)
		if err != nil || outs[0].Skipped == "" || !strings.Contains(outs[0].Skipped, "taken out of the catalog") || outs[0].ID != catalog.IDOf(path) {
			t.Errorf("re-add of %q: %+v, %v; want it skipped, saying its document was taken out", now, outs, err)
		}
		if got := titles(search(t, l, library.Query{Text: "armadillo"})); len(got) != 0 {
			t.Errorf("after the file lost its text, armadillo is found in %v", got)
		}
		if docs, err := l.List(t.Context()); err != nil || len(docs) != 0 {
			t.Errorf("list: %d documents, %v", len(docs), err)
		}
	}
}

// TestAddSymlinkedDirectory: a directory named through a symbolic link
// is walked; links inside a directory are not followed.
func TestAddSymlinkedDirectory(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, nil)
	base := t.TempDir()
	real := filepath.Join(base, "real")
	writeFile(t, filepath.Join(real, "owls.txt"), sentences("owl", 4))
	link := filepath.Join(base, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(real, "loop")); err != nil {
		t.Fatal(err)
	}
	outs, err := l.AddPaths(t.Context(), []string{link}, nil, nil)
	if err != nil || len(outs) != 1 || !outs[0].OK() || filepath.Base(outs[0].Path) != "owls.txt" {
		t.Fatalf("add through a link: %+v, %v", outs, err)
	}
}

// TestMalformedEntry: an entry of the documents dict that is not a
// document, as a user may write from the REPL, does not hide the others
// from list and stats, and remove takes it out.
func TestMalformedEntry(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, nil)
	if o := l.AddText(t.Context(), "owls.txt", []byte(sentences("owl", 4)), "", nil); !o.OK() {
		t.Fatalf("add: %+v", o)
	}
	err := db.Update(t.Context(), func(tx *image.Tx) error {
		root, err := tx.Root()
		if err != nil {
			return err
		}
		v, _ := root.Get("knowledge_catalog")
		cat, err := tx.Deref(v)
		if err != nil {
			return err
		}
		d, _ := cat.Get("documents")
		docs := d.(*image.Dict)
		if err := docs.Set(image.String("dzzz"), image.Int(5)); err != nil {
			return err
		}
		return cat.Set("documents", docs)
	})
	if err != nil {
		t.Fatal(err)
	}
	docs, err := l.List(t.Context())
	if err != nil || len(docs) != 1 || docs[0].Title != "owls.txt" {
		t.Errorf("list over a malformed entry: %+v, %v", docs, err)
	}
	st, err := l.Stats(t.Context())
	if err != nil || st.Documents != 1 || st.Malformed != 1 {
		t.Errorf("stats over a malformed entry: %+v, %v", st.Summary, err)
	}
	if got := titles(search(t, l, library.Query{Text: "owl"})); !cmp.Equal(got, []string{"owls.txt"}) {
		t.Errorf("owl found in %v", got)
	}
	if _, err := l.Remove(t.Context(), "dzzz"); err != nil {
		t.Fatalf("remove the malformed entry: %v", err)
	}
	if st, err := l.Stats(t.Context()); err != nil || st.Malformed != 0 || st.Documents != 1 {
		t.Errorf("after remove: %+v, %v", st.Summary, err)
	}
}

// TestShowUncleanPath: a path with "." and ".." names the same document
// as its clean form.
func TestShowUncleanPath(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, nil)
	dir := t.TempDir()
	path := writeFile(t, filepath.Join(dir, "a", "owls.txt"), sentences("owl", 4))
	if outs, err := l.AddPaths(t.Context(), []string{path}, nil, nil); err != nil || !outs[0].OK() {
		t.Fatalf("add: %+v, %v", outs, err)
	}
	unclean := filepath.Join(dir, "a") + "/./../a/owls.txt"
	if d, _, err := l.Show(t.Context(), unclean); err != nil || d.Path != path {
		t.Errorf("show %s: %v, %v", unclean, d, err)
	}
}
