package index

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"batos/internal/catalog"
	"batos/internal/catalog/fulltext"
	"batos/internal/catalog/vector"
	"batos/internal/image"
	"batos/internal/store"
)

// DefaultFlushInterval is how often, at most, the state and the vector
// file are saved while changes arrive.
const DefaultFlushInterval = 30 * time.Second

// Options configures Open; nil or zero fields give the defaults.
type Options struct {
	// Model is the embedding model whose vectors are indexed; empty for
	// text search only. Chunks embedded by another model are searched by
	// their text alone. Opening with another model than the index was
	// built for rebuilds it.
	Model string
	// FlushInterval: DefaultFlushInterval when zero.
	FlushInterval time.Duration
	// Progress, if set, is told how a rebuild advances: documents done
	// of the total.
	Progress func(done, total int)
	Logger   *slog.Logger
}

// Report says what Open or Reindex did.
type Report struct {
	// Rebuilt is set when the indexes were built anew from the image,
	// and Reason says why ("no index yet", a damaged file, ...).
	Rebuilt bool
	Reason  string
	// Documents counts the documents a rebuild indexed: a first build
	// (NoIndexYet) over documents means the index was lost.
	Documents int
	// Replayed counts the transactions caught up from the log.
	Replayed int
	Took     time.Duration
}

func (r Report) String() string {
	if r.Rebuilt {
		return fmt.Sprintf("index rebuilt in %s (%s)", r.Took.Round(time.Millisecond), r.Reason)
	}
	if r.Replayed > 0 {
		return fmt.Sprintf("index caught up with %d transactions in %s", r.Replayed, r.Took.Round(time.Millisecond))
	}
	return "index up to date"
}

// Index is the catalog's indexes, kept in step with one image. Its
// methods are safe for concurrent use.
type Index struct {
	dir  string
	db   *image.DB
	opts Options
	log  *slog.Logger

	// mu guards everything below: Sync and the other writers hold it
	// exclusively, searches shared.
	mu   sync.RWMutex
	text *fulltext.Index
	vec  *vector.Index // nil until the first vector arrives
	st   *state
	// chunkDoc maps a chunk to its document's ID, for filters on vector
	// hits (derived from st.Docs).
	chunkDoc map[store.OID]string
	// methodIDs holds the full-text IDs of the methods st.Methods lists
	// (derived from it), for a search to check its hits at once.
	methodIDs map[string]bool
	// unbuilt, when set, says why the indexes are not whole (a rebuild
	// failed part way): they are not saved, and the next Sync rebuilds
	// them.
	unbuilt string
	// batch gathers full-text entries to write together (put).
	batch []fulltext.Entry
	// methods holds, for each method entry given to the full-text index
	// by this Index, a hash of what it was given (methodKey), so that an
	// object written again puts only the methods that changed: a receiver
	// that gains a method per cycle would otherwise be put whole at every
	// catch-up. It is memory only (empty after Open: the first catch-up
	// to see an object puts all its methods) and is cleared when a write
	// fails, since what the index holds is then not known.
	methods map[string]uint64
	// dirty is set when st or vec changed since the last save.
	dirty   bool
	savedAt time.Time
	closed  bool
}

// Open opens the indexes in dir for db, building them when there are
// none or they cannot be used, and catches them up with the image.
func Open(ctx context.Context, dir string, db *image.DB, opts *Options) (*Index, Report, error) {
	start := time.Now()
	ix := &Index{dir: dir, db: db}
	if opts != nil {
		ix.opts = *opts
	}
	if ix.opts.FlushInterval <= 0 {
		ix.opts.FlushInterval = DefaultFlushInterval
	}
	ix.log = ix.opts.Logger
	if ix.log == nil {
		ix.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, Report{}, fmt.Errorf("index: %w", err)
	}
	reason, err := ix.load(ctx)
	if err != nil {
		return nil, Report{}, err
	}
	var rep Report
	if reason != "" {
		rep, err = ix.rebuild(ctx, reason)
	} else {
		rep, err = ix.catchUp(ctx)
	}
	if err != nil {
		ix.closeFiles()
		return nil, rep, err
	}
	rep.Took = time.Since(start)
	if rep.Rebuilt {
		// A first build is no news; a rebuild of an index that was there
		// is damage or a change worth seeing.
		level := slog.LevelWarn
		if rep.Reason == NoIndexYet {
			level = slog.LevelInfo
		}
		ix.log.Log(ctx, level, "catalog index rebuilt", "dir", dir, "reason", rep.Reason, "took", rep.Took)
	}
	return ix, rep, nil
}

