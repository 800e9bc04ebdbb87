package index_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/catalog"
	"batos/internal/catalog/index"
	"batos/internal/catalog/vector"
	"batos/internal/image"
	"batos/internal/llm/llmtest"
	"batos/internal/store"
)

var withModel = &index.Options{Model: model}

// standardProbes are searches over what fill puts in an image.
func standardProbes(f *fixture) []probe {
	return []probe{
		{"river", index.Query{Text: "river"}},
		{"volcano", index.Query{Text: "volcano"}},
		{"glacier", index.Query{Text: "glacier ice"}},
		{"river by vector", index.Query{Vector: llmtest.WordVector("the river ways", dims)}},
		{"hybrid", index.Query{Text: "volcano", Vector: llmtest.WordVector("glacier ways", dims), K: 30}},
		{"methods", index.Query{Text: "describe erupt", Kind: index.Methods}},
	}
}

// fill adds embedded and plain documents and methods.
func fill(f *fixture) {
	f.addEmbedded("nile.txt", sentences("river", 9), map[string]string{"shelf": "water"}, model)
	f.addEmbedded("ice.txt", sentences("glacier", 6), map[string]string{"shelf": "water"}, model)
	f.add("etna.txt", sentences("volcano", 6), map[string]string{"shelf": "fire"})
	f.setMethod("helper", "describe_yourself", "def describe_yourself(self):\n    return 'a teapot'")
	f.setMethod("helper", "erupt_now", "def erupt_now(self):\n    return 'lava'")
}

