// Package library is the knowledge catalog as its users see it: files
// and texts added to the image (catalog), embedded for semantic chunking
// and search when an embedding model is configured (catalog/embed), and
// searched through indexes kept in step with the image (catalog/index).
// The CLI, the bridge, Starlark methods and the cycle's researcher all go
// through a Library.
//
// Without an embedding model the catalog still works: documents are cut
// into fixed-size sentence windows and searched by their text alone, and
// every result says so (Result.Mode).
package library

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"batos/internal/catalog"
	"batos/internal/catalog/embed"
	"batos/internal/catalog/index"
	"batos/internal/image"
)

// Options configures a Library; nil or zero fields give the defaults.
type Options struct {
	// IndexDir is where the indexes live (the image's path plus
	// ".index"); required.
	IndexDir string
	// Embedder embeds units and chunks; nil for no embedding model.
	Embedder *embed.Embedder
	// Percentile is where semantic chunking cuts; catalog.DefaultPercentile
	// when zero.
	Percentile float64
	// Bounds are the chunk sizes in tokens; catalog's defaults when zero.
	Bounds catalog.Bounds
	// MaxBytes is the largest document added; catalog.DefaultMaxBytes
	// when zero.
	MaxBytes int
	// IndexProgress is told how a rebuild of the indexes advances.
	IndexProgress func(done, total int)
	Logger        *slog.Logger
	// Now is the clock recorded on documents; time.Now when nil.
	Now func() time.Time
}

// Library is the knowledge catalog of one image.
type Library struct {
	db   *image.DB
	ix   *index.Index
	emb  *embed.Embedder
	opts Options
	log  *slog.Logger
	// addMu serializes adds, so that two adds of one path do not both
	// pay for its embeddings.
	addMu sync.Mutex
	// pending is the usage of query embeddings not yet recorded: a
	// search writes nothing, so it is saved with the next add or at
	// Close.
	pendMu  sync.Mutex
	pending catalog.EmbeddingUsage
}

// pend notes the usage of a query's embedding.
func (l *Library) pend(requests, tokens int, failed bool) {
	l.pendMu.Lock()
	defer l.pendMu.Unlock()
	l.pending.Calls += int64(requests)
	l.pending.PromptTokens += int64(tokens)
	l.pending.Texts++
	if requests == 0 && !failed {
		l.pending.Cached++
	}
	if failed {
		l.pending.Failures++
	}
}

// takePending returns the pending usage and clears it.
func (l *Library) takePending() catalog.EmbeddingUsage {
	l.pendMu.Lock()
	defer l.pendMu.Unlock()
	u := l.pending
	l.pending = catalog.EmbeddingUsage{}
	return u
}

// Open opens the catalog of db: the indexes in opts.IndexDir, rebuilt
// or caught up as needed (the report says which).
func Open(ctx context.Context, db *image.DB, opts *Options) (*Library, index.Report, error) {
	l := &Library{db: db}
	if opts != nil {
		l.opts = *opts
	}
	if l.opts.IndexDir == "" {
		return nil, index.Report{}, errors.New("library: no index directory")
	}
	if l.opts.Percentile == 0 {
		l.opts.Percentile = catalog.DefaultPercentile
	}
	l.log = l.opts.Logger
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.emb = l.opts.Embedder
	ix, rep, err := index.Open(ctx, l.opts.IndexDir, db, &index.Options{
		Model: l.EmbedModel(), Progress: l.opts.IndexProgress, Logger: l.log,
	})
	if err != nil {
		return nil, rep, err
	}
	l.ix = ix
	return l, rep, nil
}

// Close records the pending usage, and saves and closes the indexes.
func (l *Library) Close() error {
	l.recordUsage(context.Background(), l.takePending(), "searches")
	return l.ix.Close()
}

// EmbedModel is the embedding model, or "" when there is none.
func (l *Library) EmbedModel() string {
	if l.emb == nil {
		return ""
	}
	return l.emb.Model()
}

// Mode says how the catalog searches: ModeHybrid with an embedding
// model, else ModeText.
func (l *Library) Mode() string {
	if l.emb == nil {
		return ModeText
	}
	return ModeHybrid
}

// Modes of search.
const (
	// ModeHybrid fuses full-text and vector search.
	ModeHybrid = "hybrid"
	// ModeText is full-text search alone.
	ModeText = "text"
)