// ErrInUse is returned by Open when another Index, in this process or
// another, holds the indexes in the directory.
var ErrInUse = errors.New("index: in use")

// load opens what dir holds; it returns why the indexes must be rebuilt,
// or "" when they can be caught up. Indexes another Index holds are an
// error: rebuilding them would pull them from under it.
func (ix *Index) load(ctx context.Context) (string, error) {
	text, err := fulltext.Open(filepath.Join(ix.dir, textDir))
	if errors.Is(err, fulltext.ErrInUse) {
		return "", fmt.Errorf("%w: %s", ErrInUse, ix.dir)
	}
	reason := ix.use(ctx, text, err)
	if reason != "" && text != nil {
		text.Close()
	}
	return reason, nil
}

// use takes what load opened when the state agrees with it and with the
// image; else it returns why not.
func (ix *Index) use(ctx context.Context, text *fulltext.Index, textErr error) string {
	st, err := readState(ix.dir)
	if errors.Is(err, errNoState) && textErr == nil {
		// The full-text index is there without the state that says what
		// it holds: damage, not a first build.
		return "the index's " + stateFile + " is missing"
	}
	if err != nil {
		return err.Error()
	}
	if st.Model != ix.opts.Model {
		return fmt.Sprintf("the embedding model changed from %q to %q", st.Model, ix.opts.Model)
	}
	last := ix.db.Store().LastTID()
	if st.LastTID > last {
		return fmt.Sprintf("the index has seen transaction %s, newer than the image's newest, %s (another image?)", st.LastTID, last)
	}
	if _, err := ix.db.Store().Transaction(ctx, st.LastTID); err != nil {
		return fmt.Sprintf("the image's log no longer has transaction %s, the last the index saw (packed, or another image)", st.LastTID)
	}
	if textErr != nil {
		return "full-text index: " + textErr.Error()
	}
	var vec *vector.Index
	if st.Dims > 0 {
		if vec, err = vector.Load(filepath.Join(ix.dir, vectorsFile)); err != nil {
			return "vector index: " + err.Error()
		}
		if vec.Dims() != st.Dims {
			return fmt.Sprintf("vector index: %d dimensions, the state says %d", vec.Dims(), st.Dims)
		}
	}
	ix.text, ix.vec, ix.st = text, vec, st
	ix.rebuildChunkDoc()
	ix.savedAt = time.Now()
	return ""
}

func (ix *Index) rebuildChunkDoc() {
	ix.chunkDoc = map[store.OID]string{}
	for id, d := range ix.st.Docs {
		for _, c := range d.Chunks {
			ix.chunkDoc[c] = id
		}
	}
	ix.methodIDs = map[string]bool{}
	for oid, sels := range ix.st.Methods {
		for _, s := range sels {
			ix.methodIDs[methodID(oid, s)] = true
		}
	}
}

func (ix *Index) closeFiles() {
	if ix.text != nil {
		ix.text.Close()
		ix.text = nil
	}
}

// Reindex rebuilds the indexes from the image.
func (ix *Index) Reindex(ctx context.Context) (Report, error) {
	start := time.Now()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return Report{}, errClosed
	}
	rep, err := ix.rebuild(ctx, "asked for")
	rep.Took = time.Since(start)
	return rep, err
}

var errClosed = errors.New("index: closed")

// usableLocked says why the indexes cannot be searched now, if they
// cannot; with the mutex held, shared at least.
func (ix *Index) usableLocked() error {
	switch {
	case ix.closed:
		return errClosed
	case ix.unbuilt != "":
		// A rebuild failed after the Sync before this search.
		return fmt.Errorf("index: not rebuilt: %s", ix.unbuilt)
	}
	return nil
}

