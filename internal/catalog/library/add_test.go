package library_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/catalog"
	"batos/internal/catalog/embed"
	"batos/internal/catalog/library"
	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/llm/ollama"
)

// progressCall is one call of a Progress.
type progressCall struct {
	Path                  string
	DoneFiles, TotalFiles int
	DoneBytes, TotalBytes int64
}

// TestAddPathsDirectory adds a file and a directory: the directory's
// files recursively, sorted, hidden names left out, each added and told
// to Progress.
func TestAddPathsDirectory(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, nil)
	root := t.TempDir()
	dir := filepath.Join(root, "docs")
	texts := map[string]string{
		"docs/b.txt":         sentences("river", 4),
		"docs/a.md":          "# Glaciers\n\n" + sentences("glacier", 4),
		"docs/sub/c.go":      "package c\n\n// Erupt erupts.\nfunc Erupt() string { return \"lava\" }\n",
		"docs/a.txt.d/e.txt": sentences("meadow", 3),
		"docs/.hidden.txt":   sentences("secret", 3),
		"docs/.git/config":   sentences("secret", 3),
		"docs/sub/.x/y.txt":  sentences("secret", 3),
		"single.txt":         sentences("volcano", 4),
	}
	for name, text := range texts {
		writeFile(t, filepath.Join(root, name), text)
	}
	var calls []progressCall
	outs, err := l.AddPaths(t.Context(), []string{filepath.Join(root, "single.txt"), dir}, map[string]string{"shelf": "test"},
		func(o library.Outcome, df, tf int, db, tb int64) {
			calls = append(calls, progressCall{o.Path, df, tf, db, tb})
		})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"single.txt", "docs/a.md", "docs/a.txt.d/e.txt", "docs/b.txt", "docs/sub/c.go"}
	var got []string
	var total int64
	for _, name := range want {
		total += int64(len(texts[name]))
	}
	var done int64
	for i, o := range outs {
		rel, _ := filepath.Rel(root, o.Path)
		got = append(got, rel)
		if !o.OK() || o.Result != catalog.Added || o.Chunks == 0 || o.ID != catalog.IDOf(o.Path) || o.Bytes != len(texts[rel]) || o.Semantic {
			t.Errorf("outcome %d: %+v", i, o)
		}
		done += int64(o.Bytes)
		if i < len(calls) && calls[i] != (progressCall{o.Path, i + 1, len(want), done, total}) {
			t.Errorf("progress call %d: %+v, want %+v", i, calls[i], progressCall{o.Path, i + 1, len(want), done, total})
		}
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("files added (-got +want):\n%s", diff)
	}
	if len(calls) != len(outs) {
		t.Errorf("%d progress calls for %d files", len(calls), len(outs))
	}
	docs := checkWhole(t, db, fileContent)
	if len(docs) != len(want) {
		t.Errorf("%d documents in the catalog, want %d", len(docs), len(want))
	}
	for _, d := range docs {
		if !filepath.IsAbs(d.Path) || d.Title != filepath.Base(d.Path) || d.Meta["shelf"] != "test" {
			t.Errorf("document %+v", d)
		}
	}
	if res := search(t, l, library.Query{Text: "secret"}); len(res.Hits) != 0 {
		t.Errorf("a hidden file's words found: %+v", res.Hits)
	}
	if got := titles(search(t, l, library.Query{Text: "erupt"})); !cmp.Equal(got, []string{"c.go"}) {
		t.Errorf("erupt found in %v", got)
	}
}

// TestAddPathsSkips: binary and empty files are skipped, saying why;
// invalid UTF-8 is repaired.
func TestAddPathsSkips(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, nil)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.bin"), "\x7fELF\x02\x01\x01\x00\x00\x00binary")
	writeFile(t, filepath.Join(dir, "b.txt"), "")
	writeFile(t, filepath.Join(dir, "c.txt"), "  \n\n\t  \n")
	bad := "The caf\xe9 serves coffee. The caf\xe9 opens at dawn and closes late."
	writeFile(t, filepath.Join(dir, "d.txt"), bad)
	outs, err := l.AddPaths(t.Context(), []string{dir}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 4 {
		t.Fatalf("%d outcomes: %+v", len(outs), outs)
	}
	for i, want := range []string{"binary content, not indexed as text", "no text", "no text", ""} {
		if o := outs[i]; o.Skipped != want || o.Err != nil || o.OK() != (want == "") {
			t.Errorf("%s: %+v, want skipped %q", filepath.Base(o.Path), o, want)
		}
	}
	docs := checkWhole(t, db, fileContent)
	if len(docs) != 1 {
		t.Fatalf("%d documents, want d.txt alone", len(docs))
	}
	_, ps, err := l.Show(t.Context(), docs[0].ID)
	if err != nil || !strings.Contains(ps[0].Text, "caf\uFFFD serves") {
		t.Errorf("d.txt: %+v, %v; want the bad byte repaired", ps, err)
	}
	if got := titles(search(t, l, library.Query{Text: "coffee"})); !cmp.Equal(got, []string{"d.txt"}) {
		t.Errorf("coffee found in %v", got)
	}
}

