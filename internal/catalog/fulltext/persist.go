package fulltext

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
)

// Batches are applied at once and persisted by scorch in the background
// (its unsafe batch mode): a writer that waited for each batch's segment
// file and snapshot to be fsynced paid two fsyncs and the persister's
// turn on every Put. Flush waits for what was applied to be persisted;
// persistence tracks the batches applied and not yet persisted.

// asyncErrors names the scorch callback that tells an Index of errors
// its background work meets (a snapshot it could not persist, say).
const asyncErrors = "batos-fulltext"

// open maps the directory scorch works in (storeDir) to its Index, for
// the callback.
var open sync.Map // storeDir(dir) → *Index

func init() {
	// The registry must be filled before any index opens.
	scorch.RegistryAsyncErrorCallbacks[asyncErrors] = func(err error, path string) {
		if ix, ok := open.Load(path); ok {
			ix.(*Index).persist.failed(err)
		}
	}
}

// storeDir is the path bleve gives scorch for the index in dir.
func storeDir(dir string) string { return dir + string(os.PathSeparator) + "store" }

// maxUnpersisted bounds the batches applied and not yet persisted: a
// writer faster than the persister (a rebuild) waits rather than pile
// segments up in memory.
const maxUnpersisted = 8

// persistence counts the batches applied and not yet persisted.
type persistence struct {
	mu          sync.Mutex
	cond        sync.Cond
	unpersisted int
	// err is the last error the background work reported since the
	// batches were last all persisted.
	err error
}

// batchState is one batch's progress: scorch may persist it before
// Batch returns, and never tells of a batch it refused.
type batchState struct{ applied, persisted bool }

func (p *persistence) init() { p.cond.L = &p.mu }

// track gives b a callback that counts it persisted, and returns the
// state applied must be given once Batch has accepted b.
func (p *persistence) track(b *bleve.Batch) *batchState {
	s := &batchState{}
	b.SetPersistedCallback(func(error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		s.persisted = true
		if s.applied {
			p.settledLocked()
		}
	})
	return s
}

// applied counts s, which Batch accepted, as unpersisted until it is.
func (p *persistence) applied(s *batchState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.applied = true
	if !s.persisted {
		p.unpersisted++
	}
}

func (p *persistence) settledLocked() {
	p.unpersisted--
	if p.unpersisted == 0 {
		p.err = nil
	}
	p.cond.Broadcast()
}

func (p *persistence) failed(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
	p.cond.Broadcast()
}

// room waits while maxUnpersisted batches are unpersisted, unless the
// background work has reported an error (Flush's to report).
func (p *persistence) room() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.unpersisted >= maxUnpersisted && p.err == nil {
		p.cond.Wait()
	}
}

// wait waits until at most n batches are unpersisted, or the background
// work reports an error (returned) meanwhile.
func (p *persistence) wait(n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = nil
	for p.unpersisted > n && p.err == nil {
		p.cond.Wait()
	}
	if p.unpersisted > n {
		return p.err
	}
	return nil
}

// errUnpersisted is returned by Flush when scorch could not persist what
// was applied.
var errUnpersisted = errors.New("fulltext: batches not persisted")

// Flush returns once every batch Put and Delete applied before it is
// durable, or the error that keeps one from being persisted (the batches
// stay applied; a later Flush may succeed). Puts and Deletes wait for it.
func (ix *Index) Flush() error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return ErrClosed
	}
	ix.wmu.Lock()
	defer ix.wmu.Unlock()
	return ix.flushLocked()
}

// flushLocked is Flush with wmu held.
func (ix *Index) flushLocked() error {
	if err := ix.persist.wait(0); err != nil {
		return fmt.Errorf("flush index %s: %w: %v", ix.dir, errUnpersisted, err)
	}
	return nil
}