// rebuild builds the indexes anew from the image's newest state.
func (ix *Index) rebuild(ctx context.Context, reason string) (Report, error) {
	ix.unbuilt = reason
	// No state may name indexes half rebuilt: after a crash, Open finds
	// none and rebuilds again.
	if err := os.Remove(filepath.Join(ix.dir, stateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Report{}, fmt.Errorf("index: rebuild: %w", err)
	}
	ix.closeFiles()
	text, err := fulltext.Create(filepath.Join(ix.dir, textDir))
	if err != nil {
		return Report{}, fmt.Errorf("index: rebuild: %w", err)
	}
	ix.text, ix.vec, ix.st = text, nil, newState(ix.opts.Model)
	ix.chunkDoc, ix.methodIDs = map[store.OID]string{}, map[string]bool{}
	ix.methods = map[string]uint64{}
	// A vector file from before must not outlive a failed rebuild.
	if err := os.Remove(filepath.Join(ix.dir, vectorsFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Report{}, fmt.Errorf("index: rebuild: %w", err)
	}
	err = ix.db.View(ctx, func(tx *image.Tx) error {
		docs, bad, err := catalog.Scan(tx)
		if err != nil {
			return err
		}
		for _, b := range bad {
			if err := ix.noteBroken(b, nil); err != nil {
				return err
			}
		}
		for i, d := range docs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := ix.indexDoc(tx, d, nil); err != nil {
				return err
			}
			if ix.opts.Progress != nil {
				ix.opts.Progress(i+1, len(docs))
			}
		}
		if err := ix.indexAllMethods(tx); err != nil {
			return err
		}
		if err := ix.flushPuts(); err != nil {
			return err
		}
		ix.st.LastTID = tx.Snapshot()
		return nil
	})
	if err != nil {
		ix.batch, ix.methods = nil, nil
		return Report{}, fmt.Errorf("index: rebuild: %w", err)
	}
	ix.unbuilt, ix.dirty = "", true
	if err := ix.flush(); err != nil {
		return Report{}, err
	}
	return Report{Rebuilt: true, Reason: reason, Documents: len(ix.st.Docs)}, nil
}

// Sync brings the indexes up to the image's newest transaction.
func (ix *Index) Sync(ctx context.Context) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return errClosed
	}
	_, err := ix.catchUp(ctx)
	return err
}

// catchUp applies the transactions committed since the state's last;
// with the mutex held (or before Open returns).
func (ix *Index) catchUp(ctx context.Context) (Report, error) {
	if ix.unbuilt != "" {
		return ix.rebuildLogged(ctx, "an earlier rebuild did not finish ("+ix.unbuilt+")")
	}
	if ix.db.Store().LastTID() == ix.st.LastTID {
		return Report{}, ix.maybeFlush()
	}
	var rep Report
	lost := false
	err := ix.db.View(ctx, func(tx *image.Tx) error {
		snap := tx.Snapshot()
		txs, found, err := ix.logSince(ctx, snap)
		if err != nil {
			return err
		}
		if !found {
			lost = true
			return nil
		}
		rep.Replayed = len(txs)
		written := map[store.OID]bool{}
		for _, t := range txs {
			for _, oid := range t.OIDs {
				written[oid] = true
			}
		}
		if err := ix.applyWritten(tx, written); err != nil {
			return err
		}
		if err := ix.flushPuts(); err != nil {
			return err
		}
		ix.st.LastTID = snap
		ix.dirty = true
		return nil
	})
	if err != nil {
		ix.batch, ix.methods = nil, nil
		return rep, fmt.Errorf("index: catch up: %w", err)
	}
	if lost {
		return ix.rebuildLogged(ctx, fmt.Sprintf("the image's log no longer has transaction %s, the last the index saw (packed)", ix.st.LastTID))
	}
	return rep, ix.maybeFlush()
}