// TestAddPathsTooLarge: a file over the limit is refused by its size,
// without being read: a sparse gigabyte costs no memory.
func TestAddPathsTooLarge(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, nil)
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.txt")
	writeFile(t, huge, "The start of a huge file.")
	if err := os.Truncate(huge, 1<<30); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "small.txt"), sentences("river", 3))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	outs, err := l.AddPaths(t.Context(), []string{dir}, nil, nil)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 2 {
		t.Fatalf("outcomes %+v", outs)
	}
	o := outs[0]
	if !errors.Is(o.Err, catalog.ErrTooLarge) || !strings.Contains(o.Err.Error(), "1073741824 bytes") || !strings.Contains(o.Err.Error(), "limit of 16777216 bytes") || o.ID != "" {
		t.Errorf("huge.txt: %+v, want refused naming its size and the limit", o)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("adding a sparse gigabyte allocated %d MiB", grew>>20)
	}
	if !outs[1].OK() {
		t.Errorf("small.txt: %+v", outs[1])
	}

	// A smaller limit counts bytes exactly.
	l2 := openLibrary(t, imagetest.Open(t, nil), &library.Options{MaxBytes: 100})
	writeFile(t, filepath.Join(dir, "100.txt"), strings.Repeat("word ", 20))
	writeFile(t, filepath.Join(dir, "101.txt"), strings.Repeat("word ", 20)+"!")
	outs, err = l2.AddPaths(t.Context(), []string{filepath.Join(dir, "100.txt"), filepath.Join(dir, "101.txt")}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !outs[0].OK() || !errors.Is(outs[1].Err, catalog.ErrTooLarge) || !strings.Contains(outs[1].Err.Error(), "101 bytes, over the limit of 100") {
		t.Errorf("100 and 101 bytes under a limit of 100: %+v", outs)
	}
	if o := l2.AddText(t.Context(), "text", []byte(strings.Repeat("x", 101)), "", nil); !errors.Is(o.Err, catalog.ErrTooLarge) {
		t.Errorf("AddText of 101 bytes under a limit of 100: %+v", o)
	}
}

