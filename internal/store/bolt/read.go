package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bbolt "go.etcd.io/bbolt"

	"batos/internal/store"
)

// Load implements store.Engine.
func (db *DB) Load(ctx context.Context, oid store.OID) (store.Record, error) {
	return db.LoadAt(ctx, oid, store.MaxTID)
}

// LoadAt implements store.Engine. A load that finds its object's newest
// revision remembers its serial for SerialAt.
func (db *DB) LoadAt(ctx context.Context, oid store.OID, at store.TID) (store.Record, error) {
	gen := db.serials.generation()
	// The overlay first: a revision missing there because a checkpoint
	// just moved it is in the bbolt transaction begun after.
	rec, found, later, err := db.overlay.loadAt(oid, at)
	if !found {
		var newest bool
		err = db.view(func(tx *bbolt.Tx) error {
			var err error
			rec, newest, err = loadAt(tx.Bucket(bucketRevs).Cursor(), oid, at)
			return err
		})
		err = about(err, oid, 0)
		later = later || !newest
	}
	if err == nil && !later {
		db.serials.learn(gen, oid, rec.Serial)
	}
	return rec, err
}

// SerialAt implements store.SerialReader: it knows the objects whose
// newest revision was loaded or committed lately, unless a pack or a
// compaction came since.
func (db *DB) SerialAt(oid store.OID, at store.TID) (store.TID, bool) {
	select {
	case <-db.closing:
		return 0, false // LoadAt says it is closed
	default:
	}
	return db.serials.at(oid, at)
}

// loadAt finds oid's revision as of at through c; newest reports that
// the file holds no later revision of it.
func loadAt(c *bbolt.Cursor, oid store.OID, at store.TID) (rec store.Record, newest bool, err error) {
	k, v := revisionAt(c, oid, at)
	if k != nil {
		// A revision moved below the range cannot be the newest.
		nk, nv := c.Next()
		if err := misfiled(oid, nk, nv); err != nil {
			return store.Record{}, false, err
		}
		newest = len(nk) < 8 || store.OID(beUint64(nk)) != oid
	} else if err := checkBeside(c, oid, at, k); err != nil {
		return store.Record{}, false, err
	}
	rec, err = recordOf(oid, at, k, v)
	return rec, newest, err
}

// recordOf is the record of oid under key k as loadAt found it.
func recordOf(oid store.OID, at store.TID, k, v []byte) (store.Record, error) {
	if k == nil {
		if at == store.MaxTID {
			return store.Record{}, fmt.Errorf("load %s: %w", oid, store.ErrNotFound)
		}
		return store.Record{}, fmt.Errorf("load %s as of %s: %w", oid, at, store.ErrNotFound)
	}
	flags, data, err := decodeRecord(k, v)
	if err != nil {
		return store.Record{}, err
	}
	_, serial := splitRevKey(k)
	if flags&flagDeleted != 0 {
		return store.Record{}, fmt.Errorf("load %s: deleted by %s: %w", oid, serial, store.ErrNotFound)
	}
	return store.Record{OID: oid, Serial: serial, Data: append([]byte(nil), data...)}, nil
}

// History implements store.Engine.
func (db *DB) History(ctx context.Context, oid store.OID, limit int) ([]store.Revision, error) {
	// The overlay is read before the file: a revision a checkpoint moves
	// in between shows up in both, never in neither, and is counted once.
	var revs []store.Revision
	seen := map[store.TID]bool{}
	for _, r := range db.overlay.revisions(oid) {
		flags, data, err := decodeRecord(revKey(oid, r.tid), r.record)
		if err != nil {
			return nil, err
		}
		revs = append(revs, store.Revision{Serial: r.tid, Size: len(data), Deleted: flags&flagDeleted != 0})
		seen[r.tid] = true
	}
	fromOverlay := len(revs)
	err := db.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketRevs).Cursor()
		if err := checkBeside(c, oid, store.MaxTID, first(lastRevision(c, oid))); err != nil {
			return err
		}
		k, v := lastRevision(c, oid)
		for ; k != nil && store.OID(beUint64(k)) == oid; k, v = c.Prev() {
			if limit > 0 && len(revs) >= limit+fromOverlay {
				return nil
			}
			_, serial := splitRevKey(k)
			if seen[serial] {
				continue
			}
			flags, data, err := decodeRecord(k, v)
			if err != nil {
				return err
			}
			revs = append(revs, store.Revision{Serial: serial, Size: len(data), Deleted: flags&flagDeleted != 0})
		}
		return misfiled(oid, k, v)
	})
	err = about(err, oid, 0)
	if err == nil && len(revs) == 0 {
		err = fmt.Errorf("history of %s: %w", oid, store.ErrNotFound)
	}
	// A commit checkpointed between the two reads comes from the file
	// after older overlay entries: restore newest-first before limiting.
	slices.SortFunc(revs, func(a, b store.Revision) int { return cmpTID(b.Serial, a.Serial) })
	if limit > 0 && len(revs) > limit {
		revs = revs[:limit]
	}
	return revs, err
}