// rebuildLogged rebuilds and logs it, for the rebuilds Sync makes,
// whose reports no caller sees.
func (ix *Index) rebuildLogged(ctx context.Context, reason string) (Report, error) {
	start := time.Now()
	rep, err := ix.rebuild(ctx, reason)
	if err == nil {
		ix.log.Warn("catalog index rebuilt", "dir", ix.dir, "reason", reason, "took", time.Since(start))
	}
	return rep, err
}

// logSince lists the transactions after the state's last up to snap,
// and whether the log still holds the state's last (else what came
// between cannot be known).
func (ix *Index) logSince(ctx context.Context, snap store.TID) ([]store.TxInfo, bool, error) {
	var out []store.TxInfo
	before := snap + 1
	// A search syncs, so the index is mostly a few transactions behind:
	// the first page is small, and the pages grow.
	for limit := 16; ; limit = min(2*limit, 512) {
		page, err := ix.db.Store().Log(ctx, store.LogQuery{Before: before, Limit: limit})
		if err != nil {
			return nil, false, err
		}
		for _, t := range page {
			if t.TID <= ix.st.LastTID {
				return out, t.TID == ix.st.LastTID, nil
			}
			out = append(out, t)
		}
		if len(page) == 0 {
			return out, false, nil
		}
		before = page[len(page)-1].TID
	}
}

// applyWritten re-indexes what the objects written since the state's
// last transaction hold.
func (ix *Index) applyWritten(tx *image.Tx, written map[store.OID]bool) error {
	docsChanged := false
	if cat, err := catalogOID(tx); err == nil && written[cat] {
		docsChanged = true
	}
	// A chunk written alone (its text edited by hand, say) changes
	// neither its document object nor the catalog: its document is
	// indexed again all the same.
	stale := map[string]bool{}
	for id, d := range ix.st.Docs {
		if written[d.OID] {
			docsChanged = true
		}
		for _, c := range d.Listed {
			if written[c] {
				stale[id] = true
			}
		}
	}
	for oid := range written {
		if id, ok := ix.chunkDoc[oid]; ok {
			stale[id] = true
		}
	}
	if docsChanged || len(stale) > 0 {
		if err := ix.syncDocs(tx, stale); err != nil {
			return err
		}
	}
	labels := tx.NamesByOID()
	for _, oid := range slices.Sorted(maps.Keys(written)) {
		if err := ix.indexMethods(tx, oid, labels); err != nil {
			return err
		}
	}
	return nil
}

// catalogOID is the OID of the root's knowledge_catalog object, which
// every change to the set of documents writes.
func catalogOID(tx *image.Tx) (store.OID, error) {
	names, err := tx.RootNames()
	if err != nil {
		return 0, err
	}
	oid, ok := names["knowledge_catalog"]
	if !ok {
		return 0, errors.New("no knowledge_catalog")
	}
	return oid, nil
}

// syncDocs re-indexes the documents that changed, and those in stale,
// and drops those gone.
func (ix *Index) syncDocs(tx *image.Tx, stale map[string]bool) error {
	docs, bad, err := catalog.Scan(tx)
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(docs)+len(bad))
	for _, b := range bad {
		seen[b.ID] = true
		old := ix.st.Docs[b.ID]
		if old != nil && old.OID == b.OID && old.Serial == b.Serial && old.Broken != "" && !stale[b.ID] {
			continue
		}
		if err := ix.noteBroken(b, old); err != nil {
			return err
		}
	}
	for _, d := range docs {
		seen[d.ID] = true
		old := ix.st.Docs[d.ID]
		if old != nil && old.OID == d.OID && old.Serial == d.Serial && !stale[d.ID] {
			continue
		}
		if err := ix.indexDoc(tx, d, old); err != nil {
			return err
		}
	}
	for id, old := range ix.st.Docs {
		if !seen[id] {
			if err := ix.dropChunks(old.Chunks, nil); err != nil {
				return err
			}
			delete(ix.st.Docs, id)
		}
	}
	return nil
}

// putBatch is how many full-text entries are gathered into one write:
// each write is fsynced and makes a segment to merge, so a rebuild that
// wrote each document alone would spend its time there.
const putBatch = 2000

