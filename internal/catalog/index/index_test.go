package index_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/catalog"
	"batos/internal/catalog/index"
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
		// The object is written again with its methods as they were: they
		// are still found (and not put again).
		name: "slot beside the methods",
		change: func(f *fixture) {
			f.update(func(tx *image.Tx) error {
				o, err := object(tx, "helper")
				if err != nil {
					return err
				}
				return o.Set("colour", image.String("red"))
			})
		},
		methods: map[string][]string{"erupt": {"erupt_now"}, "kettle": {"describe_yourself"}},
	},
	{
		name: "method back as it was",
		change: func(f *fixture) {
			f.setMethod("helper", "describe_yourself", "def describe_yourself(self):\n    return 'a teapot'")
		},
		methods: map[string][]string{"teapot": {"describe_yourself"}, "kettle": nil, "erupt": {"erupt_now"}},
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
