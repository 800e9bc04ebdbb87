package bolt

import (
	"context"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"batos/internal/store"
)

// Checkpoint thresholds: the overlay is written into the bbolt file when
// it holds this many bytes, when it is this old, or when commits pause.
const (
	checkpointBytes = 32 << 20
	checkpointAge   = time.Second
	checkpointIdle  = 20 * time.Millisecond
)

// commitRequest is one request to the committer, the goroutine that owns
// the write side: a commit (writes), an undo (undo names the transaction;
// its writes are computed by the committer, so check and restore are
// atomic), or maintenance (the bbolt file is brought up to date, then fn,
// if set, runs in a bbolt write transaction with no commit in between).
type commitRequest struct {
	meta        store.TxMeta
	writes      []write
	undo        store.TID
	maintenance bool
	fn          func(*bbolt.Tx) error
	done        chan commitResult
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

// sync brings the bbolt file up to date with every acknowledged commit,
// for operations that read the file directly (history, log, pack, verify).
func (db *DB) sync(ctx context.Context) error {
	if db.overlay.empty() {
		return nil
	}
	_, err := db.submit(ctx, &commitRequest{maintenance: true})
	return err
}

// commitLoop owns the write side. It runs until Close, then answers
// whatever is still queued.
func (db *DB) commitLoop() {
	defer db.committer.Done()
	want := 1
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	lastCheckpoint := time.Now()
	for {
		idle.Reset(checkpointIdle)
		var first *commitRequest
		select {
		case first = <-db.commits:
		case <-idle.C:
			if !db.overlay.empty() {
				db.checkpointLogged()
				lastCheckpoint = time.Now()
			}
			continue
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
		if _, n := db.overlay.size(); n > checkpointBytes || time.Since(lastCheckpoint) > checkpointAge {
			db.checkpointLogged()
			lastCheckpoint = time.Now()
		}
	}
}

// checkpointLogged checkpoints between commits. A failure leaves
// everything in the overlay and the log, where readers and recovery find
// it; the next checkpoint retries, and sync and Close report the error.
func (db *DB) checkpointLogged() {
	_ = db.checkpoint()
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

// groupWriter accumulates the commits of one group that passed their
// checks, then makes them durable with one log append.
type groupWriter struct {
	db      *DB
	now     time.Time
	last    store.TID
	reqs    []*commitRequest
	txs     []walTx
	serials map[store.OID]store.TID // written in this group (0: deleted)
	maxOID  store.OID
}

// commitGroup handles a group in order. Commits are staged, each checked
// against everything before it (including earlier commits of the group);
// one that conflicts is refused alone. Undo and maintenance first flush
// what is staged and checkpoint, so they see an up-to-date bbolt file.
func (db *DB) commitGroup(group []*commitRequest) {
	g := &groupWriter{db: db, now: db.opts.Now(), last: db.LastTID(), serials: map[store.OID]store.TID{}}
	for _, req := range group {
		switch {
		case req.maintenance:
			g.flush()
			err := db.checkpoint()
			if err == nil && req.fn != nil {
				err = db.bolt.Update(req.fn)
			}
			req.done <- commitResult{err: err}
		case req.undo != 0:
			g.flush()
			if err := db.undoInto(g, req); err != nil {
				req.done <- commitResult{err: err}
			}
		default:
			if err := g.stage(req); err != nil {
				req.done <- commitResult{err: err}
			}
		}
	}
	g.flush()
}

func (db *DB) undoInto(g *groupWriter, req *commitRequest) error {
	if err := db.checkpoint(); err != nil {
		return err
	}
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		var err error
		req.writes, err = undoWrites(tx, req.undo)
		return err
	})
	if err != nil {
		return err
	}
	return g.stage(req)
}

// stage checks a commit's serials and, if they are current, assigns its
// TID and encodes it for the log.
func (g *groupWriter) stage(req *commitRequest) error {
	if err := g.checkSerials(req.writes); err != nil {
		return err
	}
	tid := store.NextTID(g.last, g.now)
	t := walTx{tid: tid, writes: make([]walWrite, len(req.writes))}
	oids := make([]store.OID, len(req.writes))
	for i, w := range req.writes {
		var flags byte
		if w.deleted {
			flags = flagDeleted
		}
		t.writes[i] = walWrite{oid: w.OID, record: encodeRecord(revKey(w.OID, tid), flags, w.Data)}
		oids[i] = w.OID
		if w.deleted {
			g.serials[w.OID] = 0
		} else {
			g.serials[w.OID] = tid
		}
	}
	slices.Sort(oids)
	g.maxOID = max(g.maxOID, oids[len(oids)-1])
	info := &store.TxInfo{TID: tid, Time: g.now, User: req.meta.User, Description: req.meta.Description, Extension: req.meta.Extension, OIDs: oids}
	t.entry = encodeTxn(tidKey(tid), info)
	g.txs = append(g.txs, t)
	g.reqs = append(g.reqs, req)
	g.last = tid
	return nil
}

// checkSerials refuses the commit, naming every object, if any write was
// based on a revision that is no longer current. A deleted object counts
// as absent (serial 0). A corrupt current revision fails the commit: its
// flags cannot be trusted to say whether the object exists.
func (g *groupWriter) checkSerials(writes []write) error {
	var stale []store.OID
	err := g.db.bolt.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketRevs).Cursor()
		for _, w := range writes {
			cur, err := g.currentSerial(c, w.OID)
			if err != nil {
				return err
			}
			if cur != w.Serial {
				stale = append(stale, w.OID)
			}
		}
		return nil
	})
	if err != nil || stale == nil {
		return err
	}
	slices.Sort(stale)
	return &store.ConflictError{OIDs: stale}
}

