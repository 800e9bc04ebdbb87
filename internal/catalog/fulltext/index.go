package fulltext

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	zapx "github.com/blevesearch/zapx/v17"
)

func init() {
	// zapx buffers each merge's output in a buffer of this size, made and
	// cleared for every merge: an index that gains an entry or two at a
	// time (a method installed by a cycle) merges small segments often,
	// and spent more time clearing 1 MiB than merging them. Bigger merges
	// write in 64 KiB pieces, which costs them nothing measurable.
	zapx.DefaultFileMergerBufferSize = 64 << 10
}

// Errors of the index.
var (
	// ErrMissing is returned by Open when dir holds no index: it does not
	// exist or is an empty directory.
	ErrMissing = errors.New("fulltext: no index")
	// ErrDamaged is returned by Open when dir holds something that is not
	// a readable index, and by Search, Put and Delete when bleve panics on
	// what it reads; the error says what failed. Rebuild the index with
	// Create.
	ErrDamaged = errors.New("fulltext: index damaged")
	// ErrInUse is returned by Open and Create when another Index, in this
	// process or another, holds the index in dir.
	ErrInUse = errors.New("fulltext: index in use")
	// ErrClosed is returned by the methods of a closed Index.
	ErrClosed = errors.New("fulltext: index closed")
)

// Bleve's names for the fields of an entry's document.
const (
	fieldTitle = "title"
	fieldText  = "text"
	// fieldLengths is stored, not indexed: the token counts of the entry's
	// Title and Text, which Put and Delete subtract from the totals when
	// they replace or remove it.
	fieldLengths = "n"
	// fieldPrefix starts the name of a keyword field, so that a Fields
	// key cannot name one of the fields above.
	fieldPrefix = "f."
)

// boltTimeout bounds the wait for bleve's lock on its snapshot file, which
// inUse has found free an instant before; without it a race would hang.
const boltTimeout = "1s"

// Index is a full-text index in a directory. Its methods may be called
// from several goroutines at once.
type Index struct {
	dir string
	an  *analyzer

	// mu guards closed and the life of bi: Close takes it exclusively,
	// everything else shared.
	mu     sync.RWMutex
	closed bool
	bi     bleve.Index

	// wmu serialises Put, Delete and Flush: Put and Delete each read the
	// totals and write them back in their batch.
	wmu   sync.Mutex
	stats atomic.Pointer[stats]

	persist persistence
}

// Create makes a new, empty index in dir, removing whatever dir held. It
// refuses (ErrInUse) when an Index holds the index there.
func Create(dir string) (*Index, error) {
	busy, err := inUse(dir)
	if err != nil {
		return nil, fmt.Errorf("create index %s: %w", dir, err)
	}
	if busy && !lockedByPanic(dir) {
		return nil, fmt.Errorf("create index %s: %w", dir, ErrInUse)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("create index %s: %w", dir, err)
	}
	forgetPanic(dir)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("create index %s: %w", dir, err)
	}
	// Made with safe batches, which the index's metadata keeps for whoever
	// opens it with bleve alone: the totals are durable when Create
	// returns. It is then opened as Open does.
	bi, err := bleve.NewUsing(dir, newMapping(), scorch.Name, scorch.Name, createConfig())
	if err != nil {
		return nil, fmt.Errorf("create index %s: %w", dir, err)
	}
	st := &stats{Version: formatVersion}
	err = bi.SetInternal([]byte(statsKey), st.encode())
	if cerr := bi.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("create index %s: %w", dir, err)
	}
	if bi, err = openBleve(dir, false); err != nil {
		return nil, fmt.Errorf("create index %s: %w", dir, err)
	}
	return newIndex(dir, bi, st)
}

// Open opens the index in dir. It returns an error wrapping ErrMissing
// when there is none, ErrDamaged when what is there cannot be read, and
// ErrInUse when another Index holds it.
func Open(dir string) (*Index, error) {
	if err := probe(dir); err != nil {
		return nil, fmt.Errorf("open index %s: %w", dir, err)
	}
	// Check the files with bleve's background work (merging, persisting)
	// off, so that nothing reads a damaged segment before the check has.
	if err := verify(dir); err != nil {
		return nil, fmt.Errorf("open index %s: %w: %v", dir, ErrDamaged, err)
	}
	bi, err := openBleve(dir, false)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w: %v", dir, ErrDamaged, err)
	}
	st, err := loadStats(bi)
	if err != nil {
		bi.Close()
		return nil, fmt.Errorf("open index %s: %w: %v", dir, ErrDamaged, err)
	}
	return newIndex(dir, bi, st)
}

