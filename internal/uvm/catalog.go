package uvm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"batos/internal/catalog/embed"
	"batos/internal/catalog/index"
	"batos/internal/catalog/library"
	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/mind"
)

// catalogSearchPrimitive is the name of knowledge_catalog's search slot.
const catalogSearchPrimitive = "catalog.search"

// IndexDir is where the catalog's indexes of the image at path live.
func IndexDir(path string) string { return DataDir(path, ".index") }

// Catalog returns the image's knowledge catalog, opened on first use: its
// indexes are caught up with the image (or rebuilt, which the log says),
// and its embedding model is the one pLLM records, reached through the
// mind's server.
func (u *UVM) Catalog(ctx context.Context) (*library.Library, error) {
	u.catMu.Lock()
	defer u.catMu.Unlock()
	if u.catalog != nil {
		return u.catalog, nil
	}
	u.mu.Lock()
	closing := u.closing
	u.mu.Unlock()
	if closing {
		return nil, ErrShutdown
	}
	// What opening writes (an index caught up) is the catalog's commit.
	ctx = image.WithTopic(ctx, command.TopicCatalog, nil)
	dir, lock, err := claimIndexDir(u.path)
	if err != nil {
		return nil, fmt.Errorf("knowledge catalog: %w", err)
	}
	release := func() {
		if lock != nil {
			lock.Close()
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		release()
		return nil, fmt.Errorf("knowledge catalog: %w", err)
	}
	model, err := mind.LoadEmbedModel(ctx, u.db)
	if err != nil {
		release()
		return nil, err
	}
	var emb *embed.Embedder
	if model != "" {
		cache, err := openEmbedCache(filepath.Join(dir, "embeddings"), u.log)
		if err != nil {
			release()
			return nil, err
		}
		u.embedCache = cache
		emb = embed.New(embedClient{u}, model, cache, nil)
	}
	lib, rep, err := library.Open(ctx, u.db, &library.Options{IndexDir: dir, Embedder: emb, Logger: u.log, IndexProgress: u.catalogProgress})
	if err != nil {
		if u.embedCache != nil {
			u.embedCache.Close()
			u.embedCache = nil
		}
		release()
		return nil, fmt.Errorf("knowledge catalog: %w", err)
	}
	u.catalog, u.catalogReport, u.indexLock = lib, rep, lock
	return lib, nil
}

// CatalogReport says what opening the catalog did to its indexes (caught
// up, or rebuilt and why); zero before Catalog opened it.
func (u *UVM) CatalogReport() index.Report {
	u.catMu.Lock()
	defer u.catMu.Unlock()
	return u.catalogReport
}

// openEmbedCache opens the embedding cache, starting a new one when the
// file is not one (it is derived data: only calls are lost).
func openEmbedCache(path string, log *slog.Logger) (*embed.Cache, error) {
	c, err := embed.OpenCache(path)
	if errors.Is(err, embed.ErrDamaged) {
		log.Warn("catalog: embedding cache unreadable, starting a new one", "path", path, "err", err)
		if err := os.Remove(path); err != nil {
			return nil, err
		}
		c, err = embed.OpenCache(path)
	}
	if err != nil {
		return nil, fmt.Errorf("knowledge catalog: embedding cache: %w", err)
	}
	return c, nil
}

// closeCatalog closes the catalog, if it was opened.
func (u *UVM) closeCatalog() error {
	u.catMu.Lock()
	defer u.catMu.Unlock()
	var err error
	if u.catalog != nil {
		err = u.catalog.Close()
		u.catalog = nil
	}
	if u.embedCache != nil {
		err = errors.Join(err, u.embedCache.Close())
		u.embedCache = nil
	}
	if u.indexLock != nil {
		u.indexLock.Close() // after the indexes are written: another node may take the directory
		u.indexLock = nil
	}
	return err
}

// embedClient embeds through the mind's server: the one enabled, else
// the one an on-demand mind connects to.
type embedClient struct{ u *UVM }

func (c embedClient) server(ctx context.Context) (*mind.Server, error) {
	if m := c.u.Mind(); m != nil {
		return m.Server(), nil
	}
	c.u.mindMu.Lock()
	connect := c.u.connect
	c.u.mindMu.Unlock()
	if connect == nil {
		return nil, fmt.Errorf("%w: no inference server is connected to embed with (batos run finds one; -llm names one)", llm.ErrUnavailable)
	}
	return connect(ctx)
}

func (c embedClient) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	return nil, errors.New("uvm: the catalog's client only embeds")
}

func (c embedClient) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	s, err := c.server(ctx)
	if err != nil {
		return nil, err
	}
	return s.Client.Embed(ctx, req)
}

// searchCatalog is knowledge_catalog.search(query[, k]) for methods (k
// from 1 to 100, 5 when left out; positional, as primitives are): a
// read-only search whose hits are read in the method's own transaction,
// each a dict of text, title, doc, path, position, score and chunk.
func (u *UVM) searchCatalog(ctx context.Context, tx *image.Tx, self image.Ref, args []image.Value) (image.Value, error) {
	const usage = "knowledge_catalog.search(query[, k])"
	if len(args) < 1 || len(args) > 2 {
		return nil, fmt.Errorf("%s: takes a query and an optional k (positional, 1 to 100, 5 when left out), got %d arguments", usage, len(args))
	}
	q, ok := args[0].(image.String)
	if !ok {
		return nil, fmt.Errorf("%s: the query is %s, want a string", usage, image.Repr(args[0]))
	}
	k := 5
	if len(args) == 2 {
		n, ok := args[1].(image.Int)
		if !ok || n < 1 || n > 100 {
			return nil, fmt.Errorf("%s: k is %s, want an int from 1 to 100", usage, image.Repr(args[1]))
		}
		k = int(n)
	}
	lib, err := u.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	res, err := lib.SearchIn(ctx, tx, library.Query{Text: string(q), K: k})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", usage, err)
	}
	hits := make([]image.Value, 0, len(res.Hits))
	for _, h := range res.Hits {
		d := &image.Dict{}
		for _, kv := range []struct {
			k string
			v image.Value
		}{
			{"text", image.String(h.Text)}, {"title", image.String(h.Doc.Title)}, {"doc", image.String(h.Doc.ID)},
			{"path", image.String(h.Doc.Path)}, {"position", image.Int(h.Position)},
			{"score", image.Float(h.Score)}, {"chunk", image.Ref(h.Chunk)},
		} {
			if err := d.Set(image.String(kv.k), kv.v); err != nil {
				return nil, err
			}
		}
		hits = append(hits, d)
	}
	return image.NewList(hits...), nil
}