// put adds entries to the full-text index, in batches of putBatch;
// flushPuts writes what is gathered.
func (ix *Index) put(entries []fulltext.Entry) error {
	ix.batch = append(ix.batch, entries...)
	if len(ix.batch) >= putBatch {
		return ix.flushPuts()
	}
	return nil
}

func (ix *Index) flushPuts() error {
	if len(ix.batch) == 0 {
		return nil
	}
	err := ix.text.Put(ix.batch)
	ix.batch = nil
	return err
}

// del removes entries from the full-text index, after the puts gathered
// before it, so that the two apply in order.
func (ix *Index) del(ids []string) error {
	if err := ix.flushPuts(); err != nil {
		return err
	}
	return ix.text.Delete(ids)
}

// chunkID and methodID are the full-text index's keys.
func chunkID(oid store.OID) string { return "c" + strconv.FormatUint(uint64(oid), 10) }

func methodID(oid store.OID, selector string) string {
	return "m" + strconv.FormatUint(uint64(oid), 10) + "." + selector
}

// Field names of the full-text entries.
const (
	fieldKind     = "kind"
	fieldDoc      = "doc"
	fieldPath     = "path"
	fieldReceiver = "receiver"
	metaPrefix    = "meta."

	kindChunk  = "chunk"
	kindMethod = "method"
)

// noteBroken records a document object the catalog cannot read: its old
// entries go, and it is indexed again once it changes.
func (ix *Index) noteBroken(b catalog.BadDoc, old *docState) error {
	ix.log.Warn("catalog document not indexed", "doc", b.ID, "err", b.Err)
	if old != nil {
		if err := ix.dropChunks(old.Chunks, nil); err != nil {
			return err
		}
	}
	ix.st.Docs[b.ID] = &docState{OID: b.OID, Serial: b.Serial, Broken: b.Err.Error()}
	ix.dirty = true
	return nil
}

// indexDoc (re)indexes document d, replacing old's entries.
func (ix *Index) indexDoc(tx *image.Tx, d *catalog.Doc, old *docState) error {
	ds := &docState{OID: d.OID, Serial: d.Serial, Title: d.Title, Path: d.Path, Meta: d.Meta, Chunks: d.Chunks}
	_, passages, err := catalog.Get(tx, d.ID)
	if err != nil {
		// A document edited by hand into a shape the catalog cannot
		// read: its old entries go, and it is noted, not indexed.
		ix.log.Warn("catalog document not indexed", "doc", d.ID, "err", err)
		ds.Chunks, ds.Broken, ds.Listed = nil, err.Error(), d.Chunks
		passages = nil
	}
	keep := map[store.OID]bool{}
	for _, c := range ds.Chunks {
		keep[c] = true
	}
	if old != nil {
		if err := ix.dropChunks(old.Chunks, keep); err != nil {
			return err
		}
	}
	entries := make([]fulltext.Entry, 0, len(passages))
	for _, p := range passages {
		fields := map[string]string{fieldKind: kindChunk, fieldDoc: d.ID, fieldPath: d.Path}
		for k, v := range d.Meta {
			fields[metaPrefix+k] = v
		}
		entries = append(entries, fulltext.Entry{ID: chunkID(p.OID), Title: d.Title, Text: p.Text, Fields: fields})
	}
	if err := ix.put(entries); err != nil {
		return err
	}
	if ix.st.Model != "" && d.EmbedModel == ix.st.Model {
		ds.Vectors = true
		for _, p := range passages {
			if p.Vector == nil {
				continue
			}
			if err := ix.addVector(p.OID, p.Vector); err != nil {
				ix.log.Warn("catalog chunk vector not indexed", "doc", d.ID, "chunk", p.OID, "err", err)
			}
		}
	}
	ix.st.Docs[d.ID] = ds
	for _, c := range ds.Chunks {
		ix.chunkDoc[c] = d.ID
	}
	ix.dirty = true
	return nil
}

func (ix *Index) addVector(oid store.OID, v []float32) error {
	if ix.vec == nil {
		ix.vec = vector.New(len(v))
		ix.st.Dims = len(v)
	}
	return ix.vec.Add(uint64(oid), v)
}

