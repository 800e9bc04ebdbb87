package index_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/catalog/index"
	"batos/internal/llm/llmtest"
	"batos/internal/store"
)

// crash copies an open index's directory, as a crash would leave it:
// what was applied to the full-text index is there, state.json and the
// vector file are as last saved.
// bleve merges segments in the background, so the copy is taken again
// until the directory did not change while it was copied.
func crash(t *testing.T, ix *index.Index) string {
	t.Helper()
	for range 100 {
		dir := filepath.Join(t.TempDir(), "crashed.index")
		before, err := listing(ix.Dir())
		if err == nil {
			err = tryCopyDir(ix.Dir(), dir)
		}
		if err == nil {
			after, err := listing(ix.Dir())
			if err == nil && maps.Equal(before, after) {
				return dir
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s did not keep still long enough to be copied", ix.Dir())
	return ""
}

// listing maps each file under dir to its size and modification time.
func listing(dir string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[path] = fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	return out, err
}

// TestCrashBeforeSave applies changes to an open index that saves its
// state only at Close, takes the directory as a crash would leave it, and
// opens that: the changes since the last save are replayed, and the
// answers are a fresh index's.
func TestCrashBeforeSave(t *testing.T) {
	slow := &index.Options{Model: model, FlushInterval: time.Hour}
	f := newFixture(t)
	fill(f)
	ix, _ := f.open(slow)
	before := f.db.Store().LastTID()
	// Each change is searched for, so the index applies it at once.
	f.addEmbedded("field.txt", sentences("meadow", 6), nil, model)
	search(t, ix, index.Query{Text: "meadow"})
	f.addEmbedded("nile.txt", sentences("delta", 6), nil, model)
	search(t, ix, index.Query{Text: "delta"})
	f.remove("etna.txt")
	search(t, ix, index.Query{Text: "volcano"})
	f.setMethod("helper", "describe_yourself", "def describe_yourself(self):\n    return 'a kettle'")
	f.deleteSlot("helper", "erupt_now")
	f.setMethod("genesis", "sing_along", "def sing_along(self):\n    return 'la'")
	search(t, ix, index.Query{Text: "kettle", Kind: index.Methods})
	dir := crash(t, ix)
	commits := 0
	txs, _ := f.db.Store().Log(context.Background(), store.LogQuery{})
	for _, tx := range txs {
		if tx.TID > before {
			commits++
		}
	}

	crashed, rep := f.openAt(dir, slow)
	if rep.Rebuilt || rep.Replayed != commits {
		t.Errorf("open after the crash: %+v, want %d transactions replayed", rep, commits)
	}
	probes := append(standardProbes(f),
		probe{"meadow", index.Query{Text: "meadow delta", Vector: llmtest.WordVector("meadow", dims)}},
		probe{"methods after", index.Query{Text: "kettle teapot erupt sing", Kind: index.Methods}},
	)
	f.checkConsistent(crashed, slow, probes...)
	for _, tt := range []struct {
		words string
		kind  index.Kind
		want  int
	}{{"volcano", index.Chunks, 0}, {"river", index.Chunks, 0}, {"delta", index.Chunks, 1}, {"teapot erupt", index.Methods, 0}, {"kettle sing", index.Methods, 2}} {
		hits := search(t, crashed, index.Query{Text: tt.words, Kind: tt.kind})
		if tt.kind == index.Chunks && len(docsFound(hits)) != tt.want || tt.kind == index.Methods && len(hits) != tt.want {
			t.Errorf("after the crash %q found %+v, want %d", tt.words, hits, tt.want)
		}
	}
}

// TestCrashBetweenVectorsAndState saves the vector file and state, then
// puts back the older state, as a crash between the two saves leaves
// them: the replay over newer vectors comes out right.
func TestCrashBetweenVectorsAndState(t *testing.T) {
	slow := &index.Options{Model: model, FlushInterval: time.Hour}
	f := newFixture(t)
	fill(f)
	ix, _ := f.open(slow)
	old, err := os.ReadFile(filepath.Join(f.dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.addEmbedded("nile.txt", sentences("delta", 6), nil, model)
	f.addEmbedded("field.txt", sentences("meadow", 6), nil, model)
	f.remove("ice.txt")
	if err := ix.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ix.Flush(); err != nil {
		t.Fatal(err)
	}
	// Flushed, a crash loses nothing.
	if flushed, rep := f.openAt(crash(t, ix), slow); rep.Rebuilt || rep.Replayed != 0 {
		t.Errorf("open after a crash right after Flush: %+v, want up to date", rep)
	} else {
		f.checkConsistent(flushed, slow, standardProbes(f)...)
	}
	dir := crash(t, ix)
	writeFile(t, filepath.Join(dir, "state.json"), old)
	crashed, rep := f.openAt(dir, slow)
	if rep.Rebuilt || rep.Replayed != 3 {
		t.Errorf("open after the crash: %+v, want 3 transactions replayed", rep)
	}
	f.checkConsistent(crashed, slow, append(standardProbes(f),
		probe{"delta by vector", index.Query{Vector: llmtest.WordVector("delta meadow", dims), K: 50}})...)
}

// TestRebuildCutShort cancels a rebuild after its first document: the
// directory, as a crash then leaves it, is rebuilt when opened rather
// than taken for whole; and the open index rebuilds at its next search.
func TestRebuildCutShort(t *testing.T) {
	f := newFixture(t)
	fill(f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var armed atomic.Bool
	var log logged
	opts := &index.Options{FlushInterval: time.Hour, Logger: log.logger(), Progress: func(done, total int) {
		if armed.Load() && done == 1 {
			cancel()
		}
	}}
	ix, _ := f.open(opts)
	armed.Store(true)
	if _, err := ix.Reindex(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Reindex cancelled after its first document: %v", err)
	}
	armed.Store(false)
	crashed, rep := f.openAt(crash(t, ix), opts)
	// The rebuild removed state.json first: the text index it left is
	// taken for damage, never for whole.
	if !rep.Rebuilt || rep.Reason != "the index's state.json is missing" {
		t.Errorf("open after a crash mid-rebuild: %+v, want rebuilt because state.json is missing", rep)
	}
	f.checkConsistent(crashed, nil, standardProbes(f)...)

	if got := docsFound(search(t, ix, index.Query{Text: "volcano"}), "etna.txt"); !cmp.Equal(got, []string{"etna.txt"}) {
		t.Errorf("after the cut-short rebuild, volcano found in %v", got)
	}
	if !strings.Contains(log.String(), "did not finish") {
		t.Errorf("log %q, want the second rebuild and why", log.String())
	}
	f.checkConsistent(ix, nil, standardProbes(f)...)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if _, rep := f.open(opts); rep.Rebuilt || rep.Replayed != 0 {
		t.Errorf("reopened: %+v, want up to date", rep)
	}
}

// TestFlushInterval: past the interval, a sync saves what it applied.
func TestFlushInterval(t *testing.T) {
	f := newFixture(t)
	fill(f)
	opts := &index.Options{Model: model, FlushInterval: time.Nanosecond}
	ix, _ := f.open(opts)
	f.addEmbedded("field.txt", sentences("meadow", 6), nil, model)
	f.setMethod("helper", "graze", "def graze(self):\n    return 'grass'")
	search(t, ix, index.Query{Text: "meadow"})
	crashed, rep := f.openAt(crash(t, ix), opts)
	if rep.Rebuilt || rep.Replayed != 0 {
		t.Errorf("open after a crash following a sync past the interval: %+v, want up to date", rep)
	}
	f.checkConsistent(crashed, opts, append(standardProbes(f), probe{"meadow", index.Query{Text: "meadow graze", Vector: llmtest.WordVector("meadow", dims)}})...)
}
