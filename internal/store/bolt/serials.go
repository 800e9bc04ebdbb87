package bolt

import (
	"sync"
	"sync/atomic"

	"batos/internal/store"
)

// maxSerials bounds how many objects serials remembers, about 20 bytes
// each.
const maxSerials = 1 << 18

// serials remembers, for objects read or written lately, the serial of
// their newest revision: a reader whose snapshot is at least that new
// sees that revision (store.SerialReader), with no bbolt transaction.
//
// An entry is only ever the newest revision of its object, in the
// overlay or the file. The committer records each group's revisions
// (wrote) after adding them to the overlay and before publishing their
// TID, so no snapshot can see a revision newer than an entry; anything
// else that changes what the store holds (a pack's sweep, a compaction)
// forgets every entry. A reader learns an entry only from a load that
// found its object's newest revision, and only if nothing wrote or
// forgot since it began (gen): a revision added meanwhile may have come
// too late for the load to see it.
type serials struct {
	gen    atomic.Uint64 // bumped, under mu, by wrote and forget
	mu     sync.RWMutex
	newest map[store.OID]store.TID
}

func newSerials() *serials {
	return &serials{newest: make(map[store.OID]store.TID)}
}

// at returns the serial of oid's revision as of at, if known.
func (s *serials) at(oid store.OID, at store.TID) (store.TID, bool) {
	s.mu.RLock()
	serial, ok := s.newest[oid]
	s.mu.RUnlock()
	if !ok || serial > at {
		return 0, false
	}
	return serial, true
}

// generation is what a reader reads before it loads, to learn from the
// load afterwards.
func (s *serials) generation() uint64 { return s.gen.Load() }

// learn records serial as oid's newest revision, found by a load begun
// at generation gen, unless something was written or forgotten since.
func (s *serials) learn(gen uint64, oid store.OID, serial store.TID) {
	s.mu.Lock()
	if s.gen.Load() == gen {
		s.putLocked(oid, serial)
	}
	s.mu.Unlock()
}

// wrote records the revisions of committed transactions, in TID order,
// as their objects' newest. Caller: the syncer, after adding them to
// the overlay and before publishing their TIDs.
func (s *serials) wrote(txs []walTx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen.Add(1)
	for _, t := range txs {
		for _, w := range t.writes {
			if len(w.record) > 0 && w.record[0]&flagDeleted != 0 {
				delete(s.newest, w.oid)
				continue
			}
			s.putLocked(w.oid, t.tid)
		}
	}
}

// forget drops every entry, after revisions were deleted or the file
// replaced.
func (s *serials) forget() {
	s.mu.Lock()
	s.gen.Add(1)
	clear(s.newest)
	s.mu.Unlock()
}

// putLocked sets an entry, making room first by dropping one at random
// (a map's iteration order) when full.
func (s *serials) putLocked(oid store.OID, serial store.TID) {
	if _, ok := s.newest[oid]; !ok && len(s.newest) >= maxSerials {
		for victim := range s.newest {
			delete(s.newest, victim)
			break
		}
	}
	s.newest[oid] = serial
}
