package bolt

import (
	"context"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"batos/internal/store"
)

// commitRequest is one logical commit waiting for the committer. Either
// writes is set, or undo names the transaction to undo (its writes are
// computed inside the group, so the check and the restore are atomic).
type commitRequest struct {
	meta   store.TxMeta
	writes []write
	undo   store.TID
	done   chan commitResult
}

type commitResult struct {
	tid store.TID
	err error
}

// write is a store.Write that may also record a deletion (from undo).
type write struct {
	store.Write
	deleted bool
}

// Commit implements store.Engine.
func (db *DB) Commit(ctx context.Context, meta store.TxMeta, writes []store.Write) (store.TID, error) {
	if err := store.ValidateCommit(meta, writes); err != nil {
		return 0, err
	}
	ws := make([]write, len(writes))
	for i, w := range writes {
		ws[i] = write{Write: w}
	}
	return db.submit(ctx, &commitRequest{meta: meta, writes: ws})
}

// submit queues a request and waits for its outcome. Once queued, the
// request is waited for even if ctx ends: it may already be durable, and
// the caller must learn its TID.
func (db *DB) submit(ctx context.Context, req *commitRequest) (store.TID, error) {
	if db.opts.ReadOnly {
		return 0, fmt.Errorf("%w: image opened read-only", store.ErrInvalid)
	}
	req.done = make(chan commitResult, 1)
	db.submitMu.RLock()
	if db.closed {
		db.submitMu.RUnlock()
		return 0, store.ErrClosed
	}
	select {
	case db.commits <- req:
	case <-ctx.Done():
		db.submitMu.RUnlock()
		return 0, ctx.Err()
	}
	db.submitMu.RUnlock()
	r := <-req.done
	return r.tid, r.err
}

// commitLoop owns the write side. It runs until Close, then answers
// whatever is still queued.
func (db *DB) commitLoop() {
	defer db.committer.Done()
	want := 1
	for {
		var first *commitRequest
		select {
		case first = <-db.commits:
		case <-db.closing:
			for {
				select {
				case req := <-db.commits:
					db.commitGroup(db.gather(req, 0))
				default:
					return
				}
			}
		}
		group := db.gather(first, want)
		db.commitGroup(group)
		want = len(group)
	}
}

// gather collects what is queued behind first. If fewer than want arrived,
// it lingers briefly: writers released by the previous fsync are usually
// about to commit again, and waiting for them costs less than an fsync.
func (db *DB) gather(first *commitRequest, want int) []*commitRequest {
	group := []*commitRequest{first}
	for len(group) < db.opts.MaxBatch {
		select {
		case req := <-db.commits:
			group = append(group, req)
			continue
		default:
		}
		break
	}
	if len(group) >= want {
		return group
	}
	timer := time.NewTimer(db.opts.Linger)
	defer timer.Stop()
	for len(group) < want && len(group) < db.opts.MaxBatch {
		select {
		case req := <-db.commits:
			group = append(group, req)
		case <-timer.C:
			return group
		}
	}
	return group
}

// commitGroup applies a group of commits in one bbolt transaction: one
// fsync for all. A commit that conflicts is refused alone; an error from
// bbolt itself fails every commit of the group, none of which is kept.
func (db *DB) commitGroup(group []*commitRequest) {
	results := make([]commitResult, len(group))
	last := db.LastTID()
	var maxOID store.OID
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		revs, txns := tx.Bucket(bucketRevs), tx.Bucket(bucketTxns)
		revs.FillPercent, txns.FillPercent = 0.9, 1.0
		now := db.opts.Now()
		for i, req := range group {
			writes := req.writes
			if req.undo != 0 {
				var err error
				if writes, err = undoWrites(tx, req.undo); err != nil {
					results[i].err = err
					continue
				}
			}
			if err := checkSerials(revs.Cursor(), writes); err != nil {
				results[i].err = err
				continue
			}
			tid := store.NextTID(last, now)
			oids, err := apply(revs, txns, tid, now, req.meta, writes)
			if err != nil {
				return err
			}
			last = tid
			results[i].tid = tid
			maxOID = max(maxOID, oids[len(oids)-1])
		}
		return nil
	})
	if err != nil {
		for i := range results {
			if results[i].err == nil {
				results[i] = commitResult{err: fmt.Errorf("commit: %w", err)}
			}
		}
	} else {
		db.lastTID.Store(uint64(last))
		db.raiseNextOID(maxOID)
	}
	for i, req := range group {
		req.done <- results[i]
	}
}

// raiseNextOID keeps OID allocation ahead of any OID a commit wrote.
func (db *DB) raiseNextOID(oid store.OID) {
	for {
		cur := db.nextOID.Load()
		if uint64(oid) <= cur || db.nextOID.CompareAndSwap(cur, uint64(oid)) {
			return
		}
	}
}

// checkSerials refuses the commit, naming every object, if any write was
// based on a revision that is no longer current. A deleted object counts
// as absent (serial 0). A corrupt current revision fails the commit: its
// flags cannot be trusted to say whether the object exists.
func checkSerials(c *bbolt.Cursor, writes []write) error {
	var stale []store.OID
	for _, w := range writes {
		cur, err := currentSerial(c, w.OID)
		if err != nil {
			return err
		}
		if cur != w.Serial {
			stale = append(stale, w.OID)
		}
	}
	if stale == nil {
		return nil
	}
	slices.Sort(stale)
	return &store.ConflictError{OIDs: stale}
}

func currentSerial(c *bbolt.Cursor, oid store.OID) (store.TID, error) {
	k, v := lastRevision(c, oid)
	if k == nil {
		return 0, nil
	}
	flags, _, err := decodeRecord(k, v)
	if err != nil || flags&flagDeleted != 0 {
		return 0, err
	}
	_, tid := splitRevKey(k)
	return tid, nil
}

// lastRevision positions c on oid's newest revision, or returns nil.
func lastRevision(c *bbolt.Cursor, oid store.OID) ([]byte, []byte) {
	return revisionAt(c, oid, store.MaxTID)
}

// revisionAt positions c on oid's newest revision with serial <= at.
func revisionAt(c *bbolt.Cursor, oid store.OID, at store.TID) ([]byte, []byte) {
	// Seek lands on the first revision newer than at (or past the end);
	// the one before it is the answer if it belongs to oid.
	var v []byte
	k, _ := c.Seek(revKey(oid, at+1))
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k == nil || len(k) != 16 || store.OID(beUint64(k)) != oid {
		return nil, nil
	}
	return k, v
}

func apply(revs, txns *bbolt.Bucket, tid store.TID, now time.Time, meta store.TxMeta, writes []write) ([]store.OID, error) {
	oids := make([]store.OID, len(writes))
	for i, w := range writes {
		var flags byte
		if w.deleted {
			flags = flagDeleted
		}
		key := revKey(w.OID, tid)
		if err := revs.Put(key, encodeRecord(key, flags, w.Data)); err != nil {
			return nil, err
		}
		oids[i] = w.OID
	}
	slices.Sort(oids)
	info := &store.TxInfo{TID: tid, Time: now, User: meta.User, Description: meta.Description, Extension: meta.Extension, OIDs: oids}
	key := tidKey(tid)
	return oids, txns.Put(key, encodeTxn(key, info))
}