func TestOpenBuildsThenCatchesUp(t *testing.T) {
	f := newFixture(t)
	f.add("nile.txt", sentences("river", 6), nil)
	ix, rep := f.open(nil)
	if !rep.Rebuilt || rep.Reason != "no index yet" || rep.Replayed != 0 {
		t.Errorf("first open: %+v, want rebuilt because there is no index yet", rep)
	}
	if s := rep.String(); !strings.Contains(s, "rebuilt") || !strings.Contains(s, "no index yet") {
		t.Errorf("report %q", s)
	}
	if got := docsFound(search(t, ix, index.Query{Text: "river"}), "nile.txt"); !cmp.Equal(got, []string{"nile.txt"}) {
		t.Errorf("river found in %v, want rivers.txt", got)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	ix, rep = f.open(nil)
	if rep.Rebuilt || rep.Replayed != 0 || rep.String() != "index up to date" {
		t.Errorf("reopened with nothing new: %+v (%s), want up to date", rep, rep)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	f.add("etna.txt", sentences("volcano", 6), nil)
	f.setMethod("helper", "erupt_now", "def erupt_now(self):\n    return 'lava'")
	f.setMethod("helper", "describe_yourself", "def describe_yourself(self):\n    return 'a teapot'")
	ix, rep = f.open(nil)
	if rep.Rebuilt || rep.Replayed != 3 || !strings.Contains(rep.String(), "caught up with 3 transactions") {
		t.Errorf("reopened after 3 commits: %+v (%s), want 3 caught up", rep, rep)
	}
	if got := docsFound(search(t, ix, index.Query{Text: "volcano"}), "etna.txt"); !cmp.Equal(got, []string{"etna.txt"}) {
		t.Errorf("volcano found in %v, want volcanoes.txt", got)
	}
	helper := f.oidOf("helper")
	if got := methodsFound(search(t, ix, index.Query{Text: "erupt", Kind: index.Methods})); !cmp.Equal(got, []string{methodName(helper, "erupt_now")}) {
		t.Errorf("erupt found %v", got)
	}
	f.checkConsistent(ix, nil, standardProbes(f)...)
}

// step is a change to the image and what searches find after it.
type step struct {
	name   string
	change func(f *fixture)
	// docs: a query's words and the documents it finds; methods: a
	// method query's words and the selectors of helper it finds.
	docs    map[string][]string
	methods map[string][]string
}

var steps = []step{
	{
		name: "add",
		change: func(f *fixture) {
			f.addEmbedded("nile.txt", sentences("river", 6), nil, model)
			f.add("etna.txt", sentences("volcano", 6), nil)
		},
		docs: map[string][]string{"river": {"nile.txt"}, "volcano": {"etna.txt"}},
	},
	{
		name:   "replace",
		change: func(f *fixture) { f.addEmbedded("nile.txt", sentences("glacier", 6), nil, model) },
		docs:   map[string][]string{"river": nil, "glacier": {"nile.txt"}, "volcano": {"etna.txt"}},
	},
	{
		name:   "remove",
		change: func(f *fixture) { f.remove("etna.txt") },
		docs:   map[string][]string{"volcano": nil, "glacier": {"nile.txt"}},
	},
	{
		name: "undo the remove",
		change: func(f *fixture) {
			txs, err := f.db.Store().Log(context.Background(), store.LogQuery{Limit: 1})
			if err != nil {
				f.t.Fatal(err)
			}
			if _, err := f.db.Undo(context.Background(), txs[0].TID, "tester"); err != nil {
				f.t.Fatal(err)
			}
		},
		docs: map[string][]string{"volcano": {"etna.txt"}},
	},
	{
		name: "method set",
		change: func(f *fixture) {
			f.setMethod("helper", "describe_yourself", "def describe_yourself(self):\n    return 'a teapot'")
		},
		methods: map[string][]string{"describe": {"describe_yourself"}, "describe_yourself": {"describe_yourself"}, "teapot": {"describe_yourself"}},
		docs:    map[string][]string{"describe": nil},
	},
	{
		name: "method changed",
		change: func(f *fixture) {
			f.setMethod("helper", "describe_yourself", "def describe_yourself(self):\n    return 'a kettle'")
		},
		methods: map[string][]string{"teapot": nil, "kettle": {"describe_yourself"}},
	},
	{
		name: "second method",
		change: func(f *fixture) {
			f.setMethod("helper", "erupt_now", "def erupt_now(self):\n    return 'lava'")
		},
		methods: map[string][]string{"erupt": {"erupt_now"}, "describe": {"describe_yourself"}},
	},
	{
		name:    "method deleted",
		change:  func(f *fixture) { f.deleteSlot("helper", "describe_yourself") },
		methods: map[string][]string{"describe": nil, "kettle": nil, "erupt": {"erupt_now"}},
	},
}

// checkStep checks what the searches of s find in ix.
func checkStep(t *testing.T, f *fixture, ix *index.Index, s step) {
	t.Helper()
	for words, want := range s.docs {
		got := docsFound(search(t, ix, index.Query{Text: words}), "nile.txt", "etna.txt")
		if !cmp.Equal(got, want) {
			t.Errorf("after %s: %q found %v, want %v", s.name, words, got, want)
		}
	}
	for words, want := range s.methods {
		var wantNames []string
		for _, sel := range want {
			wantNames = append(wantNames, methodName(f.oidOf("helper"), sel))
		}
		got := methodsFound(search(t, ix, index.Query{Text: words, Kind: index.Methods}))
		if !cmp.Equal(got, wantNames) {
			t.Errorf("after %s: methods %q found %v, want %v", s.name, words, got, wantNames)
		}
	}
}

// TestCatchUp makes each change with the index closed, then opens it; and
// with the index open, searching right after each commit.
func TestCatchUp(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		f := newFixture(t)
		ix, _ := f.open(withModel)
		ix.Close()
		for _, s := range steps {
			before := f.db.Store().LastTID()
			s.change(f)
			n, err := f.db.Store().Log(context.Background(), store.LogQuery{})
			if err != nil {
				t.Fatal(err)
			}
			commits := 0
			for _, tx := range n {
				if tx.TID > before {
					commits++
				}
			}
			ix, rep := f.open(withModel)
			if rep.Rebuilt || rep.Replayed != commits {
				t.Errorf("open after %s: %+v, want %d transactions caught up", s.name, rep, commits)
			}
			checkStep(t, f, ix, s)
			if err := ix.Close(); err != nil {
				t.Fatal(err)
			}
		}
		ix, _ = f.open(withModel)
		f.checkConsistent(ix, withModel, standardProbes(f)...)
	})
	t.Run("open", func(t *testing.T) {
		f := newFixture(t)
		ix, _ := f.open(withModel)
		for _, s := range steps {
			s.change(f)
			checkStep(t, f, ix, s)
		}
		f.checkConsistent(ix, withModel, standardProbes(f)...)
	})
}

// TestSearchNeverStale: a search right after a commit sees it, and so
// does Stats.
func TestSearchNeverStale(t *testing.T) {
	f := newFixture(t)
	ix, _ := f.open(nil)
	for i, word := range []string{"river", "volcano", "glacier", "meadow"} {
		f.add(word+".txt", sentences(word, 3), nil)
		if got := docsFound(search(t, ix, index.Query{Text: word}), word+".txt"); !cmp.Equal(got, []string{word + ".txt"}) {
			t.Errorf("right after adding %s.txt: found %v", word, got)
		}
		st, err := ix.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if last := f.db.Store().LastTID(); st.Documents != i+1 || st.LastTID != last {
			t.Errorf("stats after %d adds: %+v, want %d documents as of %s", i+1, st, i+1, last)
		}
	}
	f.remove("river.txt")
	if hits := search(t, ix, index.Query{Text: "river"}); len(hits) != 0 {
		t.Errorf("right after removing river.txt: found %+v", hits)
	}
}

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
	{"state deleted", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "state.json")) }, "no index yet"},
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

