package bolt

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"batos/internal/store"
)

// Checkpoint thresholds: the active overlay generation is written into the
// bbolt file when it holds this many bytes, when it is this old, or when
// commits pause. Under steady commits the age decides: a checkpoint
// rewrites every leaf page its revisions land in, so writing the same
// objects' pages once in five seconds rather than every second costs a
// fifth of the writes, which otherwise compete with the log's fdatasync
// for the disk; what a reopen replays stays bounded by the byte limit.
const (
	checkpointBytes = 32 << 20
	checkpointAge   = 5 * time.Second
	checkpointIdle  = 20 * time.Millisecond
)

// checkpointRun is a checkpoint writing a frozen generation into the bbolt
// file in the background while commits go on into a new log segment.
type checkpointRun struct {
	txs  []walTx
	old  *wal // the segment holding txs, removed once they are in the file
	done chan error
}

// maybeCheckpoint starts a background checkpoint when the active
// generation is big or old enough and none runs. Caller: the committer.
func (db *DB) maybeCheckpoint(force bool) {
	if db.ckpt != nil || db.pipe.failed() != nil {
		return
	}
	if run := db.failed; run != nil {
		// The frozen generation of a failed checkpoint is still pending:
		// write it again before freezing anything new.
		db.failed, db.ckpt = nil, run
		run.done = make(chan error, 1)
		go func() { run.done <- db.writeToFile(run.txs) }()
		return
	}
	n, size, since := db.overlay.activeSize()
	if n == 0 || !(force || size > checkpointBytes || time.Since(since) > checkpointAge) {
		return
	}
	// Frames in flight belong to the segment being retired: wait for them.
	db.pipe.drain()
	old, err := db.wal.rotate(db.LastTID(), 0)
	if err != nil {
		// Commits still append to the current segment; retried later.
		db.ckptTrouble(err)
		return
	}
	run := &checkpointRun{txs: db.overlay.freeze(), old: old, done: make(chan error, 1)}
	db.ckpt = run
	go func() { run.done <- db.writeToFile(run.txs) }()
}

// backgroundCheckpoint is maybeCheckpoint unless
// Options.NoBackgroundCheckpoint is set. Caller: the committer.
func (db *DB) backgroundCheckpoint(force bool) {
	if db.opts.NoBackgroundCheckpoint {
		return
	}
	db.maybeCheckpoint(force)
}

// checkpointDone is the channel the running checkpoint reports on, or nil.
func (db *DB) checkpointDone() <-chan error {
	if db.ckpt == nil {
		return nil
	}
	return db.ckpt.done
}

// finishCheckpoint takes the running checkpoint's outcome. On success the
// frozen generation and its segment go; on failure they stay, and the same
// transactions are written again (inline) by the next full checkpoint.
func (db *DB) finishCheckpoint(err error) error {
	run := db.ckpt
	db.ckpt = nil
	if err == nil {
		db.overlay.dropFrozen()
		if rerr := run.old.remove(); rerr != nil {
			err = fmt.Errorf("checkpoint: remove write-ahead log segment: %w", rerr)
			db.ckptTrouble(err)
			return err
		}
		db.ckptTrouble(nil)
		return nil
	}
	db.failed = run
	db.ckptTrouble(err)
	return err
}

// ckptTrouble logs the first failure of a checkpoint and the first success
// after failures: commits go on into the write-ahead log meanwhile, so no
// caller sees the error. Caller: the committer.
func (db *DB) ckptTrouble(err error) {
	switch {
	case err != nil && db.ckptErr == nil:
		db.opts.Logger.Error("store: checkpoint failed; commits stay in the write-ahead log and the checkpoint is retried", "image", db.path, "err", err)
	case err == nil && db.ckptErr != nil:
		db.opts.Logger.Info("store: checkpoint succeeded again", "image", db.path)
	}
	db.ckptErr = err
}

// checkpointNow brings the bbolt file up to date with every acknowledged
// commit before returning. Caller: the committer, or Open and Close when
// it is not running.
func (db *DB) checkpointNow() error {
	if db.ckpt != nil {
		if err := db.finishCheckpoint(<-db.ckpt.done); err != nil {
			return err
		}
	}
	if run := db.failed; run != nil {
		if err := db.writeToFile(run.txs); err != nil {
			return err
		}
		db.failed = nil
		db.overlay.dropFrozen()
		if err := run.old.remove(); err != nil {
			return fmt.Errorf("checkpoint: remove write-ahead log segment: %w", err)
		}
	}
	if db.overlay.empty() {
		return nil
	}
	if err := db.pipe.repair(); err != nil {
		return err
	}
	db.maybeCheckpoint(true)
	if db.ckpt == nil {
		return fmt.Errorf("checkpoint: could not start a new write-ahead log segment: %w", db.ckptErr)
	}
	return db.finishCheckpoint(<-db.ckpt.done)
}

// writeToFile writes transactions into the bbolt file in one transaction.
// Revisions are put in key order, so bbolt walks its tree once.
func (db *DB) writeToFile(txs []walTx) error {
	type kv struct{ k, v []byte }
	var revs []kv
	for _, t := range txs {
		for _, w := range t.writes {
			revs = append(revs, kv{revKey(w.oid, t.tid), w.record})
		}
	}
	slices.SortFunc(revs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	err := db.update(func(tx *bbolt.Tx) error {
		if err := saveCounters(tx, txs); err != nil {
			return err
		}
		rb, tb := tx.Bucket(bucketRevs), tx.Bucket(bucketTxns)
		rb.FillPercent, tb.FillPercent = 0.9, 1.0
		for _, r := range revs {
			if err := rb.Put(r.k, r.v); err != nil {
				return err
			}
		}
		for _, t := range txs {
			if err := tb.Put(tidKey(t.tid), t.entry); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checkpoint: %w", noSpace(err, db.path, "checkpoint"))
	}
	return nil
}

// saveCounters records the newest TID and the highest OID written, so
// neither goes back on reopen even when pack drops the log entries or
// objects they came from.
func saveCounters(tx *bbolt.Tx, txs []walTx) error {
	meta := tx.Bucket(bucketMeta)
	last := txs[len(txs)-1].tid
	if old := meta.Get(keyLastTID); len(old) == 8 {
		last = max(last, store.TID(beUint64(old)))
	}
	var maxOID store.OID
	if old := meta.Get(keyMaxOID); len(old) == 8 {
		maxOID = store.OID(beUint64(old))
	}
	for _, t := range txs {
		for _, w := range t.writes {
			maxOID = max(maxOID, w.oid)
		}
	}
	if err := meta.Put(keyLastTID, tidKey(last)); err != nil {
		return err
	}
	return meta.Put(keyMaxOID, tidKey(store.TID(maxOID)))
}
