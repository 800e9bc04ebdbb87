//go:build integration

// This test runs the knowledge catalog's embeddings against a real
// Ollama's /api/embed:
//
//	BATOS_TEST_OLLAMA=http://127.0.0.1:11434 go test -tags integration -run Integration -v ./internal/catalog/library
//
// It generates a tiny random-weight llama model (internal/gguf/gguftest),
// pushes it as a blob and creates batos-it-embed-*, which embeds (its
// vectors are random-weight nonsense, but real vectors from the real
// endpoint, batched and cached as any model's). At the end the model is
// unloaded and deleted.
package library_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"batos/internal/catalog"
	"batos/internal/catalog/embed"
	"batos/internal/catalog/library"
	"batos/internal/gguf/gguftest"
	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/llm"
	"batos/internal/llm/ollama"
)

func TestIntegrationEmbedWithOllama(t *testing.T) {
	url := os.Getenv("BATOS_TEST_OLLAMA")
	if url == "" {
		t.Skip("BATOS_TEST_OLLAMA is not set (e.g. http://127.0.0.1:11434)")
	}
	ctx := t.Context()
	c, err := ollama.New(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Version(ctx); err != nil {
		t.Fatalf("BATOS_TEST_OLLAMA=%s: %v", url, err)
	}
	model := "batos-it-embed-" + time.Now().Format("150405")
	data := gguftest.TinyLlama(3)
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	if err := c.PushBlob(ctx, digest, open, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &llm.CreateRequest{Model: model, Files: map[string]string{"tiny.gguf": "sha256:" + digest}}); err != nil {
		t.Fatalf("create %s: %v", model, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Unload(ctx, model); err != nil && !errors.Is(err, llm.ErrModelNotFound) {
			t.Errorf("unload %s: %v", model, err)
		}
		if err := c.Delete(ctx, model); err != nil && !errors.Is(err, llm.ErrModelNotFound) {
			t.Errorf("delete %s: %v", model, err)
		}
	})

	db := imagetest.Open(t, nil)
	dir := t.TempDir()
	cache, err := embed.OpenCache(filepath.Join(dir, "embeddings"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	lib, _, err := library.Open(ctx, db, &library.Options{IndexDir: filepath.Join(dir, "index"),
		Embedder: embed.New(c, model, cache, &embed.Options{Batch: 4})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lib.Close() })

	text := strings.Repeat("The river floods in spring. Farmers plant rice on the banks. ", 6) +
		strings.Repeat("Compilers translate source code. A parser builds the syntax tree. ", 6)
	o := lib.AddText(ctx, "notes.txt", []byte(text), "", nil)
	if !o.OK() || o.Result != catalog.Added || !o.Semantic {
		t.Fatalf("add: %+v", o)
	}
	if o.Embed.Requests < 2 || o.Embed.Fetched == 0 {
		t.Errorf("add made %d requests for %d texts: want batches of at most 4 to /api/embed", o.Embed.Requests, o.Embed.Fetched)
	}
	var width int
	err = db.View(ctx, func(tx *image.Tx) error {
		_, ps, err := catalog.Get(tx, catalog.IDOf("notes.txt"))
		if err != nil {
			return err
		}
		for _, p := range ps {
			if len(p.Vector) == 0 {
				t.Errorf("chunk %d has no vector", p.Position)
			}
			width = len(p.Vector)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s embeds in %d dimensions; %d texts in %d requests", model, width, o.Embed.Fetched, o.Embed.Requests)

	// The same text again costs no call: the document is unchanged.
	if again := lib.AddText(ctx, "notes.txt", []byte(text), "", nil); again.Result != catalog.Unchanged || again.Embed.Requests != 0 {
		t.Errorf("re-add: %+v, want unchanged with no requests", again)
	}
	res, err := lib.Search(ctx, library.Query{Text: "parser syntax tree", K: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != library.ModeHybrid || len(res.Hits) == 0 {
		t.Fatalf("search: mode %s, %d hits, note %q", res.Mode, len(res.Hits), res.Note)
	}
	if !strings.Contains(res.Hits[0].Text, "parser") {
		t.Errorf("best hit %q does not hold the words searched", res.Hits[0].Text)
	}
}