func newIndex(dir string, bi bleve.Index, st *stats) (*Index, error) {
	an, err := newAnalyzer()
	if err != nil {
		bi.Close()
		return nil, fmt.Errorf("index %s: %w", dir, err)
	}
	ix := &Index{dir: dir, an: an, bi: bi}
	ix.stats.Store(st)
	ix.persist.init()
	open.Store(storeDir(dir), ix)
	return ix, nil
}

// probe classifies dir before bleve sees it: missing, not a directory,
// in use.
func probe(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrMissing, err)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: not a directory", ErrDamaged)
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	if len(names) == 0 {
		return fmt.Errorf("%w: empty directory", ErrMissing)
	}
	busy, err := inUse(dir)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	if busy && lockedByPanic(dir) {
		return fmt.Errorf("%w: locked by an earlier open that failed", ErrDamaged)
	}
	if busy {
		return ErrInUse
	}
	return nil
}

// openBleve opens the bleve index in dir, turning a panic into an error:
// scorch panics when its snapshot file cannot be loaded (it closes a
// channel it has not made yet), bbolt on some damage, and both fault when
// they read a file cut short through its memory map (made a panic by
// debug.SetPanicOnFault).
func openBleve(dir string, readOnly bool) (bi bleve.Index, err error) {
	defer func(faults bool) {
		debug.SetPanicOnFault(faults)
		if r := recover(); r != nil {
			notePanic(dir)
			bi, err = nil, fmt.Errorf("bleve panicked: %v", r)
		}
	}(debug.SetPanicOnFault(true))
	bi, err = bleve.OpenUsing(dir, runtimeConfig(readOnly))
	if err != nil {
		return nil, err
	}
	adv, err := bi.Advanced()
	if err != nil {
		bi.Close()
		return nil, err
	}
	if _, ok := adv.(*scorch.Scorch); !ok {
		bi.Close()
		return nil, fmt.Errorf("index type %T, not scorch", adv)
	}
	return bi, nil
}

// createConfig is scorch's configuration while Create makes an index,
// which bleve keeps in the index's metadata: safe batches, as for any
// tool that opens the index with bleve alone.
func createConfig() map[string]any {
	return map[string]any{"unsafe_batch": false, "bolt_timeout": boltTimeout}
}

// runtimeConfig is scorch's configuration. Batch returns once the batch
// is applied, and scorch persists it in the background (persist.go);
// errors of the background work are told to the Index.
func runtimeConfig(readOnly bool) map[string]any {
	return map[string]any{
		"read_only":              readOnly,
		"unsafe_batch":           true,
		"bolt_timeout":           boltTimeout,
		"asyncErrorCallbackName": asyncErrors,
	}
}

// newMapping gives bleve's mapping, which nothing uses: documents are
// built and analysed here (see document), and searches are run here (see
// topK). It turns off what bleve would otherwise do with a document.
func newMapping() *mapping.IndexMappingImpl {
	m := bleve.NewIndexMapping()
	m.DefaultMapping.Dynamic = false
	m.StoreDynamic = false
	m.IndexDynamic = false
	m.DocValuesDynamic = false
	return m
}

// Count returns the number of entries.
func (ix *Index) Count() (uint64, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return 0, ErrClosed
	}
	n, err := ix.bi.DocCount()
	if err != nil {
		return 0, fmt.Errorf("count entries: %w", err)
	}
	return n, nil
}

// Close waits for the searches and writes under way and closes the index.
// It is safe to call twice.
func (ix *Index) Close() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return nil
	}
	ix.closed = true
	// What was applied is persisted first: scorch drops what it has not
	// persisted when it closes.
	ix.wmu.Lock()
	ferr := ix.flushLocked()
	ix.wmu.Unlock()
	err := ix.bi.Close()
	open.CompareAndDelete(storeDir(ix.dir), ix)
	if err != nil {
		return fmt.Errorf("close index %s: %w", ix.dir, err)
	}
	return ferr
}
