package library_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/catalog"
	"batos/internal/catalog/library"
	"batos/internal/image"
	"batos/internal/image/imagetest"
)

func TestBadQueries(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, nil)
	addText(t, l, "a.txt", sentences("river", 3), nil)
	for _, tt := range []struct {
		name string
		q    library.Query
	}{
		{"empty", library.Query{}},
		{"blank", library.Query{Text: " \n\t "}},
		{"too long", library.Query{Text: strings.Repeat("river ", library.MaxQueryBytes/6+1)}},
		{"negative k", library.Query{Text: "river", K: -1}},
		{"k over the most", library.Query{Text: "river", K: library.MaxK + 1}},
		{"methods, empty", library.Query{Methods: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.Search(t.Context(), tt.q); !errors.Is(err, library.ErrQuery) {
				t.Errorf("Search: %v, want ErrQuery", err)
			}
			err := db.View(t.Context(), func(tx *image.Tx) error {
				_, err := l.SearchIn(t.Context(), tx, tt.q)
				return err
			})
			if !errors.Is(err, library.ErrQuery) {
				t.Errorf("SearchIn: %v, want ErrQuery", err)
			}
		})
	}
	for _, k := range []int{1, library.MaxK} {
		if _, err := l.Search(t.Context(), library.Query{Text: "river", K: k}); err != nil {
			t.Errorf("k=%d: %v", k, err)
		}
	}
	if _, err := l.Search(t.Context(), library.Query{Text: strings.Repeat("r", library.MaxQueryBytes)}); err != nil {
		t.Errorf("a query of the most bytes: %v", err)
	}
}

// TestSearchK: k bounds the hits; DefaultK when zero.
func TestSearchK(t *testing.T) {
	l := openLibrary(t, imagetest.Open(t, nil), nil)
	addText(t, l, "a.txt", sentences("river", 60), nil)
	for _, tt := range []struct{ k, want int }{{0, library.DefaultK}, {3, 3}, {25, 25}} {
		if res := search(t, l, library.Query{Text: "river", K: tt.k}); len(res.Hits) != tt.want {
			t.Errorf("k=%d: %d hits, want %d", tt.k, len(res.Hits), tt.want)
		}
	}
}

// TestSearchFilters restricts a search to a document, by ID or path, and
// to metadata.
func TestSearchFilters(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, &library.Options{Embedder: newEmbedder(t, newWords(), nil)})
	a := addText(t, l, "a.txt", sentences("river", 3), map[string]string{"lang": "en"})
	addText(t, l, "b.txt", sentences("river", 3), map[string]string{"lang": "fr"})
	for _, tt := range []struct {
		name string
		q    library.Query
		want []string
	}{
		{"none", library.Query{}, []string{"a.txt", "b.txt"}},
		{"doc by path", library.Query{Doc: "b.txt"}, []string{"b.txt"}},
		{"doc by ID", library.Query{Doc: a.ID}, []string{"a.txt"}},
		{"meta", library.Query{Meta: map[string]string{"lang": "fr"}}, []string{"b.txt"}},
		{"doc and meta", library.Query{Doc: "a.txt", Meta: map[string]string{"lang": "fr"}}, nil},
	} {
		q := tt.q
		q.Text, q.K = "river", 50
		res := search(t, l, q)
		got := titles(res)
		if len(got) > 1 && got[0] > got[1] {
			got[0], got[1] = got[1], got[0]
		}
		if !cmp.Equal(got, tt.want) || res.Mode != library.ModeHybrid {
			t.Errorf("%s: found %v (%s), want %v", tt.name, got, res.Mode, tt.want)
		}
	}
	if _, err := l.Search(t.Context(), library.Query{Text: "river", Doc: "nowhere.txt"}); !errors.Is(err, catalog.ErrNoDocument) {
		t.Errorf("a search in a document not in the catalog: %v, want ErrNoDocument", err)
	}
}

