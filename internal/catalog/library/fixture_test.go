package library_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"batos/internal/catalog"
	"batos/internal/catalog/embed"
	"batos/internal/catalog/library"
	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/store"
)

// model names the tests' embedding, llmtest.WordVector at width dims:
// texts sharing words are close.
const (
	model = "words"
	dims  = 64
)

var (
	testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	// bounds are small, so that a few sentences make several chunks.
	bounds = catalog.Bounds{MinTokens: 8, MaxTokens: 40}
)

// words is an embedding model counting its requests, which can be
// made to fail.
type words struct {
	*llmtest.Model
	mu sync.Mutex
	// failFrom: requests numbered from it on (1-based) fail while it is
	// positive.
	failFrom int
	n        int
}

func newWords() *words {
	return &words{Model: &llmtest.Model{Dim: dims, Vectors: llmtest.WordVector}}
}

func (w *words) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	w.mu.Lock()
	w.n++
	fail := w.failFrom > 0 && w.n >= w.failFrom
	w.mu.Unlock()
	if fail {
		return nil, errors.New("CUDA error: out of memory")
	}
	return w.Model.Embed(ctx, req)
}

// failAfter makes the requests after the next n fail; a negative n
// mends the model.
func (w *words) failAfter(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n < 0 {
		w.failFrom = 0
		return
	}
	w.failFrom = w.n + n + 1
}

// requests is how many embedding requests the model was asked, failed
// ones included.
func (w *words) requests() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// newEmbedder embeds with client through a cache file in the test's
// directory.
func newEmbedder(t testing.TB, client llm.Model, opts *embed.Options) *embed.Embedder {
	t.Helper()
	cache, err := embed.OpenCache(filepath.Join(t.TempDir(), "vectors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	return embed.New(client, model, cache, opts)
}

// openLibrary opens the catalog of db with opts (IndexDir, Bounds and
// Now filled in when zero), closed at cleanup.
func openLibrary(t testing.TB, db *image.DB, opts *library.Options) *library.Library {
	t.Helper()
	var o library.Options
	if opts != nil {
		o = *opts
	}
	if o.IndexDir == "" {
		o.IndexDir = imagetest.Bolt(db).Path() + ".index"
	}
	if o.Bounds == (catalog.Bounds{}) {
		o.Bounds = bounds
	}
	if o.Now == nil {
		o.Now = func() time.Time { return testNow }
	}
	l, _, err := library.Open(context.Background(), db, &o)
	if err != nil {
		t.Fatalf("open library: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// sentences is prose of n sentences naming word, in paragraphs of three.
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

func writeFile(t testing.TB, path, text string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func search(t testing.TB, l *library.Library, q library.Query) *library.Result {
	t.Helper()
	res, err := l.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("search %+v: %v", q, err)
	}
	return res
}

// titles are the titles of the hits' documents, each once, in order.
func titles(res *library.Result) []string {
	var out []string
	for _, h := range res.Hits {
		if h.Doc == nil {
			continue
		}
		if len(out) == 0 || out[len(out)-1] != h.Doc.Title {
			seen := false
			for _, o := range out {
				seen = seen || o == h.Doc.Title
			}
			if !seen {
				out = append(out, h.Doc.Title)
			}
		}
	}
	return out
}

// addText adds a text and fails the test unless it was added.
func addText(t testing.TB, l *library.Library, name, text string, meta map[string]string) library.Outcome {
	t.Helper()
	o := l.AddText(context.Background(), name, []byte(text), name, meta)
	if !o.OK() {
		t.Fatalf("add %s: %+v", name, o)
	}
	return o
}

// usage reads the catalog's embedding usage.
func usage(t testing.TB, db *image.DB) catalog.EmbeddingUsage {
	t.Helper()
	var u catalog.EmbeddingUsage
	if err := db.View(context.Background(), func(tx *image.Tx) (err error) {
		u, err = catalog.EmbeddingUsageOf(tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return u
}

// commitsSince counts the transactions committed after tid.
func commitsSince(t testing.TB, db *image.DB, tid store.TID) int {
	t.Helper()
	txs, err := db.Store().Log(context.Background(), store.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tx := range txs {
		if tx.TID > tid {
			n++
		}
	}
	return n
}

// checkWhole checks that every document in the catalog is whole: its
// chunks are all there, in order, and their spans cover its content
// (each chunk's text is the content at its span, but for white space and
// repaired bytes), and, when content is given, that it is the content
// recorded.
func checkWhole(t testing.TB, db *image.DB, content func(d *catalog.Doc) ([]byte, bool)) []*catalog.Doc {
	t.Helper()
	var docs []*catalog.Doc
	err := db.View(context.Background(), func(tx *image.Tx) error {
		var err error
		if docs, err = catalog.List(tx); err != nil {
			return err
		}
		for _, d := range docs {
			_, ps, err := catalog.Get(tx, d.ID)
			if err != nil {
				return err
			}
			data, ok := content(d)
			if !ok {
				t.Errorf("%s: in the catalog, but no such content", d.Path)
				continue
			}
			checkChunks(t, d, ps, data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

func checkChunks(t testing.TB, d *catalog.Doc, ps []catalog.Passage, data []byte) {
	t.Helper()
	if len(ps) != len(d.Chunks) || len(ps) == 0 {
		t.Errorf("%s: %d chunks read, the document lists %d", d.Path, len(ps), len(d.Chunks))
		return
	}
	if d.Size != len(data) {
		t.Errorf("%s: size %d, the content has %d bytes", d.Path, d.Size, len(data))
	}
	end := 0
	for i, p := range ps {
		if p.Position != i || p.Doc != d.OID || p.OID != d.Chunks[i] {
			t.Errorf("%s: chunk %d is %+v", d.Path, i, p)
		}
		if p.Span.Start < end || p.Span.End <= p.Span.Start || p.Span.End > len(data) {
			t.Errorf("%s: chunk %d spans %+v after a chunk ending at %d, of %d bytes", d.Path, i, p.Span, end, len(data))
			return
		}
		if gap := strings.TrimSpace(string(data[end:p.Span.Start])); gap != "" {
			t.Errorf("%s: %q before chunk %d is in no chunk", d.Path, gap, i)
		}
		if got, want := strings.Fields(p.Text), strings.Fields(repaired(data[p.Span.Start:p.Span.End])); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: chunk %d is %q, its span holds %q", d.Path, i, p.Text, data[p.Span.Start:p.Span.End])
		}
		end = p.Span.End
	}
	if rest := strings.TrimSpace(string(data[end:])); rest != "" {
		t.Errorf("%s: %q at the end is in no chunk", d.Path, rest)
	}
}

// fileContent reads a document's file, for checkWhole.
func fileContent(d *catalog.Doc) ([]byte, bool) {
	b, err := os.ReadFile(d.Path)
	return b, err == nil
}

// repaired is b with each invalid UTF-8 byte replaced by U+FFFD, as the
// catalog repairs text.
func repaired(b []byte) string {
	var out strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		out.WriteRune(r)
		b = b[n:]
	}
	return out.String()
}