// dropChunks removes chunks from the indexes, but those in keep.
func (ix *Index) dropChunks(chunks []store.OID, keep map[store.OID]bool) error {
	var ids []string
	for _, c := range chunks {
		if keep[c] {
			continue
		}
		ids = append(ids, chunkID(c))
		delete(ix.chunkDoc, c)
		if ix.vec != nil {
			ix.vec.Delete(uint64(c))
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return ix.del(ids)
}

// indexAllMethods indexes the methods of every object reachable from
// the root but the catalog's documents and chunks, which hold none.
func (ix *Index) indexAllMethods(tx *image.Tx) error {
	labels := tx.NamesByOID()
	skip := map[store.OID]bool{}
	for _, d := range ix.st.Docs {
		skip[d.OID] = true
		for _, c := range d.Chunks {
			skip[c] = true
		}
	}
	seen := map[store.OID]bool{}
	queue := []store.OID{image.RootOID}
	seen[image.RootOID] = true
	for len(queue) > 0 {
		oid := queue[0]
		queue = queue[1:]
		o, err := tx.Object(oid)
		if err != nil {
			continue // a dangling reference: verify's to report, not ours
		}
		if err := ix.indexObjectMethods(o, labels); err != nil {
			return err
		}
		for _, v := range o.PeekSlots() {
			for _, r := range refsIn(v, nil) {
				if !seen[r] && !skip[r] {
					seen[r] = true
					queue = append(queue, r)
				}
			}
		}
	}
	return nil
}

// refsIn appends the objects v refers to.
func refsIn(v image.Value, out []store.OID) []store.OID {
	switch v := v.(type) {
	case image.Ref:
		out = append(out, store.OID(v))
	case *image.List:
		for _, e := range v.Elems {
			out = refsIn(e, out)
		}
	case image.Tuple:
		for _, e := range v {
			out = refsIn(e, out)
		}
	case *image.Dict:
		for k, e := range v.All() {
			out = refsIn(e, refsIn(k, out))
		}
	}
	return out
}

// indexMethods re-indexes the methods object oid holds now.
func (ix *Index) indexMethods(tx *image.Tx, oid store.OID, labels map[store.OID]string) error {
	if _, isChunk := ix.chunkDoc[oid]; isChunk {
		return nil
	}
	o, err := tx.Object(oid)
	if err != nil {
		// Gone (packed away): its methods go too.
		return ix.dropMethods(oid, nil)
	}
	return ix.indexObjectMethods(o, labels)
}

// indexObjectMethods puts o's methods that are new or changed since
// this Index last put them, and drops those o no longer has.
func (ix *Index) indexObjectMethods(o *image.Object, labels map[store.OID]string) error {
	oid := o.OID()
	var entries []fulltext.Entry
	var selectors []string
	receiver := labels[oid]
	if receiver == "" {
		receiver = oid.String()
	}
	for name, v := range o.PeekSlots() {
		m, ok := v.(*image.Method)
		if !ok {
			continue
		}
		selectors = append(selectors, name)
		id, key := methodID(oid, name), methodKey(receiver, m.Source)
		if k, ok := ix.methods[id]; ok && k == key {
			continue
		}
		entries = append(entries, fulltext.Entry{
			ID: id,
			// Identifiers are split at underscores so that words find
			// them: "describe_yourself" is found by "describe".
			Title:  name + " " + strings.ReplaceAll(name, "_", " "),
			Text:   receiver + "\n" + strings.ReplaceAll(m.Source, "_", " "),
			Fields: map[string]string{fieldKind: kindMethod, fieldReceiver: receiver},
		})
		if ix.methods == nil {
			ix.methods = map[string]uint64{}
		}
		// Before the put is written: a failed write clears the map.
		ix.methods[id] = key
	}
	keep := make(map[string]bool, len(selectors))
	for _, s := range selectors {
		keep[s] = true
	}
	if err := ix.dropMethods(oid, keep); err != nil {
		return err
	}
	if len(selectors) > 0 {
		ix.st.Methods[oid] = selectors
		for _, s := range selectors {
			ix.methodIDs[methodID(oid, s)] = true
		}
		ix.dirty = true
	}
	return ix.put(entries)
}

// methodSeed seeds methodKey's hashes, for the life of the process.
var methodSeed = maphash.MakeSeed()

// methodKey is what a method's full-text entry is made of (its selector
// is in its ID), hashed.
func methodKey(receiver, source string) uint64 {
	var h maphash.Hash
	h.SetSeed(methodSeed)
	h.WriteString(receiver)
	h.WriteByte(0)
	h.WriteString(source)
	return h.Sum64()
}

// dropMethods removes oid's indexed methods but those in keep.
func (ix *Index) dropMethods(oid store.OID, keep map[string]bool) error {
	old, ok := ix.st.Methods[oid]
	if !ok {
		return nil
	}
	var ids []string
	for _, s := range old {
		if !keep[s] {
			id := methodID(oid, s)
			ids = append(ids, id)
			delete(ix.methods, id)
			delete(ix.methodIDs, id)
		}
	}
	delete(ix.st.Methods, oid)
	ix.dirty = true
	if len(ids) == 0 {
		return nil
	}
	return ix.del(ids)
}

// maybeFlush saves when changes have waited long enough.
func (ix *Index) maybeFlush() error {
	if ix.dirty && time.Since(ix.savedAt) >= ix.opts.FlushInterval {
		return ix.flush()
	}
	return nil
}

// flush saves the vector file, then the state that names it: a crash
// between leaves an older state, whose replay is safe. The full-text
// index's batches are made durable first (they are applied at once and
// persisted in the background), so no state names changes a crash could
// still lose.
func (ix *Index) flush() error {
	if !ix.dirty || ix.unbuilt != "" {
		return nil
	}
	if err := ix.text.Flush(); err != nil {
		return fmt.Errorf("index: save: %w", err)
	}
	if ix.vec != nil {
		if err := ix.vec.Save(filepath.Join(ix.dir, vectorsFile)); err != nil {
			return fmt.Errorf("index: save vectors: %w", err)
		}
	}
	if err := writeState(ix.dir, ix.st); err != nil {
		return fmt.Errorf("index: save state: %w", err)
	}
	ix.dirty, ix.savedAt = false, time.Now()
	return nil
}

// Flush saves what changed since the last save.
func (ix *Index) Flush() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return errClosed
	}
	return ix.flush()
}

