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

// revisionSource finds an object's revisions in the overlay first, then
// in the bbolt file.
type revisionSource struct {
	c       *bbolt.Cursor
	overlay []overlayRev // the object's overlay revisions, newest first
	oid     store.OID
}

// at returns the key and envelope of the newest revision with serial <= at.
func (r revisionSource) at(at store.TID) ([]byte, []byte) {
	for _, rev := range r.overlay {
		if rev.tid <= at {
			return revKey(r.oid, rev.tid), rev.record
		}
	}
	return revisionAt(r.c, r.oid, at)
}

// undoWrites computes the writes that restore what tid changed: for each
// object, the revision before tid, or a deletion if tid created it.
// Caller: the committer, with nothing in flight, so the overlay and the
// file hold every commit. The overlay is read before the bbolt transaction
// begins: a revision a checkpoint moves in between is then in both.
func (db *DB) undoWrites(tid store.TID) ([]write, error) {
	// The committer runs through Close: it reads the file directly.
	entry, inOverlay := db.overlay.transaction(tid)
	if !inOverlay {
		err := db.viewFile(func(tx *bbolt.Tx) error {
			v := tx.Bucket(bucketTxns).Get(tidKey(tid))
			if v == nil {
				return fmt.Errorf("undo %s: %w", tid, store.ErrNoTransaction)
			}
			entry.entry = append([]byte(nil), v...)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	info, err := decodeTxn(tidKey(tid), entry.entry)
	if err != nil {
		return nil, err
	}
	overlayRevs := make(map[store.OID][]overlayRev, len(info.OIDs))
	for _, oid := range info.OIDs {
		overlayRevs[oid] = db.overlay.revisions(oid)
	}
	var writes []write
	err = db.viewFile(func(tx *bbolt.Tx) error {
		if packed := tx.Bucket(bucketMeta).Get(keyPackedBefore); len(packed) == 8 && tid <= store.TID(beUint64(packed)) {
			return &store.UndoError{TID: tid, Reason: fmt.Sprintf("history up to %s has been packed", store.TID(beUint64(packed)))}
		}
		c := tx.Bucket(bucketRevs).Cursor()
		changed := map[store.OID]store.TID{}
		for _, oid := range info.OIDs {
			src := revisionSource{c: c, overlay: overlayRevs[oid], oid: oid}
			w, later, err := undoWrite(src, tid)
			if err != nil {
				return err
			}
			if later != 0 {
				changed[oid] = later
				continue
			}
			writes = append(writes, w)
		}
		if len(changed) > 0 {
			return &store.UndoError{TID: tid, Changed: changed}
		}
		return nil
	})
	return writes, err
}

// undoWrite restores one object, or names the later transaction that
// changed it.
func undoWrite(src revisionSource, tid store.TID) (write, store.TID, error) {
	k, v := src.at(store.MaxTID)
	if k == nil {
		return write{}, 0, &store.UndoError{TID: tid, Reason: fmt.Sprintf("%s no longer exists", src.oid)}
	}
	if _, cur := splitRevKey(k); cur != tid {
		return write{}, cur, nil
	}
	flags, _, err := decodeRecord(k, v)
	if err != nil {
		return write{}, 0, err
	}
	w := write{Write: store.Write{OID: src.oid, Serial: tid}, deleted: true}
	if flags&flagDeleted != 0 {
		w.Serial = 0 // tid deleted the object; a deleted object has serial 0
	}
	if pk, pv := src.at(tid - 1); pk != nil {
		flags, data, err := decodeRecord(pk, pv)
		if err != nil {
			return write{}, 0, err
		}
		w.Data, w.deleted = append([]byte(nil), data...), flags&flagDeleted != 0
	}
	return w, 0, nil
}