// currentSerial looks in this group, then the overlay, then the file.
func (g *groupWriter) currentSerial(c *bbolt.Cursor, oid store.OID) (store.TID, error) {
	if s, ok := g.serials[oid]; ok {
		return s, nil
	}
	if tid, record, ok := g.db.overlay.current(oid); ok {
		return serialOf(revKey(oid, tid), record)
	}
	k, v := lastRevision(c, oid)
	if k == nil {
		return 0, nil
	}
	return serialOf(k, v)
}

func serialOf(key, record []byte) (store.TID, error) {
	flags, _, err := decodeRecord(key, record)
	if err != nil || flags&flagDeleted != 0 {
		return 0, err
	}
	_, tid := splitRevKey(key)
	return tid, nil
}

// flush makes the staged commits durable with one log append, publishes
// them to readers and answers their callers.
func (g *groupWriter) flush() {
	if len(g.txs) == 0 {
		return
	}
	db := g.db
	err := db.wal.append(encodeGroup(g.txs))
	if err == nil {
		db.overlay.add(g.txs)
		db.lastTID.Store(uint64(g.last))
		db.raiseNextOID(g.maxOID)
	} else {
		err = fmt.Errorf("commit: write-ahead log: %w", err)
	}
	for i, req := range g.reqs {
		if err != nil {
			req.done <- commitResult{err: err}
		} else {
			req.done <- commitResult{tid: g.txs[i].tid}
		}
	}
	g.txs, g.reqs, g.serials = nil, nil, map[store.OID]store.TID{}
	g.last = db.LastTID()
}

// checkpoint writes the overlay into the bbolt file in one transaction and
// then empties the log. Caller: the committer, or Open and Close when it
// is not running.
func (db *DB) checkpoint() error {
	txs := db.overlay.take()
	if len(txs) == 0 {
		return nil
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		revs, txns := tx.Bucket(bucketRevs), tx.Bucket(bucketTxns)
		revs.FillPercent, txns.FillPercent = 0.9, 1.0
		for _, t := range txs {
			for _, w := range t.writes {
				if err := revs.Put(revKey(w.oid, t.tid), w.record); err != nil {
					return err
				}
			}
			if err := txns.Put(tidKey(t.tid), t.entry); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	db.overlay.clear()
	if err := db.wal.reset(); err != nil {
		return fmt.Errorf("checkpoint: reset write-ahead log: %w", err)
	}
	return nil
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
