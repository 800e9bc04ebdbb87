package bolt

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"batos/internal/store"
)

// overlay holds the transactions that are durable in the write-ahead log
// but not yet in the bbolt file. Readers look here first.
//
// It has two generations: active receives new commits; frozen is being
// written into the bbolt file by a checkpoint, while commits go on. Only
// the committer adds or freezes; the checkpoint drops frozen only after the
// bbolt commit holding it returned, so a reader that finds a revision in
// neither generation finds it in a bbolt transaction it begins afterwards.
type overlay struct {
	mu     sync.RWMutex
	active *generation
	frozen *generation // nil when no checkpoint runs
}

type generation struct {
	txs   []walTx // in TID order
	revs  map[store.OID][]overlayRev
	bytes int
	since time.Time // when the first transaction arrived
}

type overlayRev struct {
	tid    store.TID
	record []byte
}

func newGeneration() *generation {
	return &generation{revs: make(map[store.OID][]overlayRev)}
}

func newOverlay() *overlay { return &overlay{active: newGeneration()} }

// add appends committed transactions to the active generation.
func (o *overlay) add(txs []walTx) {
	o.mu.Lock()
	defer o.mu.Unlock()
	g := o.active
	if len(g.txs) == 0 {
		g.since = time.Now()
	}
	for _, t := range txs {
		g.txs = append(g.txs, t)
		g.bytes += len(t.entry)
		for _, w := range t.writes {
			g.revs[w.oid] = append(g.revs[w.oid], overlayRev{tid: t.tid, record: w.record})
			g.bytes += len(w.record) + 32
		}
	}
}

// freeze makes the active generation the one to checkpoint and returns its
// transactions. Caller: the committer, when no checkpoint runs.
func (o *overlay) freeze() []walTx {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.frozen != nil {
		panic("bolt: freeze while a checkpoint runs")
	}
	o.frozen, o.active = o.active, newGeneration()
	return o.frozen.txs
}

// dropFrozen forgets the frozen generation once it is in the bbolt file.
func (o *overlay) dropFrozen() {
	o.mu.Lock()
	o.frozen = nil
	o.mu.Unlock()
}

func (o *overlay) empty() bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return len(o.active.txs) == 0 && o.frozen == nil
}

// activeSize reports how much the active generation holds and since when.
func (o *overlay) activeSize() (txs, bytes int, since time.Time) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return len(o.active.txs), o.active.bytes, o.active.since
}

// generations lists the generations newest first. Caller holds o.mu.
func (o *overlay) generationsLocked() []*generation {
	if o.frozen == nil {
		return []*generation{o.active}
	}
	return []*generation{o.active, o.frozen}
}

// loadAt finds oid's newest revision at or before at. found is false when
// the overlay has none, and the bbolt file must be asked. later reports
// that the overlay holds a revision of oid newer than the one found (or,
// when none is found, any revision of it).
func (o *overlay) loadAt(oid store.OID, at store.TID) (rec store.Record, found, later bool, err error) {
	var hit *overlayRev
	o.mu.RLock()
	for _, g := range o.generationsLocked() {
		revs := g.revs[oid]
		for i := len(revs) - 1; i >= 0 && hit == nil; i-- {
			if revs[i].tid <= at {
				hit = &revs[i]
			} else {
				later = true
			}
		}
		if hit != nil {
			break
		}
	}
	o.mu.RUnlock()
	if hit == nil {
		return store.Record{}, false, later, nil
	}
	flags, data, err := decodeRecord(revKey(oid, hit.tid), hit.record)
	if err != nil {
		return store.Record{}, true, later, err
	}
	if flags&flagDeleted != 0 {
		return store.Record{}, true, later, fmt.Errorf("load %s: deleted by %s: %w", oid, hit.tid, store.ErrNotFound)
	}
	return store.Record{OID: oid, Serial: hit.tid, Data: append([]byte(nil), data...)}, true, later, nil
}

// current returns oid's newest overlay revision, if any. Caller: the
// committer.
func (o *overlay) current(oid store.OID) (store.TID, []byte, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	for _, g := range o.generationsLocked() {
		if revs := g.revs[oid]; len(revs) > 0 {
			r := revs[len(revs)-1]
			return r.tid, r.record, true
		}
	}
	return 0, nil, false
}

// revisions returns oid's overlay revisions, newest first.
func (o *overlay) revisions(oid store.OID) []overlayRev {
	o.mu.RLock()
	defer o.mu.RUnlock()
	var out []overlayRev
	for _, g := range o.generationsLocked() {
		revs := g.revs[oid]
		for i := len(revs) - 1; i >= 0; i-- {
			out = append(out, revs[i])
		}
	}
	return out
}

// transactions returns the overlay's transactions, newest first.
func (o *overlay) transactions() []walTx {
	o.mu.RLock()
	defer o.mu.RUnlock()
	var out []walTx
	for _, g := range o.generationsLocked() {
		for i := len(g.txs) - 1; i >= 0; i-- {
			out = append(out, g.txs[i])
		}
	}
	return out
}

// newest returns, newest first, up to limit of the overlay's
// transactions older than before (0: no bound; limit <= 0: all), without
// copying the rest: a log read for the few newest is frequent.
func (o *overlay) newest(before store.TID, limit int) []walTx {
	o.mu.RLock()
	defer o.mu.RUnlock()
	var out []walTx
	for _, g := range o.generationsLocked() {
		for i := len(g.txs) - 1; i >= 0; i-- {
			if limit > 0 && len(out) == limit {
				return out
			}
			if before == 0 || g.txs[i].tid < before {
				out = append(out, g.txs[i])
			}
		}
	}
	return out
}

// transaction finds one transaction by TID.
func (o *overlay) transaction(tid store.TID) (walTx, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	for _, g := range o.generationsLocked() {
		if i, ok := slices.BinarySearchFunc(g.txs, tid, func(t walTx, tid store.TID) int {
			return cmpTID(t.tid, tid)
		}); ok {
			return g.txs[i], true
		}
	}
	return walTx{}, false
}

func cmpTID(a, b store.TID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
