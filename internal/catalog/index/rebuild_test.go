package index_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/catalog/index"
	"batos/internal/catalog/vector"
	"batos/internal/llm/llmtest"
	"batos/internal/store"
)

// damage is a way to spoil an index directory, and what Open must say.
type damage struct {
	name   string
	spoil  func(t *testing.T, dir string)
	reason string
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// editState rewrites state.json through fn, as a generic JSON object.
func editState(t *testing.T, dir string, fn func(st map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "state.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // TIDs do not fit a float64
	if err := dec.Decode(&st); err != nil {
		t.Fatal(err)
	}
	fn(st)
	if b, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b)
}

// eachFile calls fn on every regular file under dir whose name ends in
// suffix, and fails the test if there is none.
func eachFile(t *testing.T, dir, suffix string, fn func(path string, size int64)) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, suffix) {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n++
		fn(path, fi.Size())
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("files *%s under %s: %d, %v", suffix, dir, n, err)
	}
}

var damages = []damage{
	{"directory deleted", func(t *testing.T, dir string) { os.RemoveAll(dir) }, "no index yet"},
	{"state deleted", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "state.json")) }, "state.json is missing"},
	{"state garbage", func(t *testing.T, dir string) {
		writeFile(t, filepath.Join(dir, "state.json"), []byte("\x00\xffnot json"))
	}, "state.json is damaged"},
	{"state empty", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "state.json"), nil) }, "state.json is damaged"},
	{"state truncated", func(t *testing.T, dir string) {
		path := filepath.Join(dir, "state.json")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		os.Truncate(path, fi.Size()/2)
	}, "state.json is damaged"},
	{"state of another format", func(t *testing.T, dir string) {
		editState(t, dir, func(st map[string]any) { st["format"] = 99 })
	}, "format 99"},
	{"state with a null document", func(t *testing.T, dir string) {
		editState(t, dir, func(st map[string]any) {
			for id := range st["docs"].(map[string]any) {
				st["docs"].(map[string]any)[id] = nil
			}
		})
	}, "state.json is damaged"},
	{"state with a document of the wrong shape", func(t *testing.T, dir string) {
		editState(t, dir, func(st map[string]any) {
			for id := range st["docs"].(map[string]any) {
				st["docs"].(map[string]any)[id] = map[string]any{"chunks": "many"}
			}
		})
	}, "state.json is damaged"},
	{"state from the future", func(t *testing.T, dir string) {
		editState(t, dir, func(st map[string]any) { st["last_tid"] = uint64(store.MaxTID) })
	}, "newer than the image's newest"},
	{"state naming a transaction the log lacks", func(t *testing.T, dir string) {
		editState(t, dir, func(st map[string]any) { st["last_tid"] = 12345 })
	}, "no longer has transaction"},
	{"state without vectors' width", func(t *testing.T, dir string) {
		editState(t, dir, func(st map[string]any) { st["dims"] = 3 })
	}, "dimensions"},
	{"text directory deleted", func(t *testing.T, dir string) { os.RemoveAll(filepath.Join(dir, "text")) }, "full-text index"},
	{"text directory emptied", func(t *testing.T, dir string) {
		os.RemoveAll(filepath.Join(dir, "text"))
		os.Mkdir(filepath.Join(dir, "text"), 0o755)
	}, "full-text index"},
	{"text directory a file", func(t *testing.T, dir string) {
		os.RemoveAll(filepath.Join(dir, "text"))
		writeFile(t, filepath.Join(dir, "text"), []byte("text"))
	}, "full-text index"},
	{"text segments garbage", func(t *testing.T, dir string) {
		eachFile(t, filepath.Join(dir, "text"), ".zap", func(path string, size int64) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			f.WriteAt(bytes.Repeat([]byte{0xa5}, 64), size/2)
		})
	}, "full-text index"},
	{"text segments truncated", func(t *testing.T, dir string) {
		eachFile(t, filepath.Join(dir, "text"), ".zap", func(path string, size int64) { os.Truncate(path, size/3) })
	}, "full-text index"},
	{"text snapshot garbage", func(t *testing.T, dir string) {
		eachFile(t, filepath.Join(dir, "text"), "root.bolt", func(path string, size int64) {
			writeFile(t, path, bytes.Repeat([]byte("garbage!"), int(size)/8))
		})
	}, "full-text index"},
	{"text metadata deleted", func(t *testing.T, dir string) {
		eachFile(t, filepath.Join(dir, "text"), "index_meta.json", func(path string, size int64) { os.Remove(path) })
	}, "full-text index"},
	{"vectors deleted", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "vectors")) }, "vector index"},
	{"vectors truncated", func(t *testing.T, dir string) {
		path := filepath.Join(dir, "vectors")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		os.Truncate(path, fi.Size()-7)
	}, "vector index"},
	{"vectors cut to the header", func(t *testing.T, dir string) { os.Truncate(filepath.Join(dir, "vectors"), 48) }, "vector index"},
	{"vectors garbage", func(t *testing.T, dir string) {
		path := filepath.Join(dir, "vectors")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := 100; i < len(b); i += 97 {
			b[i] ^= 0x5a
		}
		writeFile(t, path, b)
	}, "vector index"},
	{"vectors empty", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "vectors"), nil) }, "vector index"},
	{"vectors of another width", func(t *testing.T, dir string) {
		v := vector.New(8)
		v.Add(1, []float32{1, 2, 3, 4, 5, 6, 7, 8})
		if err := v.Save(filepath.Join(dir, "vectors")); err != nil {
			t.Fatal(err)
		}
	}, "dimensions"},
}

