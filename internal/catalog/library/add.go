package library

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"batos/internal/catalog"
	"batos/internal/catalog/embed"
	"batos/internal/image"
)

// Outcome is what became of one file or text given to add.
type Outcome struct {
	Path string
	// ID is the document's ID (empty when nothing was added).
	ID string
	// Result is catalog.Added, Unchanged or Replaced when Err is nil and
	// Skipped is empty.
	Result catalog.AddResult
	// Skipped says why a file was left out without an error: binary
	// content, no text.
	Skipped string
	Err     error
	Chunks  int
	Bytes   int
	// Semantic reports chunks cut at embedding breakpoints.
	Semantic bool
	// Embed counts the texts embedded and the calls they cost.
	Embed embed.Stats
}

// OK reports whether the file is in the catalog as given.
func (o Outcome) OK() bool { return o.Err == nil && o.Skipped == "" }

// Progress is told as an add advances: after each file, how many of how
// many files and bytes are done.
type Progress func(o Outcome, doneFiles, totalFiles int, doneBytes, totalBytes int64)

// AddPaths adds files, and the files under directories (recursively,
// skipping hidden names), to the catalog: each file whole in one
// transaction or not at all. meta is recorded on every document. One
// file's failure does not stop the others; the error returned is for
// what stops the whole add (a path that does not exist, a cancelled
// context).
func (l *Library) AddPaths(ctx context.Context, paths []string, meta map[string]string, progress Progress) ([]Outcome, error) {
	files, total, err := walk(paths)
	if err != nil {
		return nil, err
	}
	var out []Outcome
	var done int64
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		o := l.addFile(ctx, f.path, meta)
		out = append(out, o)
		done += f.size
		if progress != nil {
			progress(o, i+1, len(files), done, total)
		}
	}
	// The indexes take every file's changes in one catch-up (a search
	// would catch up anyway): one per file would write each alone.
	l.syncQuietly(ctx)
	return out, nil
}

type file struct {
	path string
	size int64
}

// walk lists the regular files paths name, in order, with their sizes.
func walk(paths []string) ([]file, int64, error) {
	var files []file
	var total int64
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, 0, fmt.Errorf("catalog add: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, file{p, fi.Size()})
			total += fi.Size()
			continue
		}
		// A directory named through a symbolic link is walked where it
		// leads (WalkDir does not follow a link, even the root); links
		// met inside a directory are not followed, so a loop cannot trap
		// the walk.
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			p = resolved
		}
		var under []file
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				// A subdirectory that cannot be read, or that vanished
				// while walking: its files are left out, said by the
				// outcome of a file that cannot be read.
				if path == p {
					return err
				}
				under = append(under, file{path, 0})
				return nil
			}
			if path != p && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() {
				fi, err := d.Info()
				size := int64(0)
				if err == nil {
					size = fi.Size()
				}
				under = append(under, file{path, size})
			}
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("catalog add: %w", err)
		}
		sort.Slice(under, func(i, j int) bool { return under[i].path < under[j].path })
		for _, f := range under {
			total += f.size
		}
		files = append(files, under...)
	}
	return files, total, nil
}

// addFile reads and adds one file; its document is named by the file's
// absolute path, so adding it again from elsewhere finds it.
func (l *Library) addFile(ctx context.Context, path string, meta map[string]string) Outcome {
	o := Outcome{Path: path}
	abs, err := filepath.Abs(path)
	if err != nil {
		o.Err = err
		return o
	}
	o.Path = abs
	data, err := l.readFile(abs)
	if err != nil {
		o.Err = err
		return o
	}
	return l.add(ctx, catalog.Source{Path: abs, Title: filepath.Base(abs), Data: data, Meta: meta}, o)
}

