package bolt

import (
	"context"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"batos/internal/store"
)

// commitRequest is one request to the committer, the goroutine that owns
// the write side: a commit (writes), an undo (undo names the transaction;
// its writes are computed by the committer, so check and restore are
// atomic), or maintenance (the bbolt file is brought up to date, then fn,
// if set, runs in a bbolt write transaction and after once it committed,
// with no commit in between).
type commitRequest struct {
	meta        store.TxMeta
	writes      []write
	undo        store.TID
	maintenance bool
	// imported, for an Import, is the transaction as the engine it comes
	// from recorded it: its TID and time are kept, and no serial is
	// checked.
	imported *store.TxInfo
	fn       func(*bbolt.Tx) error
	after    func() error // maintenance: run once fn's transaction committed
	done     chan commitResult
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

// Import implements store.Importer.
func (db *DB) Import(ctx context.Context, info store.TxInfo, records []store.ImportRecord) error {
	if err := store.ValidateImport(info, records); err != nil {
		return err
	}
	ws := make([]write, len(records))
	for i, r := range records {
		ws[i] = write{Write: store.Write{OID: r.OID, Data: r.Data}, deleted: r.Deleted}
	}
	meta := store.TxMeta{User: info.User, Description: info.Description, Extension: info.Extension}
	_, err := db.submit(ctx, &commitRequest{meta: meta, writes: ws, imported: &info})
	return err
}

// MarkPacked implements store.Importer: it raises the pack mark, as a
// pack does, to before.
func (db *DB) MarkPacked(ctx context.Context, before store.TID) error {
	if before == 0 || before > db.LastTID() {
		return fmt.Errorf("%w: pack mark %s: not a transaction of this store (last %s)", store.ErrInvalid, before, db.LastTID())
	}
	_, err := db.submit(ctx, &commitRequest{maintenance: true, fn: func(tx *bbolt.Tx) error {
		return raisePackMark(tx, before)
	}})
	return err
}

// submit queues a request and waits for its outcome. Once queued, the
// request is waited for even if ctx ends: it may already be durable, and
// the caller must learn its TID.
func (db *DB) submit(ctx context.Context, req *commitRequest) (_ store.TID, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err // a cancelled caller never commits
	}
	if db.opts.ReadOnly {
		return 0, store.ErrReadOnly
	}
	if !req.maintenance {
		start := time.Now()
		defer func() { observeCommit(start, err) }()
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

// sync brings the bbolt file up to date with every acknowledged commit,
// for operations that read the file alone (pack, verify, stats).
func (db *DB) sync(ctx context.Context) error {
	if db.opts.ReadOnly || db.overlay.empty() {
		// Read-only, the log's transactions stay in the overlay.
		return nil
	}
	_, err := db.submit(ctx, &commitRequest{maintenance: true})
	return err
}

// commitLoop owns the write side, and the checkpoints. It runs until
// Close, then answers whatever is still queued.
func (db *DB) commitLoop() {
	defer db.committer.Done()
	want := 1
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	for {
		idle.Reset(checkpointIdle)
		select {
		case first := <-db.commits:
			group := db.gather(first, want)
			db.commitGroup(group)
			want = len(group)
			db.backgroundCheckpoint(false)
		case err := <-db.checkpointDone():
			// A failure keeps everything in the overlay and the log; the
			// next full checkpoint retries and reports it.
			_ = db.finishCheckpoint(err)
			db.backgroundCheckpoint(false)
		case <-idle.C:
			db.backgroundCheckpoint(true)
		case <-db.closing:
			for {
				select {
				case req := <-db.commits:
					db.commitGroup(db.gather(req, 0))
				default:
					db.pipe.stop()
					return
				}
			}
		}
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

// groupWriter accumulates the commits of one group that passed their
// checks, then writes them to the log as one frame for the syncer.
type groupWriter struct {
	db     *DB
	now    time.Time
	reqs   []*commitRequest
	txs    []walTx
	maxOID store.OID
}

// commitGroup handles a group in order. Commits are staged, each checked
// against everything before it (including earlier commits of the group
// and groups still being synced); one that conflicts is refused alone.
// Undo first waits for every group in flight, so the overlay and the file
// hold every commit; maintenance also checkpoints, so the file alone does.
func (db *DB) commitGroup(group []*commitRequest) {
	g := &groupWriter{db: db, now: db.opts.Now()}
	for _, req := range group {
		switch {
		case req.maintenance:
			g.flush()
			db.pipe.drain()
			err := db.checkpointNow()
			if err == nil && req.fn != nil {
				// fn may delete revisions (a pack's sweep): what serials
				// holds may be gone, even if fn failed after a deletion.
				err = db.update(req.fn)
				db.serials.forget()
			}
			if err == nil && req.after != nil {
				err = req.after()
			}
			req.done <- commitResult{err: err}
		case req.undo != 0:
			g.flush()
			db.pipe.drain()
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
	writes, err := db.undoWrites(req.undo)
	if err != nil {
		return err
	}
	req.writes = writes
	return g.stage(req)
}

// stage checks a commit's serials and, if they are current, assigns its
// TID and encodes it for the log.
func (g *groupWriter) stage(req *commitRequest) error {
	if g.db.pipe.failed() != nil {
		// The log failed since the last commit: what this group staged
		// before is refused with it, then the log is cut back and this
		// commit tries again.
		g.flush()
		if err := g.db.pipe.repair(); err != nil {
			return err
		}
	}
	p := &g.db.pipe
	tid, now := store.NextTID(p.staged, g.now), g.now
	if im := req.imported; im != nil {
		if im.TID <= p.staged {
			return fmt.Errorf("%w: import of transaction %s: the store is at %s already (imports come in TID order, into a store they do not predate)", store.ErrInvalid, im.TID, p.staged)
		}
		tid, now = im.TID, im.Time
	} else if err := g.checkSerials(req.writes); err != nil {
		return err
	}
	t := walTx{tid: tid, writes: make([]walWrite, len(req.writes))}
	oids := make([]store.OID, len(req.writes))
	for i, w := range req.writes {
		var flags byte
		if w.deleted {
			flags = flagDeleted
		}
		t.writes[i] = walWrite{oid: w.OID, record: encodeRecord(revKey(w.OID, tid), flags, w.Data)}
		oids[i] = w.OID
		serial := tid
		if w.deleted {
			serial = 0
		}
		p.inflight[w.OID] = inflightSerial{serial: serial, seq: p.written + 1}
	}
	slices.Sort(oids)
	logged := oids
	if im := req.imported; im != nil {
		// The log says what the source's did, revisions a pack dropped
		// included (an entry may have none left).
		logged = im.OIDs
	}
	g.maxOID = max(g.maxOID, logged[len(logged)-1])
	info := &store.TxInfo{TID: tid, Time: now, User: req.meta.User, Description: req.meta.Description, Extension: req.meta.Extension, OIDs: logged}
	t.entry = encodeTxn(tidKey(tid), info)
	g.txs = append(g.txs, t)
	g.reqs = append(g.reqs, req)
	p.staged = tid
	return nil
}

// checkSerials refuses the commit, naming every object, if any write was
// based on a revision that is no longer current. A deleted object counts
// as absent (serial 0). A corrupt current revision fails the commit: its
// flags cannot be trusted to say whether the object exists.
func (g *groupWriter) checkSerials(writes []write) error {
	var stale []store.OID
	err := g.db.viewFile(func(tx *bbolt.Tx) error { // the committer runs through Close
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

// currentSerial looks at what was staged (this group and groups still
// being synced), then the overlay, then the file.
func (g *groupWriter) currentSerial(c *bbolt.Cursor, oid store.OID) (store.TID, error) {
	if s, ok := g.db.pipe.inflight[oid]; ok {
		return s.serial, nil
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

// flush writes the staged commits to the log as one frame and hands them
// to the syncer, which makes them durable and answers their callers.
func (g *groupWriter) flush() {
	if len(g.txs) == 0 {
		return
	}
	g.db.pipe.submit(g.db.wal, &syncJob{txs: g.txs, reqs: g.reqs, last: g.db.pipe.staged, maxOID: g.maxOID})
	g.txs, g.reqs, g.maxOID = nil, nil, 0
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