// TestRebuildsWhatItCannotUse spoils copies of a closed index in each
// way and opens them: rebuilt, with the reason, never a panic, and
// searches answer as a fresh index does.
func TestRebuildsWhatItCannotUse(t *testing.T) {
	f := newFixture(t)
	fill(f)
	ix, _ := f.open(withModel)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	fresh, _ := f.openAt(t.TempDir(), withModel)
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			f := f.with(t)
			dir := filepath.Join(t.TempDir(), "spoilt.index")
			copyDir(t, f.dir, dir)
			d.spoil(t, dir)
			ix, rep := f.openAt(dir, withModel)
			if !rep.Rebuilt || !strings.Contains(rep.Reason, d.reason) {
				t.Errorf("open: %+v, want rebuilt because %q", rep, d.reason)
			}
			f.sameAs(ix, fresh, standardProbes(f)...)
			if err := ix.Close(); err != nil {
				t.Fatal(err)
			}
			// The rebuilt index was saved whole.
			ix, rep = f.openAt(dir, withModel)
			if rep.Rebuilt || rep.Replayed != 0 {
				t.Errorf("second open: %+v, want up to date", rep)
			}
			if st, err := ix.Stats(context.Background()); err != nil || st.Vectors == 0 || st.Documents != 3 || st.Methods != 2 {
				t.Errorf("stats after the rebuild: %+v, %v", st, err)
			}
		})
	}
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := tryCopyDir(src, dst); err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

func tryCopyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// TestOtherImage opens an index beside an image it was not built from,
// older and newer: rebuilt, finding only the new image's documents.
func TestOtherImage(t *testing.T) {
	a := newFixture(t)
	a.add("nile.txt", sentences("river", 6), nil)
	ixa, _ := a.open(nil)
	ixa.Close()

	b := newFixture(t)
	b.add("etna.txt", sentences("volcano", 6), nil)
	b.add("ice.txt", sentences("glacier", 6), nil)
	ixb, _ := b.open(nil)
	ixb.Close()

	for _, tt := range []struct {
		name     string
		from, to *fixture
		reason   string
		word     string
		other    string
	}{
		{"older index", a, b, "no longer has transaction", "volcano", "river"},
		{"newer index", b, a, "newer than the image's newest", "river", "volcano"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			os.RemoveAll(tt.to.dir)
			copyDir(t, tt.from.dir, tt.to.dir)
			ix, rep := tt.to.open(nil)
			if !rep.Rebuilt || !strings.Contains(rep.Reason, tt.reason) {
				t.Errorf("open: %+v, want rebuilt because %q", rep, tt.reason)
			}
			if hits := search(t, ix, index.Query{Text: tt.word}); len(hits) == 0 {
				t.Errorf("%s not found", tt.word)
			}
			if hits := search(t, ix, index.Query{Text: tt.other}); len(hits) != 0 {
				t.Errorf("%s, of the other image, found: %+v", tt.other, hits)
			}
			tt.to.checkConsistent(ix, nil, standardProbes(tt.to)...)
			ix.Close()
		})
	}
}

// logged collects a logger's messages.
type logged struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logged) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logged) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, string(p))
	return len(p), nil
}

func (l *logged) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.msgs, "")
}