// Log implements store.Engine.
func (db *DB) Log(ctx context.Context, q store.LogQuery) ([]store.TxInfo, error) {
	var infos []store.TxInfo
	seen := map[store.TID]bool{}
	// Newest first: past the limit, the rest are older than every one kept.
	for _, t := range db.overlay.newest(q.Before, q.Limit) {
		info, err := decodeTxn(tidKey(t.tid), t.entry)
		if err != nil {
			return nil, err
		}
		infos = append(infos, info)
		seen[t.tid] = true
	}
	err := db.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketTxns).Cursor()
		var k, v []byte
		if q.Before == 0 {
			k, v = c.Last()
		} else if k, _ = c.Seek(tidKey(q.Before)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for fromOverlay := len(infos); k != nil && (q.Limit <= 0 || len(infos) < q.Limit+fromOverlay); k, v = c.Prev() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if seen[store.TID(beUint64(k))] {
				continue
			}
			info, err := decodeTxn(k, v)
			if err != nil {
				return err
			}
			infos = append(infos, info)
		}
		return nil
	})
	err = about(err, 0, 0)
	slices.SortFunc(infos, func(a, b store.TxInfo) int { return cmpTID(b.TID, a.TID) })
	if q.Limit > 0 && len(infos) > q.Limit {
		infos = infos[:q.Limit]
	}
	return infos, err
}

// Transaction implements store.Engine.
func (db *DB) Transaction(ctx context.Context, tid store.TID) (store.TxInfo, error) {
	if t, ok := db.overlay.transaction(tid); ok {
		return decodeTxn(tidKey(tid), t.entry)
	}
	var info store.TxInfo
	err := db.view(func(tx *bbolt.Tx) error {
		key := tidKey(tid)
		c := tx.Bucket(bucketTxns).Cursor()
		k, v := c.Seek(key)
		if !bytes.Equal(k, key) {
			if err := misfiledTxn(tid, k, v); err != nil {
				return err
			}
			if k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
			if err := misfiledTxn(tid, k, v); err != nil {
				return err
			}
			return fmt.Errorf("transaction %s: %w", tid, store.ErrNoTransaction)
		}
		var err error
		info, err = decodeTxn(key, v)
		return err
	})
	return info, about(err, 0, tid)
}

// Stats implements store.Engine. It walks the whole file.
func (db *DB) Stats(ctx context.Context) (store.Stats, error) {
	if err := db.sync(ctx); err != nil {
		return store.Stats{}, err
	}
	st := store.Stats{LastTID: db.LastTID()}
	err := db.view(func(tx *bbolt.Tx) error {
		var last store.OID
		err := tx.Bucket(bucketRevs).ForEach(func(k, _ []byte) error {
			st.Revisions++
			if oid, _ := splitRevKey(k); oid != last {
				st.Objects++
				last = oid
				if st.Objects%4096 == 0 {
					return ctx.Err()
				}
			}
			return nil
		})
		st.Transactions = tx.Bucket(bucketTxns).Stats().KeyN
		st.FileBytes = tx.Size()
		if err == nil {
			db.countOverlay(tx, &st)
		}
		return err
	})
	if err != nil {
		return st, about(err, 0, 0)
	}
	st.Blobs, st.BlobBytes, err = db.blobs.usage(ctx)
	return st, err
}

