package bolt

import (
	"context"
	"fmt"
	"slices"

	bbolt "go.etcd.io/bbolt"

	"batos/internal/store"
)

// Load implements store.Engine.
func (db *DB) Load(ctx context.Context, oid store.OID) (store.Record, error) {
	return db.LoadAt(ctx, oid, store.MaxTID)
}

// LoadAt implements store.Engine.
func (db *DB) LoadAt(ctx context.Context, oid store.OID, at store.TID) (store.Record, error) {
	// The overlay first: a revision missing there because a checkpoint
	// just moved it is in the bbolt transaction begun after.
	if rec, found, err := db.overlay.loadAt(oid, at); found {
		return rec, err
	}
	var rec store.Record
	err := db.view(func(tx *bbolt.Tx) error {
		var err error
		rec, err = loadAt(tx.Bucket(bucketRevs).Cursor(), oid, at)
		return err
	})
	return rec, err
}

func loadAt(c *bbolt.Cursor, oid store.OID, at store.TID) (store.Record, error) {
	k, v := revisionAt(c, oid, at)
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
		for k, v := lastRevision(c, oid); k != nil && store.OID(beUint64(k)) == oid; k, v = c.Prev() {
			if limit > 0 && len(revs) >= limit+fromOverlay {
				break
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
		return nil
	})
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
	for _, t := range db.overlay.transactions() {
		if q.Before != 0 && t.tid >= q.Before {
			continue
		}
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
		v := tx.Bucket(bucketTxns).Get(key)
		if v == nil {
			return fmt.Errorf("transaction %s: %w", tid, store.ErrNoTransaction)
		}
		var err error
		info, err = decodeTxn(key, v)
		return err
	})
	return info, err
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
		return err
	})
	if err != nil {
		return st, err
	}
	st.Blobs, st.BlobBytes, err = db.blobs.usage(ctx)
	return st, err
}
