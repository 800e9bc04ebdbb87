package bolt

import (
	"fmt"
	"sync"

	"batos/internal/store"
)

// overlay holds the transactions that are durable in the write-ahead log
// but not yet checkpointed into the bbolt file. Readers look here first.
//
// Only the committer changes the overlay. A checkpoint removes
// transactions only after the bbolt commit holding them returned, so a
// reader that misses a revision here finds it in a bbolt transaction it
// begins afterwards.
type overlay struct {
	mu    sync.RWMutex
	txs   []walTx                    // in TID order
	revs  map[store.OID][]overlayRev // per object, in TID order
	bytes int
}

type overlayRev struct {
	tid    store.TID
	record []byte
}

func newOverlay() *overlay {
	return &overlay{revs: make(map[store.OID][]overlayRev)}
}

// add appends committed transactions. Caller: the committer.
func (o *overlay) add(txs []walTx) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, t := range txs {
		o.txs = append(o.txs, t)
		o.bytes += len(t.entry)
		for _, w := range t.writes {
			o.revs[w.oid] = append(o.revs[w.oid], overlayRev{tid: t.tid, record: w.record})
			o.bytes += len(w.record) + 32
		}
	}
}

// take returns the pending transactions, which clear removes once they
// are in the bbolt file. Caller: the committer, with no add in between.
func (o *overlay) take() []walTx {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.txs
}

func (o *overlay) clear() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.txs, o.revs, o.bytes = nil, make(map[store.OID][]overlayRev), 0
}

func (o *overlay) empty() bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return len(o.txs) == 0
}

func (o *overlay) size() (txs, bytes int) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return len(o.txs), o.bytes
}

// loadAt finds oid's newest revision at or before at. found is false when
// the overlay has none, and the bbolt file must be asked.
func (o *overlay) loadAt(oid store.OID, at store.TID) (rec store.Record, found bool, err error) {
	o.mu.RLock()
	revs := o.revs[oid]
	var hit *overlayRev
	for i := len(revs) - 1; i >= 0; i-- {
		if revs[i].tid <= at {
			hit = &revs[i]
			break
		}
	}
	o.mu.RUnlock()
	if hit == nil {
		return store.Record{}, false, nil
	}
	flags, data, err := decodeRecord(revKey(oid, hit.tid), hit.record)
	if err != nil {
		return store.Record{}, true, err
	}
	if flags&flagDeleted != 0 {
		return store.Record{}, true, fmt.Errorf("load %s: deleted by %s: %w", oid, hit.tid, store.ErrNotFound)
	}
	return store.Record{OID: oid, Serial: hit.tid, Data: append([]byte(nil), data...)}, true, nil
}

// current returns the envelope of oid's newest overlay revision, if any.
// Caller: the committer (it alone changes the overlay, so no lock is
// needed to read it).
func (o *overlay) current(oid store.OID) (store.TID, []byte, bool) {
	revs := o.revs[oid]
	if len(revs) == 0 {
		return 0, nil, false
	}
	r := revs[len(revs)-1]
	return r.tid, r.record, true
}