// countOverlay adds what the overlay holds that the file does not: on a
// read-only open, the log's transactions stay there (sync is a no-op).
// Otherwise sync has emptied it, but for commits since.
func (db *DB) countOverlay(tx *bbolt.Tx, st *store.Stats) {
	if !db.opts.ReadOnly {
		return
	}
	revs := tx.Bucket(bucketRevs)
	counted := map[store.OID]bool{}
	for _, t := range db.overlay.transactions() {
		if tx.Bucket(bucketTxns).Get(tidKey(t.tid)) != nil {
			continue
		}
		st.Transactions++
		for _, w := range t.writes {
			st.Revisions++
			if counted[w.oid] {
				continue
			}
			counted[w.oid] = true
			if k, _ := revs.Cursor().Seek(revKey(w.oid, 0)); k == nil || store.OID(beUint64(k)) != w.oid {
				st.Objects++ // new since the file
			}
		}
	}
}

// A damaged key byte that keeps the keys in order can move a revision out
// of its object's range, to the edge of a neighbour's, where a lookup would
// miss it without a word: the object would seem to have one revision fewer,
// or none. A record's checksum covers its key, so the records beside the
// range a lookup searched say whether one of them is the object's.

// checkBeside checks the records beside oid's revisions as of at, right
// after revisionAt found (or not) the newest of them, with the cursor
// where it left it.
func checkBeside(c *bbolt.Cursor, oid store.OID, at store.TID, found []byte) error {
	if found != nil {
		// A revision moved below the range cannot be the newest.
		k, v := c.Next()
		return misfiled(oid, k, v)
	}
	k, v := c.Seek(revKey(oid, at+1))
	if err := misfiled(oid, k, v); err != nil {
		return err
	}
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	return misfiled(oid, k, v)
}

// misfiled reports the record under key k if it is a revision of oid
// stored under another object's key, or under a TID no commit could have
// had: past MaxTID, it sorts after the range a lookup searches.
func misfiled(oid store.OID, k, v []byte) error {
	if len(k) != 16 && len(k) >= 8 && store.OID(beUint64(k)) == oid {
		// Lookups pass over it: a revision may hide under it.
		var tid store.TID
		if len(k) > 16 {
			tid = store.TID(beUint64(k[8:]))
		}
		return &store.CorruptError{OID: oid, TID: tid, Detail: fmt.Sprintf("a key of %d bytes, not 16, among its revisions: %x", len(k), k[:min(len(k), 24)])}
	}
	if len(k) != 16 || len(v) < 5 {
		return nil
	}
	other, tid := splitRevKey(k)
	switch {
	case other == oid && tid > store.MaxTID:
		return &store.CorruptError{OID: oid, TID: tid, Detail: "a revision is stored under a TID past any commit's: its key is damaged"}
	case other == oid || recordSum(revKey(oid, tid), v[0], v[5:]) != binary.BigEndian.Uint32(v[1:]):
		return nil
	}
	return &store.CorruptError{OID: oid, TID: tid, Detail: fmt.Sprintf("its key is damaged: the record is stored as %s's", other)}
}

// misfiledTxn reports the log entry under key k if it is tid's, stored
// under another transaction's key.
func misfiledTxn(tid store.TID, k, v []byte) error {
	if len(k) > 8 && store.TID(beUint64(k)) == tid {
		return &store.CorruptError{TID: tid, Detail: fmt.Sprintf("its log entry is stored under a key of %d bytes, not 8", len(k))}
	}
	if len(k) != 8 || len(v) < 4 || store.TID(beUint64(k)) == tid || txnSum(tidKey(tid), v[4:]) != binary.BigEndian.Uint32(v) {
		return nil
	}
	return &store.CorruptError{TID: tid, Detail: fmt.Sprintf("its key is damaged: the log entry is stored as %s's", store.TID(beUint64(k)))}
}

func first(k, _ []byte) []byte { return k }

// about adds the object or transaction being read to the problem a
// *StructureError from a guarded read reports.
func about(err error, oid store.OID, tid store.TID) error {
	if err == nil {
		return nil
	}
	var se *StructureError
	if errors.As(err, &se) && (se.Op == "read" || se.Op == "write") {
		for i := range se.Problems {
			se.Problems[i].OID, se.Problems[i].TID = oid, tid
		}
	}
	return err
}
