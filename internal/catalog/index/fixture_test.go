package index_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/catalog"
	"batos/internal/catalog/index"
	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/llm/llmtest"
	"batos/internal/store"
)

// model names the embedding of the tests' vectors, llmtest.WordVector at
// width dims: texts sharing words are close.
const (
	model = "words"
	dims  = 64
)

var (
	testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	// testOpts chunks small, so that a few sentences make several chunks.
	testOpts = &catalog.Options{Bounds: catalog.Bounds{MinTokens: 8, MaxTokens: 40}, Now: func() time.Time { return testNow }}
)

// fixture is an image with the primordial objects and the directory
// beside it where its index lives.
type fixture struct {
	t   testing.TB
	db  *image.DB
	dir string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db := imagetest.Open(t, nil)
	return &fixture{t: t, db: db, dir: imagetest.Bolt(db).Path() + ".index"}
}

// open opens the index in f.dir, closed at cleanup.
func (f *fixture) open(opts *index.Options) (*index.Index, index.Report) {
	f.t.Helper()
	return f.openAt(f.dir, opts)
}

func (f *fixture) openAt(dir string, opts *index.Options) (*index.Index, index.Report) {
	f.t.Helper()
	ix, rep, err := index.Open(context.Background(), dir, f.db, opts)
	if err != nil {
		f.t.Fatalf("open index %s: %v", dir, err)
	}
	f.t.Cleanup(func() { ix.Close() })
	return ix, rep
}

// sentences is prose of n sentences, each naming word, in paragraphs of
// three: several chunks at testOpts' bounds.
func sentences(word string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Sentence %d tells of the %s and its %s ways.", i, word, word)
		if i%3 == 2 {
			b.WriteString("\n\n")
		} else {
			b.WriteString(" ")
		}
	}
	return b.String()
}

func (f *fixture) update(fn func(tx *image.Tx) error) store.TID {
	f.t.Helper()
	tid, err := f.db.UpdateTID(context.Background(), fn)
	if err != nil {
		f.t.Fatalf("update: %v", err)
	}
	return tid
}

// add adds a document without embeddings.
func (f *fixture) add(path, text string, meta map[string]string) *catalog.Doc {
	f.t.Helper()
	var d *catalog.Doc
	f.update(func(tx *image.Tx) error {
		var err error
		d, _, err = catalog.Add(tx, catalog.Source{Path: path, Data: []byte(text), Meta: meta}, testOpts)
		return err
	})
	return d
}

// addEmbedded adds a document whose chunks hold their WordVector by
// embedModel.
func (f *fixture) addEmbedded(path, text string, meta map[string]string, embedModel string) *catalog.Doc {
	f.t.Helper()
	p, err := catalog.Prepare(catalog.Source{Path: path, Data: []byte(text), Meta: meta}, testOpts)
	if err != nil {
		f.t.Fatal(err)
	}
	var vecs [][]float32
	for _, c := range p.Chunks() {
		vecs = append(vecs, llmtest.WordVector(c.Text, dims))
	}
	if err := p.SetVectors(embedModel, vecs); err != nil {
		f.t.Fatal(err)
	}
	var d *catalog.Doc
	f.update(func(tx *image.Tx) error {
		d, _, err = catalog.Write(tx, p)
		return err
	})
	return d
}

func (f *fixture) remove(path string) {
	f.t.Helper()
	f.update(func(tx *image.Tx) error { return catalog.Remove(tx, catalog.IDOf(path)) })
}

// object returns the object the root names name, made and named if the
// root has none.
func object(tx *image.Tx, name string) (*image.Object, error) {
	root, err := tx.Root()
	if err != nil {
		return nil, err
	}
	if v, ok := root.Get(name); ok {
		return tx.Deref(v)
	}
	o, err := tx.New(image.Slot{Name: "name", Value: image.String(name)})
	if err != nil {
		return nil, err
	}
	return o, root.Set(name, o.Ref())
}

// setMethod gives the object the root names obj a method.
func (f *fixture) setMethod(obj, selector, source string) {
	f.t.Helper()
	f.update(func(tx *image.Tx) error {
		o, err := object(tx, obj)
		if err != nil {
			return err
		}
		return o.Set(selector, &image.Method{Source: source})
	})
}