// TestCloseKeepsEverything closes and reopens an index: nothing replayed
// or rebuilt, the same stats, and every search answers exactly as before.
func TestCloseKeepsEverything(t *testing.T) {
	f := newFixture(t)
	fill(f)
	ix, _ := f.open(withModel)
	f.add("field.txt", sentences("meadow", 6), nil)
	ctx := context.Background()
	probes := append(standardProbes(f), probe{"meadow", index.Query{Text: "meadow"}})
	before := map[string][]index.Hit{}
	for _, p := range probes {
		before[p.name] = search(t, ix, p.q)
	}
	stBefore, err := ix.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := ix.Search(ctx, index.Query{Text: "river"}); err == nil {
		t.Error("Search after Close succeeded")
	}
	if err := ix.Sync(ctx); err == nil {
		t.Error("Sync after Close succeeded")
	}
	if err := ix.Flush(); err == nil {
		t.Error("Flush after Close succeeded")
	}
	if _, err := ix.Stats(ctx); err == nil {
		t.Error("Stats after Close succeeded")
	}

	ix, rep := f.open(withModel)
	if rep.Rebuilt || rep.Replayed != 0 {
		t.Errorf("reopen: %+v, want up to date", rep)
	}
	stAfter, err := ix.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stBefore.Bytes, stAfter.Bytes = 0, 0 // bleve merges segments
	if stAfter != stBefore {
		t.Errorf("stats after reopening %+v, before %+v", stAfter, stBefore)
	}
	for _, p := range probes {
		if diff := cmp.Diff(search(t, ix, p.q), before[p.name]); diff != "" {
			t.Errorf("probe %s after reopening (-after +before):\n%s", p.name, diff)
		}
	}
}

// TestReindex rebuilds on demand.
func TestReindex(t *testing.T) {
	f := newFixture(t)
	fill(f)
	var progress [][2]int
	ix, _ := f.open(&index.Options{Model: model, Progress: func(done, total int) { progress = append(progress, [2]int{done, total}) }})
	if want := [][2]int{{1, 3}, {2, 3}, {3, 3}}; !cmp.Equal(progress, want) {
		t.Errorf("progress of the first build %v, want %v", progress, want)
	}
	rep, err := ix.Reindex(context.Background())
	if err != nil || !rep.Rebuilt || rep.Reason != "asked for" {
		t.Errorf("Reindex: %+v, %v", rep, err)
	}
	f.checkConsistent(ix, withModel, standardProbes(f)...)
}

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

// TestBrokenChunk: a chunk edited by hand into a shape the catalog
// cannot read leaves its document out of the indexes, not a failure of
// every search, and the document is indexed again once the chunk is
// mended.
func TestBrokenChunk(t *testing.T) {
	f := newFixture(t)
	fill(f)
	ix, _ := f.open(withModel)
	chunk := f.chunksOf("etna.txt")[1]
	f.update(func(tx *image.Tx) error {
		o, err := tx.Object(chunk)
		if err != nil {
			return err
		}
		return o.Set("position", image.String("second"))
	})
	if hits := search(t, ix, index.Query{Text: "volcano"}); len(hits) != 0 {
		t.Errorf("a broken document's chunks found: %+v", hits)
	}
	if got := docsFound(search(t, ix, index.Query{Text: "river"}), "nile.txt"); !cmp.Equal(got, []string{"nile.txt"}) {
		t.Errorf("river found in %v beside a broken document", got)
	}
	f.checkConsistent(ix, withModel, standardProbes(f)...)
	f.update(func(tx *image.Tx) error {
		o, err := tx.Object(chunk)
		if err != nil {
			return err
		}
		return o.Set("position", image.Int(1))
	})
	if got := docsFound(search(t, ix, index.Query{Text: "volcano"}), "etna.txt"); !cmp.Equal(got, []string{"etna.txt"}) {
		t.Errorf("the mended document: volcano found in %v", got)
	}
	f.checkConsistent(ix, withModel, standardProbes(f)...)
}

// TestChunkEditedByHand: a chunk's text changed from the REPL is searched
// by its new words.
func TestChunkEditedByHand(t *testing.T) {
	f := newFixture(t)
	fill(f)
	ix, _ := f.open(withModel)
	chunk := f.chunksOf("etna.txt")[0]
	f.update(func(tx *image.Tx) error {
		o, err := tx.Object(chunk)
		if err != nil {
			return err
		}
		return o.Set("text", image.String("A pangolin wandered in."))
	})
	hits := search(t, ix, index.Query{Text: "pangolin"})
	if len(hits) != 1 || hits[0].Chunk != chunk {
		t.Errorf("pangolin, the edited chunk's new word, found %+v; want chunk %s", hits, chunk)
	}
	f.checkConsistent(ix, withModel, standardProbes(f)...)
}

// docOID is the OID of the document object at path.
func (f *fixture) docOID(path string) store.OID {
	f.t.Helper()
	var d *catalog.Doc
	if err := f.db.View(context.Background(), func(tx *image.Tx) (err error) {
		d, _, err = catalog.Get(tx, catalog.IDOf(path))
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return d.OID
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
	if !rep.Rebuilt || rep.Reason != "no index yet" {
		t.Errorf("open after a crash mid-rebuild: %+v, want rebuilt", rep)
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