// TestAddPathsVanished: a file removed between the walk and its read is
// reported as vanished, and the others are added.
func TestAddPathsVanished(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, nil)
	dir := t.TempDir()
	for _, w := range []string{"a", "b", "c"} {
		writeFile(t, filepath.Join(dir, w+".txt"), sentences("river"+w, 3))
	}
	outs, err := l.AddPaths(t.Context(), []string{dir}, nil, func(o library.Outcome, done, total int, _, _ int64) {
		if done == 1 {
			if err := os.Remove(filepath.Join(dir, "b.txt")); err != nil {
				t.Error(err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 3 || !outs[0].OK() || !outs[2].OK() {
		t.Fatalf("outcomes %+v", outs)
	}
	if o := outs[1]; o.Err == nil || !strings.Contains(o.Err.Error(), "vanished") || o.ID != "" {
		t.Errorf("b.txt: %+v, want it vanished", o)
	}
	if docs := checkWhole(t, db, fileContent); len(docs) != 2 {
		t.Errorf("%d documents, want a.txt and c.txt", len(docs))
	}
}

// TestAddPathsMissing: a path that does not exist stops the add before
// anything is added.
func TestAddPathsMissing(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, nil)
	dir := t.TempDir()
	ok := writeFile(t, filepath.Join(dir, "a.txt"), sentences("river", 3))
	outs, err := l.AddPaths(t.Context(), []string{ok, filepath.Join(dir, "missing.txt")}, nil, nil)
	if !errors.Is(err, os.ErrNotExist) || outs != nil {
		t.Errorf("add of a missing path: %+v, %v; want ErrNotExist and nothing", outs, err)
	}
	if docs, err := l.List(t.Context()); err != nil || len(docs) != 0 {
		t.Errorf("catalog after the failed add: %v, %v", docs, err)
	}
}

// TestAddUnchanged: adding a file again unchanged writes nothing and
// asks the model for nothing.
func TestAddUnchanged(t *testing.T) {
	for _, withModel := range []bool{false, true} {
		t.Run(map[bool]string{false: "text", true: "semantic"}[withModel], func(t *testing.T) {
			db := imagetest.Open(t, nil)
			m := newWords()
			opts := &library.Options{}
			if withModel {
				opts.Embedder = newEmbedder(t, m, nil)
			}
			l := openLibrary(t, db, opts)
			path := writeFile(t, filepath.Join(t.TempDir(), "a.txt"), sentences("river", 9))
			outs, err := l.AddPaths(t.Context(), []string{path}, map[string]string{"k": "v"}, nil)
			if err != nil || !outs[0].OK() || outs[0].Result != catalog.Added || outs[0].Semantic != withModel {
				t.Fatalf("first add: %+v, %v", outs, err)
			}
			if withModel && (m.requests() == 0 || outs[0].Embed.Requests != m.requests()) {
				t.Errorf("first add: %d requests, the outcome counts %d", m.requests(), outs[0].Embed.Requests)
			}
			asked, last, chunks := m.requests(), db.Store().LastTID(), outs[0].Chunks
			outs, err = l.AddPaths(t.Context(), []string{path}, map[string]string{"k": "v"}, nil)
			if err != nil || outs[0].Result != catalog.Unchanged || outs[0].Chunks != chunks || outs[0].Semantic != withModel || outs[0].Embed != (embed.Stats{}) {
				t.Errorf("second add: %+v, %v; want unchanged, %d chunks", outs, err, chunks)
			}
			if m.requests() != asked || db.Store().LastTID() != last {
				t.Errorf("second add: %d more requests, %d transactions; want none", m.requests()-asked, commitsSince(t, db, last))
			}
			// Other metadata is a change.
			outs, err = l.AddPaths(t.Context(), []string{path}, map[string]string{"k": "w"}, nil)
			if err != nil || outs[0].Result != catalog.Replaced {
				t.Errorf("add with other metadata: %+v, %v", outs, err)
			}
		})
	}
}

// TestAddReplaces: a changed file replaces its document in one
// transaction; the old chunks are gone from the catalog and its search.
func TestAddReplaces(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, &library.Options{Embedder: newEmbedder(t, newWords(), nil)})
	path := writeFile(t, filepath.Join(t.TempDir(), "notes.txt"), sentences("river", 6))
	outs, err := l.AddPaths(t.Context(), []string{path}, nil, nil)
	if err != nil || !outs[0].OK() {
		t.Fatalf("add: %+v, %v", outs, err)
	}
	old, _, err := l.Show(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, sentences("glacier", 6))
	last := db.Store().LastTID()
	outs, err = l.AddPaths(t.Context(), []string{path}, nil, nil)
	if err != nil || outs[0].Result != catalog.Replaced || outs[0].ID != old.ID {
		t.Fatalf("add of the changed file: %+v, %v", outs, err)
	}
	if n := commitsSince(t, db, last); n != 1 {
		t.Errorf("the replace took %d transactions, want 1", n)
	}
	// The vector search ranks every chunk: none is an old one.
	for _, h := range search(t, l, library.Query{Text: "river", K: 100}).Hits {
		if slices.Contains(old.Chunks, h.Chunk) || strings.Contains(h.Text, "river") || h.TextRank != 0 {
			t.Errorf("after the replace, found %+v", h)
		}
	}
	if got := titles(search(t, l, library.Query{Text: "glacier"})); !cmp.Equal(got, []string{"notes.txt"}) {
		t.Errorf("glacier found in %v", got)
	}
	err = db.View(t.Context(), func(tx *image.Tx) error {
		for _, c := range old.Chunks {
			if _, _, err := catalog.PassageAt(tx, c); !errors.Is(err, catalog.ErrNoDocument) {
				t.Errorf("old chunk %s: %v, want not in the catalog", c, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkWhole(t, db, fileContent)
}

// twoTopics is prose on rivers, then on volcanoes.
func twoTopics() string {
	var b strings.Builder
	for range 6 {
		b.WriteString("The river carries water and silt downstream past the banks. ")
	}
	b.WriteString("\n\n")
	for range 6 {
		b.WriteString("The volcano spews lava and ash skyward over the crater. ")
	}
	return b.String()
}

// topicsMixed counts the chunks holding both topics.
func topicsMixed(ps []catalog.Passage) int {
	n := 0
	for _, p := range ps {
		if strings.Contains(p.Text, "river") && strings.Contains(p.Text, "volcano") {
			n++
		}
	}
	return n
}

// TestSemanticChunks: with a model, chunks are cut where the topic
// shifts and keep their vectors in the image, and search is hybrid.
func TestSemanticChunks(t *testing.T) {
	wide := catalog.Bounds{MinTokens: 8, MaxTokens: 160}
	// The premise: fixed-size windows mix the topics.
	plain := openLibrary(t, imagetest.Open(t, nil), &library.Options{Bounds: wide})
	o := addText(t, plain, "topics.txt", twoTopics(), nil)
	_, ps, err := plain.Show(t.Context(), o.ID)
	if err != nil || topicsMixed(ps) == 0 || o.Semantic {
		t.Fatalf("premise: fixed windows %+v, %v; want a chunk mixing the topics", ps, err)
	}

	db := imagetest.Open(t, nil)
	m := newWords()
	l := openLibrary(t, db, &library.Options{Bounds: wide, Embedder: newEmbedder(t, m, nil)})
	if l.Mode() != library.ModeHybrid || l.Note() != "" || l.EmbedModel() != model {
		t.Errorf("mode %q, note %q, model %q", l.Mode(), l.Note(), l.EmbedModel())
	}
	o = addText(t, l, "topics.txt", twoTopics(), nil)
	if !o.Semantic || o.Embed.Requests == 0 || o.Embed.Texts == 0 {
		t.Errorf("outcome %+v, want semantic chunks and embedding requests", o)
	}
	d, ps, err := l.Show(t.Context(), "topics.txt")
	if err != nil {
		t.Fatal(err)
	}
	if n := topicsMixed(ps); n != 0 || len(ps) < 2 {
		t.Errorf("%d of %d semantic chunks mix the topics, want none", n, len(ps))
	}
	if !d.Chunking.Semantic() || d.Chunking.Model != model || d.Chunking.Percentile != catalog.DefaultPercentile || d.EmbedModel != model {
		t.Errorf("document %+v, want chunked and embedded by %s", d, model)
	}
	for _, p := range ps {
		if !cmp.Equal(p.Vector, llmtest.WordVector(p.Text, dims)) {
			t.Errorf("chunk %d's vector is not its text's embedding", p.Position)
		}
	}
	checkWhole(t, db, func(*catalog.Doc) ([]byte, bool) { return []byte(twoTopics()), true })

	res := search(t, l, library.Query{Text: "lava crater"})
	if res.Mode != library.ModeHybrid || res.Note != "" || len(res.Hits) == 0 {
		t.Fatalf("search: %+v", res)
	}
	h := res.Hits[0]
	if h.VectorRank != 1 || h.TextRank != 1 || !strings.Contains(h.Text, "volcano") || h.Doc.ID != d.ID || h.Cite() != fmt.Sprintf("topics.txt#%d", h.Position) {
		t.Errorf("first hit %+v, want a volcano chunk found by both searches", h)
	}
	// A query sharing no word with any chunk finds chunks by their
	// vectors alone, with the start of the text as the fragment.
	res = search(t, l, library.Query{Text: "zzz qqq", K: 1})
	if len(res.Hits) != 1 {
		t.Fatalf("search: %+v", res)
	}
	if h := res.Hits[0]; h.VectorRank != 1 || h.TextRank != 0 || h.Marks != nil || h.Fragment == "" || !strings.HasPrefix(h.Text, strings.TrimSuffix(h.Fragment, " …")) {
		t.Errorf("hit by vector alone: %+v", h)
	}
	// Without fragments, neither kind of hit has one; the text is there.
	res = search(t, l, library.Query{Text: "lava crater", NoFragments: true})
	for _, h := range res.Hits {
		if h.Fragment != "" || h.Marks != nil || h.Text == "" {
			t.Errorf("hit without fragments: %+v", h)
		}
	}
	if len(res.Hits) == 0 || res.Hits[0].VectorRank != 1 || res.Hits[0].TextRank != 1 {
		t.Errorf("without fragments: %+v, want the same first hit", res.Hits)
	}
}

// fastRetry keeps the clients' retries quick.
var fastRetry = llm.Retry{Attempts: 2, Base: time.Millisecond, Max: 2 * time.Millisecond}

// embedInputs are the texts of the embedding requests a fake Ollama got.
func embedInputs(t testing.TB, o *llmtest.Ollama) [][]string {
	t.Helper()
	var out [][]string
	for _, r := range o.Requests() {
		if r.Path != "/api/embed" {
			continue
		}
		var body struct {
			Input []string `json:"input"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		out = append(out, body.Input)
	}
	return out
}

// TestEmbedFailsMidDocument embeds through the Ollama client and a fake
// Ollama whose model fails on the third batch of a document: the
// document is not in the catalog at all, the calls are accounted for,
// and once the server recovers the document is added paying only for
// what was not cached.
func TestEmbedFailsMidDocument(t *testing.T) {
	m := newWords()
	fake := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: m, Models: []string{model}})
	client, err := ollama.New(fake.URL, &ollama.Options{Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, &library.Options{Embedder: newEmbedder(t, client, &embed.Options{Batch: 4})})
	addText(t, l, "other.txt", sentences("meadow", 3), nil)
	before := usage(t, db)
	asked := len(embedInputs(t, fake))

	text := sentences("river", 20)
	p, err := catalog.Prepare(catalog.Source{Path: "rivers.txt", Data: []byte(text)}, &catalog.Options{Bounds: bounds})
	if err != nil {
		t.Fatal(err)
	}
	var units []string
	for _, u := range p.Units() {
		units = append(units, u.Text)
	}
	m.failAfter(2)
	last := db.Store().LastTID()
	o := l.AddText(t.Context(), "rivers.txt", []byte(text), "", nil)
	if o.Err == nil || o.OK() || o.ID != "" || !strings.Contains(o.Err.Error(), "8 of 20 texts done") {
		t.Fatalf("add with the model failing on its third request: %+v", o)
	}
	if o.Embed.Requests != 3 || o.Embed.Fetched != 8 {
		t.Errorf("outcome's embedding stats %+v, want 3 requests, 8 fetched", o.Embed)
	}
	if _, _, err := l.Show(t.Context(), "rivers.txt"); !errors.Is(err, catalog.ErrNoDocument) {
		t.Errorf("show after the failure: %v, want no document", err)
	}
	if n := commitsSince(t, db, last); n != 1 {
		t.Errorf("%d transactions after the failure, want 1 recording the usage", n)
	}
	u := usage(t, db)
	if got := u.Calls - before.Calls; got != 3 || u.Failures-before.Failures != 1 || u.Texts-before.Texts != 20 || u.PromptTokens <= before.PromptTokens {
		t.Errorf("usage after the failure %+v, before %+v; want 3 calls, 1 failure, 20 texts more", u, before)
	}
	failed := embedInputs(t, fake)[asked:]
	if len(failed) != 3 {
		t.Fatalf("requests during the failed add: %v", failed)
	}

	m.failAfter(-1)
	for _, h := range search(t, l, library.Query{Text: "river", K: 100}).Hits {
		if h.Doc.Path != "other.txt" {
			t.Errorf("search after the failure found %+v", h)
		}
	}
	asked++ // the query's embedding
	o = l.AddText(t.Context(), "rivers.txt", []byte(text), "", nil)
	if !o.OK() || o.Result != catalog.Added {
		t.Fatalf("add after recovery: %+v", o)
	}
	d, ps, err := l.Show(t.Context(), "rivers.txt")
	if err != nil {
		t.Fatal(err)
	}
	var chunks []string
	for _, p := range ps {
		chunks = append(chunks, p.Text)
	}
	var again []string
	for _, in := range embedInputs(t, fake)[asked+3:] {
		again = append(again, in...)
	}
	// Asked again: the units the failure left uncached, then the chunks.
	want := append(slices.Clone(units[8:]), chunks...)
	if diff := cmp.Diff(again, want); diff != "" {
		t.Errorf("texts asked for after recovery (-got +want):\n%s", diff)
	}
	if o.Embed.Cached != 8 || o.Embed.Fetched != len(want) {
		t.Errorf("outcome's embedding stats %+v, want 8 cached, %d fetched", o.Embed, len(want))
	}
	u2 := usage(t, db)
	// The search's request is recorded with the add.
	if u2.Calls-u.Calls != int64(o.Embed.Requests)+1 || u2.Failures != u.Failures || u2.Cached-u.Cached != 8 {
		t.Errorf("usage after recovery %+v, after the failure %+v, outcome %+v", u2, u, o.Embed)
	}
	checkWhole(t, db, func(d *catalog.Doc) ([]byte, bool) {
		if d.Path == "other.txt" {
			return []byte(sentences("meadow", 3)), true
		}
		return []byte(text), d.Path == "rivers.txt"
	})
	if d.EmbedModel != model {
		t.Errorf("document %+v", d)
	}
}

// TestUsageOfSearches: the usage of query embeddings is kept with the
// next add, or at Close.
func TestUsageOfSearches(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := newWords()
	l := openLibrary(t, db, &library.Options{Embedder: newEmbedder(t, m, nil)})
	addText(t, l, "a.txt", sentences("river", 3), nil)
	u0 := usage(t, db)
	if u0.Calls != int64(m.requests()) || u0.Failures != 0 || u0.Texts == 0 {
		t.Errorf("usage after an add %+v, after %d requests", u0, m.requests())
	}
	search(t, l, library.Query{Text: "river"})
	search(t, l, library.Query{Text: "river"}) // cached
	m.failAfter(0)
	res := search(t, l, library.Query{Text: "meadow"})
	if res.Mode != library.ModeText || !strings.Contains(res.Note, "embedding the query failed") {
		t.Errorf("search with the model failing: mode %q, note %q", res.Mode, res.Note)
	}
	m.failAfter(-1)
	if u := usage(t, db); u != u0 {
		t.Errorf("searches wrote usage %+v at once", u)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	u := usage(t, db)
	want := u0
	want.Calls += 2
	want.Failures++
	want.Texts += 3
	want.Cached++
	want.PromptTokens += 1
	u.Latency, want.Latency = 0, 0
	if u != want {
		t.Errorf("usage after Close %+v, want %+v", u, want)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestAddWithoutModel: fixed windows, text search, and the note says so.
func TestAddWithoutModel(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, nil)
	if l.Mode() != library.ModeText || l.Note() != library.NoModelNote || l.EmbedModel() != "" {
		t.Errorf("mode %q, note %q, model %q", l.Mode(), l.Note(), l.EmbedModel())
	}
	o := addText(t, l, "a.txt", sentences("river", 6), nil)
	if o.Semantic || o.Embed != (embed.Stats{}) {
		t.Errorf("outcome %+v", o)
	}
	d, ps, err := l.Show(t.Context(), "a.txt")
	if err != nil || d.Chunking.Semantic() || d.EmbedModel != "" || ps[0].Vector != nil {
		t.Errorf("document %+v, %v", d, err)
	}
	res := search(t, l, library.Query{Text: "river"})
	if res.Mode != library.ModeText || res.Note != library.NoModelNote || len(res.Hits) == 0 {
		t.Errorf("search: %+v", res)
	}
	if u := usage(t, db); u != (catalog.EmbeddingUsage{}) {
		t.Errorf("usage %+v without a model", u)
	}
}

// TestAddCancelled: a cancelled context stops AddPaths.
func TestAddCancelled(t *testing.T) {
	db := imagetest.Open(t, nil)
	l := openLibrary(t, db, nil)
	dir := t.TempDir()
	for _, w := range []string{"a", "b", "c"} {
		writeFile(t, filepath.Join(dir, w+".txt"), sentences("river", 3))
	}
	ctx, cancel := context.WithCancel(t.Context())
	outs, err := l.AddPaths(ctx, []string{dir}, nil, func(library.Outcome, int, int, int64, int64) { cancel() })
	if !errors.Is(err, context.Canceled) || len(outs) != 1 || !outs[0].OK() {
		t.Errorf("cancelled after the first file: %+v, %v", outs, err)
	}
	if docs := checkWhole(t, db, fileContent); len(docs) != 1 {
		t.Errorf("%d documents, want 1", len(docs))
	}
}