// TestSearchInOlderSnapshot: a method's search reads hits in its own
// transaction, so chunks added after its snapshot are not found.
func TestSearchInOlderSnapshot(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := newWords()
	l := openLibrary(t, db, &library.Options{Embedder: newEmbedder(t, m, nil)})
	addText(t, l, "old.txt", sentences("heron", 3), nil)
	err := db.View(t.Context(), func(tx *image.Tx) error {
		addText(t, l, "new.txt", sentences("heron", 3), nil)
		if got := titles(search(t, l, library.Query{Text: "heron"})); len(got) != 2 {
			t.Errorf("Search after the add found %v, want both", got)
		}
		asked := m.requests()
		res, err := l.SearchIn(t.Context(), tx, library.Query{Text: "heron ways"})
		if err != nil {
			return err
		}
		if got := titles(res); !cmp.Equal(got, []string{"old.txt"}) {
			t.Errorf("SearchIn at the older snapshot found %v, want old.txt alone", got)
		}
		if res.Mode != library.ModeText || !strings.Contains(res.Note, "not cached") || m.requests() != asked {
			t.Errorf("SearchIn of a query not cached: mode %q, note %q, %d requests", res.Mode, res.Note, m.requests()-asked)
		}
		// Once Search has embedded the query, SearchIn uses its vector.
		search(t, l, library.Query{Text: "heron ways"})
		asked = m.requests()
		res, err = l.SearchIn(t.Context(), tx, library.Query{Text: "heron ways"})
		if err != nil {
			return err
		}
		if got := titles(res); res.Mode != library.ModeHybrid || res.Note != "" || !cmp.Equal(got, []string{"old.txt"}) || m.requests() != asked {
			t.Errorf("SearchIn of a cached query: mode %q, note %q, found %v, %d requests", res.Mode, res.Note, got, m.requests()-asked)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSearchMethods finds methods of the image's objects, read from the
// searcher's snapshot.
func TestSearchMethods(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, nil)
	addText(t, l, "notes.txt", "We describe the world as we find it.", nil)
	src := "def describe_yourself(self):\n    return 'a teapot'"
	err := db.Update(t.Context(), func(tx *image.Tx) error {
		root, err := tx.Root()
		if err != nil {
			return err
		}
		o, err := tx.New(image.Slot{Name: "describe_yourself", Value: &image.Method{Source: src}})
		if err != nil {
			return err
		}
		return root.Set("helper", o.Ref())
	})
	if err != nil {
		t.Fatal(err)
	}
	res := search(t, l, library.Query{Text: "describe", Methods: true})
	if len(res.Hits) != 1 {
		t.Fatalf("methods: %+v", res)
	}
	h := res.Hits[0]
	if h.Receiver != "helper" || h.Selector != "describe_yourself" || h.Source != src || h.Doc != nil || h.Cite() != "helper.describe_yourself" {
		t.Errorf("hit %+v", h)
	}
	if got := titles(search(t, l, library.Query{Text: "describe"})); !cmp.Equal(got, []string{"notes.txt"}) {
		t.Errorf("documents: found %v", got)
	}
}

// TestShowAndRemove names documents by ID, by path, and by a path
// relative to the working directory.
func TestShowAndRemove(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, nil)
	dir := t.TempDir()
	for _, w := range []string{"a", "b", "c"} {
		writeFile(t, filepath.Join(dir, w+".txt"), sentences("river"+w, 3))
	}
	outs, err := l.AddPaths(t.Context(), []string{dir}, nil, nil)
	if err != nil || len(outs) != 3 {
		t.Fatalf("add: %+v, %v", outs, err)
	}
	t.Chdir(dir)
	for _, name := range []string{outs[0].ID, outs[0].Path, "a.txt", "./a.txt"} {
		d, ps, err := l.Show(t.Context(), name)
		if err != nil || d.ID != outs[0].ID || len(ps) != len(d.Chunks) {
			t.Errorf("show %q: %+v, %v", name, d, err)
		}
	}
	if _, _, err := l.Show(t.Context(), "z.txt"); !errors.Is(err, catalog.ErrNoDocument) {
		t.Errorf("show of a path not in the catalog: %v", err)
	}

	for i, name := range []string{outs[0].ID, outs[1].Path, "c.txt"} {
		d, err := l.Remove(t.Context(), name)
		if err != nil || d.ID != outs[i].ID {
			t.Errorf("remove %q: %+v, %v", name, d, err)
			continue
		}
		if res := search(t, l, library.Query{Text: "river" + string(rune('a'+i))}); len(res.Hits) != 0 {
			t.Errorf("after removing %q, its words are found: %+v", name, res.Hits)
		}
	}
	if docs, err := l.List(t.Context()); err != nil || len(docs) != 0 {
		t.Errorf("list after removing all: %v, %v", docs, err)
	}
	if _, err := l.Remove(t.Context(), "a.txt"); !errors.Is(err, catalog.ErrNoDocument) {
		t.Errorf("second remove: %v, want ErrNoDocument", err)
	}
}

// TestStats counts the catalog, its indexes and its usage.
func TestStats(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := newWords()
	l := openLibrary(t, db, &library.Options{Embedder: newEmbedder(t, m, nil)})
	a := addText(t, l, "a.txt", sentences("river", 6), nil)
	b := addText(t, l, "b.txt", sentences("glacier", 3), nil)
	s, err := l.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.Documents != 2 || s.Chunks != a.Chunks+b.Chunks || s.Bytes != a.Bytes+b.Bytes || s.Index.Documents != 2 ||
		s.Index.Chunks != s.Chunks || s.Index.Vectors != s.Chunks || s.Model != model || s.Mode != library.ModeHybrid ||
		s.Usage.Calls != int64(m.requests()) {
		t.Errorf("stats %+v", s)
	}
}

// TestIndexOfAnotherWidth: an index holding vectors of another width
// than the query's answers by text, and says why.
func TestIndexOfAnotherWidth(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, &library.Options{Embedder: newEmbedder(t, newWords(), nil)})
	addText(t, l, "a.txt", sentences("river", 3), nil)
	l.Close()
	narrow := newWords()
	narrow.Dim = 8
	l = openLibrary(t, db, &library.Options{Embedder: newEmbedder(t, narrow, nil)})
	res := search(t, l, library.Query{Text: "river"})
	if res.Mode != library.ModeText || !strings.Contains(res.Note, "wrong width") || len(res.Hits) == 0 {
		t.Errorf("search: mode %q, note %q, %d hits", res.Mode, res.Note, len(res.Hits))
	}
}

// TestModeWithoutVectors: with a model but no chunk embedded by it, the
// vector search cannot take part, and the result says so.
func TestModeWithoutVectors(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, nil)
	addText(t, l, "a.txt", sentences("river", 3), nil)
	l.Close()
	l = openLibrary(t, db, &library.Options{Embedder: newEmbedder(t, newWords(), nil)})
	res := search(t, l, library.Query{Text: "river"})
	if res.Mode != library.ModeText || res.Note == "" || len(res.Hits) == 0 {
		t.Errorf("search: mode %q, note %q, %d hits", res.Mode, res.Note, len(res.Hits))
	}
	addText(t, l, "b.txt", sentences("glacier", 3), nil)
	res = search(t, l, library.Query{Text: "river"})
	if res.Mode != library.ModeHybrid || res.Note != "" {
		t.Errorf("search once a document is embedded: mode %q, note %q", res.Mode, res.Note)
	}
}