// deleteSlot deletes a slot of the object the root names obj.
func (f *fixture) deleteSlot(obj, slot string) {
	f.t.Helper()
	f.update(func(tx *image.Tx) error {
		o, err := object(tx, obj)
		if err != nil {
			return err
		}
		if ok, err := o.Delete(slot); !ok || err != nil {
			return fmt.Errorf("delete %s.%s: %v, %v", obj, slot, ok, err)
		}
		return nil
	})
}

// oidOf is the OID of the object the root names name.
func (f *fixture) oidOf(name string) store.OID {
	f.t.Helper()
	var oid store.OID
	if err := f.db.View(context.Background(), func(tx *image.Tx) (err error) {
		oid, err = tx.Resolve(name)
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return oid
}

func search(t testing.TB, ix *index.Index, q index.Query) []index.Hit {
	t.Helper()
	hits, err := ix.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("search %+v: %v", q, err)
	}
	return hits
}

// docsFound are the documents of hits, as the paths given to add, in
// the order first found.
func docsFound(hits []index.Hit, paths ...string) []string {
	byID := map[string]string{}
	for _, p := range paths {
		byID[catalog.IDOf(p)] = p
	}
	var out []string
	for _, h := range hits {
		name := byID[h.Doc]
		if name == "" {
			name = h.Doc
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// methodsFound are the methods of hits as "oid.selector".
func methodsFound(hits []index.Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, fmt.Sprintf("%d.%s", h.Object, h.Selector))
	}
	return out
}

func methodName(oid store.OID, selector string) string { return fmt.Sprintf("%d.%s", oid, selector) }

// chunksOf is the chunk OIDs the catalog lists for the document at path.
func (f *fixture) chunksOf(path string) []store.OID {
	f.t.Helper()
	var d *catalog.Doc
	if err := f.db.View(context.Background(), func(tx *image.Tx) (err error) {
		d, _, err = catalog.Get(tx, catalog.IDOf(path))
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return d.Chunks
}

// probe is a search whose answer two indexes of one image must agree on.
type probe struct {
	name string
	q    index.Query
}

// found are the hits as "chunk/object.selector", sorted: sets, since
// ranks may differ where scores tie, and scores depend on how many
// entries the full-text index has seen (entries a crash left behind
// count in its totals).
func found(hits []index.Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, fmt.Sprintf("%d/%d.%s", h.Chunk, h.Object, h.Selector))
	}
	slices.Sort(out)
	return out
}

// checkConsistent checks ix against an index built afresh from the
// image in another directory: the same documents, chunks, methods and
// vectors, and the same answers to probes (sets of hits: ranks may
// differ where scores tie).
func (f *fixture) checkConsistent(ix *index.Index, opts *index.Options, probes ...probe) {
	f.t.Helper()
	fresh, rep := f.openAt(f.t.TempDir(), opts)
	if !rep.Rebuilt {
		f.t.Fatalf("a fresh index was not built: %+v", rep)
	}
	f.sameAs(ix, fresh, probes...)
}

// with is f for test t (a subtest).
func (f *fixture) with(t testing.TB) *fixture {
	g := *f
	g.t = t
	return &g
}

// sameAs checks that ix and fresh, indexes of one image, hold the same
// and answer probes alike.
func (f *fixture) sameAs(ix, fresh *index.Index, probes ...probe) {
	f.t.Helper()
	ctx := context.Background()
	got, err := ix.Stats(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	want, err := fresh.Stats(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	if got.LastTID != want.LastTID || got.Documents != want.Documents || got.Chunks != want.Chunks ||
		got.Methods != want.Methods || got.Vectors != want.Vectors || got.Dims != want.Dims || got.Model != want.Model {
		f.t.Errorf("stats %+v, a fresh index's %+v", got, want)
	}
	if diff := cmp.Diff(ix.Docs(), fresh.Docs()); diff != "" {
		f.t.Errorf("documents (-index +fresh):\n%s", diff)
	}
	for _, p := range probes {
		if diff := cmp.Diff(found(search(f.t, ix, p.q)), found(search(f.t, fresh, p.q))); diff != "" {
			f.t.Errorf("probe %s: hits (-index +fresh):\n%s", p.name, diff)
		}
	}
}