// packAway commits a change to the object the last transaction wrote
// alone, and packs: that transaction leaves the log.
func packAway(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	last := f.db.Store().LastTID()
	f.setMethod("helper", "erupt_now", "def erupt_now(self):\n    return 'magma'")
	res, err := f.db.Pack(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Store().Transaction(ctx, last); !errors.Is(err, store.ErrNoTransaction) || res.Transactions == 0 {
		t.Fatalf("after the pack (%+v), transaction %s: %v, want it gone", res, last, err)
	}
}

// TestPackedLog packs away the last transaction the index saw: closed,
// Open rebuilds and says why; open, the next search rebuilds and logs it.
func TestPackedLog(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		f := newFixture(t)
		fill(f)
		f.setMethod("helper", "erupt_now", "def erupt_now(self):\n    return 'lava'")
		ix, _ := f.open(withModel)
		ix.Close()
		packAway(t, f)
		ix, rep := f.open(withModel)
		if !rep.Rebuilt || !strings.Contains(rep.Reason, "no longer has transaction") {
			t.Errorf("open after a pack: %+v, want rebuilt because the log lost the index's last transaction", rep)
		}
		f.checkConsistent(ix, withModel, append(standardProbes(f), probe{"magma", index.Query{Text: "magma", Kind: index.Methods}})...)
	})
	t.Run("open", func(t *testing.T) {
		f := newFixture(t)
		fill(f)
		f.setMethod("helper", "erupt_now", "def erupt_now(self):\n    return 'lava'")
		var log logged
		ix, _ := f.open(&index.Options{Model: model, Logger: log.logger()})
		packAway(t, f)
		got := methodsFound(search(t, ix, index.Query{Text: "magma", Kind: index.Methods}))
		if want := []string{methodName(f.oidOf("helper"), "erupt_now")}; !cmp.Equal(got, want) {
			t.Errorf("magma found %v, want %v", got, want)
		}
		if hits := search(t, ix, index.Query{Text: "lava", Kind: index.Methods}); len(hits) != 0 {
			t.Errorf("lava, no longer in the method, found %+v", hits)
		}
		if !strings.Contains(log.String(), "rebuilt") || !strings.Contains(log.String(), "no longer has transaction") {
			t.Errorf("log %q, want the rebuild and its reason", log.String())
		}
		f.checkConsistent(ix, withModel, standardProbes(f)...)
	})
}

// TestModelChange opens an index with another embedding model than it
// was built for: rebuilt, and only the model's vectors are indexed.
func TestModelChange(t *testing.T) {
	f := newFixture(t)
	fill(f)
	ix, _ := f.open(withModel)
	st, err := ix.Stats(context.Background())
	if err != nil || st.Vectors == 0 || st.Model != model || st.Dims != dims {
		t.Fatalf("stats with the documents' model: %+v, %v", st, err)
	}
	ix.Close()

	other := &index.Options{Model: "other-model"}
	ix, rep := f.open(other)
	if !rep.Rebuilt || !strings.Contains(rep.Reason, `from "words" to "other-model"`) {
		t.Errorf("open with another model: %+v", rep)
	}
	if ix.Model() != "other-model" {
		t.Errorf("Model() = %q", ix.Model())
	}
	if st, err := ix.Stats(context.Background()); err != nil || st.Vectors != 0 || st.Documents != 3 {
		t.Errorf("stats with another model: %+v, %v; want no vectors (none are by it), 3 documents", st, err)
	}
	hits := search(t, ix, index.Query{Text: "river", Vector: llmtest.WordVector("river", dims)})
	for _, h := range hits {
		if h.VectorRank != 0 {
			t.Errorf("hit %+v found by vector, with no vectors by the model", h)
		}
	}
	if got := docsFound(hits, "nile.txt"); !cmp.Equal(got, []string{"nile.txt"}) {
		t.Errorf("river found in %v", got)
	}
	f.checkConsistent(ix, other, standardProbes(f)...)
	ix.Close()

	ix, rep = f.open(nil)
	if !rep.Rebuilt || !strings.Contains(rep.Reason, `to ""`) {
		t.Errorf("open without a model: %+v", rep)
	}
	ix.Close()
	if _, rep = f.open(nil); rep.Rebuilt {
		t.Errorf("second open without a model: %+v", rep)
	}
}

// TestInUse: a second Index on the directory is refused, and the first
// is left whole.
func TestInUse(t *testing.T) {
	f := newFixture(t)
	fill(f)
	ix, _ := f.open(withModel)
	for _, opts := range []*index.Options{withModel, {Model: "another"}} {
		if _, _, err := index.Open(context.Background(), f.dir, f.db, opts); !errors.Is(err, index.ErrInUse) {
			t.Errorf("second Open with %+v: %v, want ErrInUse", opts, err)
		}
	}
	f.checkConsistent(ix, withModel, standardProbes(f)...)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if _, rep := f.open(withModel); rep.Rebuilt {
		t.Errorf("reopened: %+v, want up to date", rep)
	}
}