// readFile reads a file within the size limit: a file over it is refused
// by its size before it is read, and one that grows past it while read
// is refused too, so memory stays bounded by the limit.
func (l *Library) readFile(path string) ([]byte, error) {
	limit := l.maxBytes()
	// Non-blocking, so that a FIFO (or a device) opens at once and is
	// refused by the check below instead of waiting for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s vanished before it could be read", path)
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	if fi.Size() > int64(limit) {
		return nil, fmt.Errorf("%w: %s is %d bytes, over the limit of %d bytes", catalog.ErrTooLarge, path, fi.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%w: %s grew past the limit of %d bytes while it was read", catalog.ErrTooLarge, path, limit)
	}
	return data, nil
}

func (l *Library) maxBytes() int {
	if l.opts.MaxBytes > 0 {
		return l.opts.MaxBytes
	}
	return catalog.DefaultMaxBytes
}

// AddText adds a text under a name (its path in the catalog), as the
// bridge's catalog_add does for text a client sends.
func (l *Library) AddText(ctx context.Context, name string, data []byte, title string, meta map[string]string) Outcome {
	o := l.add(ctx, catalog.Source{Path: name, Title: title, Data: data, Meta: meta}, Outcome{Path: name})
	l.syncQuietly(ctx)
	return o
}

// dropStale takes out of the catalog the document a skipped file had
// before it lost its text: its content changed to none, so its earlier
// chunks would be stale answers.
func (l *Library) dropStale(ctx context.Context, path string, o Outcome) Outcome {
	id := catalog.IDOf(path)
	removed := false
	err := l.db.Update(ctx, func(tx *image.Tx) error {
		removed = false
		if _, _, err := catalog.Get(tx, id); errors.Is(err, catalog.ErrNoDocument) {
			return nil
		}
		tx.Note(fmt.Sprintf("catalog: remove %s (%s now)", path, o.Skipped))
		if err := catalog.Remove(tx, id); err != nil {
			return err
		}
		removed = true
		return nil
	})
	switch {
	case err != nil:
		o.Err = fmt.Errorf("%s has %s now, and its earlier document could not be taken out of the catalog: %w", path, o.Skipped, err)
	case removed:
		o.ID = id
		o.Skipped += "; its earlier content was taken out of the catalog"
	}
	return o
}

// add prepares, embeds and writes one document.
func (l *Library) add(ctx context.Context, src catalog.Source, o Outcome) (out Outcome) {
	defer func() {
		if out.Err != nil {
			out.ID = "" // nothing was added
		}
	}()
	o.Bytes = len(src.Data)
	p, err := catalog.Prepare(src, &catalog.Options{Bounds: l.opts.Bounds, MaxBytes: l.maxBytes(), Now: l.opts.Now})
	switch {
	case errors.Is(err, catalog.ErrBinary):
		o.Skipped = "binary content, not indexed as text"
		return l.dropStale(ctx, src.Path, o)
	case errors.Is(err, catalog.ErrEmpty):
		o.Skipped = "no text"
		return l.dropStale(ctx, src.Path, o)
	case err != nil:
		o.Err = err
		return o
	}
	o.ID = p.Doc().ID
	l.addMu.Lock()
	defer l.addMu.Unlock()
	// What the document would be, embedded as this library embeds: if
	// the catalog has exactly that, nothing is paid for or written.
	if l.emb != nil {
		p.PlanEmbedding(l.emb.Model(), l.opts.Percentile)
	}
	var current *catalog.Doc
	unchanged := false
	if err := l.db.View(ctx, func(tx *image.Tx) error {
		var err error
		current, unchanged, err = catalog.Current(tx, p)
		return err
	}); err != nil {
		o.Err = err
		return o
	}
	if unchanged {
		o.Result, o.Chunks, o.Semantic = catalog.Unchanged, len(current.Chunks), current.Chunking.Semantic()
		return o
	}
	usage := l.takePending()
	if l.emb != nil {
		if err := l.embed(ctx, p, &o, &usage); err != nil {
			o.Err = err
			// The calls were made and are accounted for even though the
			// document is not added.
			l.recordUsage(ctx, usage, src.Path)
			return o
		}
	}
	err = l.db.Update(ctx, func(tx *image.Tx) error {
		doc, result, err := catalog.Write(tx, p)
		if err != nil {
			return err
		}
		tx.Note(fmt.Sprintf("catalog: %s %s (%d chunks)", result, src.Path, len(doc.Chunks)))
		o.Result, o.Chunks = result, len(doc.Chunks)
		if usage != (catalog.EmbeddingUsage{}) {
			return catalog.RecordEmbedding(tx, usage)
		}
		return nil
	})
	if err != nil {
		o.Err = err
		l.recordUsage(ctx, usage, src.Path)
		return o
	}
	o.Semantic = l.emb != nil
	return o
}

// embed cuts p at its units' semantic breakpoints and embeds its chunks.
func (l *Library) embed(ctx context.Context, p *catalog.Prepared, o *Outcome, usage *catalog.EmbeddingUsage) error {
	units := p.Units()
	texts := make([]string, len(units))
	for i, u := range units {
		texts[i] = u.Text
	}
	account := func(s embed.Stats, took time.Duration, failed bool) {
		o.Embed.Texts += s.Texts
		o.Embed.Cached += s.Cached
		o.Embed.Fetched += s.Fetched
		o.Embed.Requests += s.Requests
		o.Embed.PromptTokens += s.PromptTokens
		usage.Calls += int64(s.Requests)
		usage.PromptTokens += int64(s.PromptTokens)
		usage.Texts += int64(s.Texts)
		usage.Cached += int64(s.Cached)
		usage.Latency += took
		if failed {
			usage.Failures++
		}
	}
	start := time.Now()
	vecs, s, err := l.emb.Embed(ctx, texts)
	account(s, time.Since(start), err != nil)
	if err != nil {
		return fmt.Errorf("embed %s: %w (the document was not added; what was embedded is cached, so adding it again resumes)", p.Doc().Path, err)
	}
	breaks, err := catalog.Breakpoints(vecs, l.opts.Percentile)
	if err != nil {
		return fmt.Errorf("chunk %s: %w", p.Doc().Path, err)
	}
	p.Chunk(breaks, l.emb.Model(), l.opts.Percentile)
	chunks := p.Chunks()
	texts = texts[:0]
	for _, c := range chunks {
		texts = append(texts, c.Text)
	}
	start = time.Now()
	cvecs, s, err := l.emb.Embed(ctx, texts)
	account(s, time.Since(start), err != nil)
	if err != nil {
		return fmt.Errorf("embed %s: %w (the document was not added; what was embedded is cached, so adding it again resumes)", p.Doc().Path, err)
	}
	return p.SetVectors(l.emb.Model(), cvecs)
}

// recordUsage saves the usage of calls whose document was not added.
func (l *Library) recordUsage(ctx context.Context, u catalog.EmbeddingUsage, path string) {
	if u == (catalog.EmbeddingUsage{}) {
		return
	}
	err := l.db.Update(context.WithoutCancel(ctx), func(tx *image.Tx) error {
		tx.Note("catalog: embedding calls for " + path)
		return catalog.RecordEmbedding(tx, u)
	})
	if err != nil {
		l.log.Warn("catalog embedding usage not recorded", "err", err)
	}
}
