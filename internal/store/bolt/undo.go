package bolt

import (
	"context"
	"fmt"
	"maps"

	bbolt "go.etcd.io/bbolt"

	"batos/internal/store"
)

var keyPackedBefore = []byte("packed-before")

// Undo implements store.Engine. The new transaction's extension records
// which transaction it undid under the key "undo".
func (db *DB) Undo(ctx context.Context, tid store.TID, meta store.TxMeta) (store.TID, error) {
	meta.Extension = maps.Clone(meta.Extension)
	if meta.Extension == nil {
		meta.Extension = map[string]string{}
	}
	meta.Extension["undo"] = tid.String()
	if meta.Description == "" {
		meta.Description = "undo " + tid.String()
	}
	return db.submit(ctx, &commitRequest{meta: meta, undo: tid})
}

// undoWrites computes, inside the committing transaction, the writes that
// restore what tid changed: for each object, the revision before tid, or a
// deletion if tid created it.
func undoWrites(tx *bbolt.Tx, tid store.TID) ([]write, error) {
	if packed := tx.Bucket(bucketMeta).Get(keyPackedBefore); len(packed) == 8 && tid <= store.TID(beUint64(packed)) {
		return nil, &store.UndoError{TID: tid, Reason: fmt.Sprintf("history up to %s has been packed", store.TID(beUint64(packed)))}
	}
	key := tidKey(tid)
	v := tx.Bucket(bucketTxns).Get(key)
	if v == nil {
		return nil, fmt.Errorf("undo %s: %w", tid, store.ErrNoTransaction)
	}
	info, err := decodeTxn(key, v)
	if err != nil {
		return nil, err
	}
	c := tx.Bucket(bucketRevs).Cursor()
	changed := map[store.OID]store.TID{}
	writes := make([]write, 0, len(info.OIDs))
	for _, oid := range info.OIDs {
		k, v := lastRevision(c, oid)
		if k == nil {
			return nil, &store.UndoError{TID: tid, Reason: fmt.Sprintf("%s no longer exists", oid)}
		}
		if _, cur := splitRevKey(k); cur != tid {
			changed[oid] = cur
			continue
		}
		flags, _, err := decodeRecord(k, v)
		if err != nil {
			return nil, err
		}
		w := write{Write: store.Write{OID: oid, Serial: tid}, deleted: true}
		if flags&flagDeleted != 0 {
			w.Serial = 0 // tid deleted oid; a deleted object has serial 0
		}
		if pk, pv := c.Prev(); pk != nil && store.OID(beUint64(pk)) == oid {
			flags, data, err := decodeRecord(pk, pv)
			if err != nil {
				return nil, err
			}
			w.Data, w.deleted = append([]byte(nil), data...), flags&flagDeleted != 0
		}
		writes = append(writes, w)
	}
	if len(changed) > 0 {
		return nil, &store.UndoError{TID: tid, Changed: changed}
	}
	return writes, nil
}