// NoModelNote is what every command says when there is no embedding
// model.
const NoModelNote = "no embedding model: chunks are fixed-size sentence windows and search is by text alone"

// Note is the note commands print about the catalog's mode; empty with
// an embedding model.
func (l *Library) Note() string {
	if l.emb == nil {
		return NoModelNote
	}
	return ""
}

// Reindex rebuilds the indexes from the image.
func (l *Library) Reindex(ctx context.Context) (index.Report, error) {
	return l.ix.Reindex(ctx)
}

// Stats is what the catalog holds and what its indexes hold.
type Stats struct {
	catalog.Summary
	Index index.Stats
	Usage catalog.EmbeddingUsage
	Model string
	Mode  string
}

// Stats counts the catalog's documents and the indexes' entries.
func (l *Library) Stats(ctx context.Context) (Stats, error) {
	s := Stats{Model: l.EmbedModel(), Mode: l.Mode()}
	err := l.db.View(ctx, func(tx *image.Tx) error {
		var err error
		if s.Summary, err = catalog.Stats(tx); err != nil {
			return err
		}
		s.Usage, err = catalog.EmbeddingUsageOf(tx)
		return err
	})
	if err != nil {
		return s, err
	}
	s.Index, err = l.ix.Stats(ctx)
	return s, err
}

// List returns the catalog's documents.
func (l *Library) List(ctx context.Context) ([]*catalog.Doc, error) {
	var docs []*catalog.Doc
	err := l.db.View(ctx, func(tx *image.Tx) error {
		var bad []catalog.BadDoc
		var err error
		docs, bad, err = catalog.Scan(tx)
		// A malformed entry does not hide the others; it is said in the
		// log, and catalog remove takes it out.
		for _, b := range bad {
			l.log.Warn("catalog document unreadable", "doc", b.ID, "err", b.Err)
		}
		return err
	})
	return docs, err
}

// Show returns a document, named by its ID or its path, and its chunks.
func (l *Library) Show(ctx context.Context, doc string) (*catalog.Doc, []catalog.Passage, error) {
	var d *catalog.Doc
	var ps []catalog.Passage
	err := l.db.View(ctx, func(tx *image.Tx) error {
		id, err := resolveDoc(tx, doc)
		if err != nil {
			return err
		}
		d, ps, err = catalog.Get(tx, id)
		return err
	})
	return d, ps, err
}

// Remove takes a document, named by its ID or its path, out of the
// catalog in one transaction.
func (l *Library) Remove(ctx context.Context, doc string) (*catalog.Doc, error) {
	var d *catalog.Doc
	err := l.db.Update(ctx, func(tx *image.Tx) error {
		id, err := resolveDoc(tx, doc)
		if err != nil {
			return err
		}
		if d, _, err = catalog.Get(tx, id); err != nil {
			if errors.Is(err, catalog.ErrNoDocument) {
				return err
			}
			// A malformed entry (edited by hand) is removed all the same:
			// removing it is how a user mends the catalog.
			d = &catalog.Doc{ID: id, Title: id, Path: "(a malformed document: " + err.Error() + ")"}
		}
		tx.Note("catalog: remove " + d.Path)
		return catalog.Remove(tx, id)
	})
	if err != nil {
		return nil, err
	}
	l.syncQuietly(ctx)
	return d, nil
}

// resolveDoc finds a document by ID, else by path: as given (a text's
// name), else made absolute, as AddPaths names files.
func resolveDoc(tx *image.Tx, doc string) (string, error) {
	ids := []string{doc, catalog.IDOf(doc)}
	if filepath.IsAbs(doc) {
		// Files are named by their clean absolute path.
		ids = append(ids, catalog.IDOf(filepath.Clean(doc)))
	} else {
		if abs, err := filepath.Abs(doc); err == nil {
			ids = append(ids, catalog.IDOf(abs))
		}
	}
	for _, id := range ids {
		listed, err := catalog.Listed(tx, id)
		if err != nil {
			return "", err
		}
		if listed {
			return id, nil
		}
	}
	return "", fmt.Errorf("%w: %q (neither a document ID nor a path in the catalog)", catalog.ErrNoDocument, doc)
}

// syncQuietly brings the indexes up to date after a change; a failure is
// logged and the next search tries again, since the change itself is
// committed.
func (l *Library) syncQuietly(ctx context.Context) {
	if err := l.ix.Sync(ctx); err != nil && ctx.Err() == nil {
		l.log.Warn("catalog index not caught up", "err", err)
	}
}