// Close saves and closes the indexes.
func (ix *Index) Close() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return nil
	}
	ix.closed = true
	err := ix.flush()
	if ix.text != nil {
		err = errors.Join(err, ix.text.Close())
		ix.text = nil
	}
	return err
}

// Dir is the directory the indexes live in.
func (ix *Index) Dir() string { return ix.dir }

// Model is the embedding model whose vectors are indexed; empty for none.
func (ix *Index) Model() string { return ix.opts.Model }

// Stats describes what the indexes hold.
type Stats struct {
	LastTID   store.TID
	Documents int
	Chunks    int
	Methods   int
	Vectors   int
	Dims      int
	Model     string
	// Entries is the full-text index's count of entries.
	Entries uint64
	// Bytes is the size of the index directory on disk.
	Bytes int64
}

// Stats syncs and reports what the indexes hold.
func (ix *Index) Stats(ctx context.Context) (Stats, error) {
	if err := ix.Sync(ctx); err != nil {
		return Stats{}, err
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if err := ix.usableLocked(); err != nil {
		return Stats{}, err
	}
	s := Stats{LastTID: ix.st.LastTID, Documents: len(ix.st.Docs), Chunks: len(ix.chunkDoc), Dims: ix.st.Dims, Model: ix.st.Model}
	for _, sel := range ix.st.Methods {
		s.Methods += len(sel)
	}
	if ix.vec != nil {
		s.Vectors = ix.vec.Len()
	}
	var err error
	if s.Entries, err = ix.text.Count(); err != nil {
		return s, err
	}
	filepath.WalkDir(ix.dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				s.Bytes += fi.Size()
			}
		}
		return nil
	})
	return s, nil
}
