// Package bolt is the embedded storage engine: one bbolt file for records
// and the transaction log, a write-ahead log beside it for commits not yet
// in that file, and a directory of content-addressed blob files.
//
// # Durability
//
// Commits are grouped: one goroutine, the committer, owns the write side.
// It checks each waiting commit on its own (a conflicting one is refused
// without affecting the others) and appends the group to the write-ahead
// log (PATH.wal.NNNNNNNN) as one frame; a syncer makes frames durable, one
// fdatasync covering every frame written before it, and only then are the
// commits visible and answered (sync.go). Readers find them in an
// in-memory overlay until a background checkpoint writes many groups into
// the bbolt file in one transaction (checkpoint.go). Opening replays
// whatever the log holds (wal.go).
//
// # Integrity
//
// Every record and log entry carries a CRC-32C over its key and content,
// checked on every read; blobs are verified against their sha256 when read.
package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	bbolterrors "go.etcd.io/bbolt/errors"

	"batos/internal/store"
)

// Options configures a DB. The zero value (or nil) gives the defaults.
type Options struct {
	// Now is the clock TIDs are derived from; default time.Now.
	Now func() time.Time
	// MaxBatch caps how many commits share one fsync; default 256.
	MaxBatch int
	// Linger is how long the committer waits for more commits when fewer
	// arrived than in the previous group; default 200µs. It lets writers
	// released by one fsync rejoin the next group.
	Linger time.Duration
	// BlobDir holds the blobs; default PATH.blobs.
	BlobDir string
}

func (o *Options) withDefaults(path string) Options {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Linger <= 0 {
		opts.Linger = 200 * time.Microsecond
	}
	if opts.BlobDir == "" {
		opts.BlobDir = path + ".blobs"
	}
	return opts
}

// DB is a store.Engine on a bbolt file. It is safe for concurrent use.
type DB struct {
	path    string
	opts    Options
	bolt    *bbolt.DB
	lock    *processLock
	blobs   *blobDir
	wal     *wal
	overlay *overlay
	pipe    pipeline
	ckpt    *checkpointRun // running checkpoint; committer only
	failed  *checkpointRun // a checkpoint that failed, to write again

	lastTID atomic.Uint64
	nextOID atomic.Uint64

	commits   chan *commitRequest
	submitMu  sync.RWMutex // held shared while queueing, exclusively to close
	closed    bool
	closing   chan struct{}
	committer sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	packMu    sync.Mutex // one pack at a time
}

var _ store.Engine = (*DB)(nil)

// Open opens or creates the store at path.
func Open(path string, o *Options) (*DB, error) {
	opts := o.withDefaults(path)
	db := &DB{path: path, opts: opts, commits: make(chan *commitRequest, 1024), closing: make(chan struct{}), overlay: newOverlay()}
	lock, err := lockProcess(path)
	if err != nil {
		return nil, fmt.Errorf("open image %s: %w", path, err)
	}
	db.lock = lock
	if err := db.open(); err != nil {
		db.lock.release()
		return nil, fmt.Errorf("open image %s: %w", path, err)
	}
	db.pipe.start(db)
	db.committer.Add(1)
	go db.commitLoop()
	return db, nil
}

func (db *DB) open() error {
	bo := &bbolt.Options{
		Timeout:         time.Second,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: 1 << 30, // readers never block a growing writer below this
	}
	b, err := bbolt.Open(db.path, 0o644, bo)
	if err != nil {
		if errors.Is(err, bbolterrors.ErrTimeout) {
			return &store.InUseError{Path: db.path}
		}
		return err
	}
	db.bolt = b
	err = b.Update(initBuckets)
	if err == nil {
		err = b.View(db.loadCounters)
	}
	if err == nil {
		db.blobs, err = openBlobDir(db.opts.BlobDir)
	}
	if err == nil {
		err = db.recover()
	}
	if err != nil {
		if db.wal != nil {
			db.wal.close()
		}
		b.Close()
		return err
	}
	return nil
}

// recover replays the write-ahead log: transactions newer than the bbolt
// file are checkpointed into it; frames torn by a crash (never
// acknowledged) are dropped. Then the old segments go and a fresh one
// starts.
func (db *DB) recover() error {
	base := db.path + ".wal"
	seqs, err := segments(base)
	if err != nil {
		return fmt.Errorf("list write-ahead log: %w", err)
	}
	// Frames after the last fdatasync were never acknowledged, and a crash
	// may leave them torn: a damaged end is expected where nothing follows
	// it. Damage followed by more frames means acknowledged commits are
	// lost, and opening stops with an error.
	type segment struct {
		txs       []walTx
		damagedAt int64
	}
	segs := make([]segment, len(seqs))
	for i, seq := range seqs {
		txs, damagedAt, err := readSegment(segmentName(base, seq))
		if err != nil {
			return fmt.Errorf("read write-ahead log: %w", err)
		}
		segs[i] = segment{txs, damagedAt}
	}
	last := db.LastTID()
	var fresh []walTx
	for i, seg := range segs {
		if seg.damagedAt >= 0 {
			for _, later := range segs[i+1:] {
				if len(later.txs) > 0 {
					return fmt.Errorf("%w: write-ahead log segment %s is damaged at offset %d, and later segments hold commits", store.ErrCorrupt, segmentName(base, seqs[i]), seg.damagedAt)
				}
			}
		}
		for _, t := range seg.txs {
			if t.tid <= last {
				continue // checkpointed before the segment was removed
			}
			fresh = append(fresh, t)
			last = t.tid
			for _, w := range t.writes {
				db.raiseNextOID(w.oid)
			}
		}
	}
	if len(fresh) > 0 {
		if err := db.writeToFile(fresh); err != nil {
			return err
		}
		db.lastTID.Store(uint64(last))
	}
	// The replayed segments go before a new one starts: were a crash to
	// leave an old segment with a torn end behind a newer one, the next
	// recovery could not tell the torn end from damage.
	for _, seq := range seqs {
		if err := os.Remove(segmentName(base, seq)); err != nil {
			return fmt.Errorf("remove replayed write-ahead log segment: %w", err)
		}
	}
	if len(seqs) > 0 {
		if err := syncDir(filepath.Dir(base)); err != nil {
			return fmt.Errorf("remove replayed write-ahead log segments: %w", err)
		}
	}
	next := uint64(1)
	if len(seqs) > 0 {
		next = seqs[len(seqs)-1] + 1
	}
	db.wal, err = createSegment(base, next)
	return err
}

func initBuckets(tx *bbolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	if v := meta.Get(keyFormat); v == nil {
		if err := meta.Put(keyFormat, []byte{formatVersion}); err != nil {
			return err
		}
	}
	for _, name := range [][]byte{bucketRevs, bucketTxns} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// loadCounters reads the newest TID and OID; both are found at the end of
// their buckets, so opening costs the same at any size.
func (db *DB) loadCounters(tx *bbolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return fmt.Errorf("%s is not a batos image (no meta bucket)", db.path)
	}
	if v := meta.Get(keyFormat); len(v) != 1 || v[0] != formatVersion {
		return fmt.Errorf("%s has image format %v; this batos reads format %d", db.path, v, formatVersion)
	}
	if k, _ := tx.Bucket(bucketTxns).Cursor().Last(); k != nil {
		db.lastTID.Store(beUint64(k))
	}
	if v := meta.Get(keyLastTID); len(v) == 8 && beUint64(v) > db.lastTID.Load() {
		db.lastTID.Store(beUint64(v))
	}
	db.nextOID.Store(uint64(store.RootOID)) // the first OID handed out follows the root's
	if k, _ := tx.Bucket(bucketRevs).Cursor().Last(); k != nil {
		db.raiseNextOID(store.OID(beUint64(k)))
	}
	if v := meta.Get(keyMaxOID); len(v) == 8 {
		db.raiseNextOID(store.OID(beUint64(v)))
	}
	return nil
}

// Path is the bbolt file's path.
func (db *DB) Path() string { return db.path }

// LastTID implements store.Engine.
func (db *DB) LastTID() store.TID { return store.TID(db.lastTID.Load()) }

// NewOIDs implements store.Engine. OIDs handed out but never committed are
// simply never used.
func (db *DB) NewOIDs(ctx context.Context, n int) ([]store.OID, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: %d OIDs requested", store.ErrInvalid, n)
	}
	last := db.nextOID.Add(uint64(n))
	oids := make([]store.OID, n)
	for i := range oids {
		oids[i] = store.OID(last - uint64(n) + uint64(i) + 1)
	}
	return oids, nil
}

// Close implements store.Engine: it waits for commits in flight, then
// releases the file. Safe to call twice.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		// Once the lock is held no submitter is between its closed check
		// and its send, so the committer sees every queued request.
		db.submitMu.Lock()
		db.closed = true
		close(db.closing)
		db.submitMu.Unlock()
		db.committer.Wait()
		db.closeErr = db.checkpointNow()
		if db.closeErr == nil {
			// Everything is in the file: the empty segment can go.
			db.closeErr = db.wal.remove()
		} else {
			db.wal.close()
		}
		if err := db.bolt.Close(); db.closeErr == nil {
			db.closeErr = err
		}
		if err := db.lock.release(); db.closeErr == nil {
			db.closeErr = err
		}
	})
	return db.closeErr
}

// Bolt exposes the underlying bbolt handle for tests and consistency
// checks; callers must not write through it.
func (db *DB) Bolt() *bbolt.DB { return db.bolt }

func beUint64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// view runs fn in a bbolt read transaction, or fails with
// store.ErrClosed once Close has begun.
func (db *DB) view(fn func(*bbolt.Tx) error) error {
	select {
	case <-db.closing:
		return store.ErrClosed
	default:
	}
	err := db.bolt.View(fn)
	if errors.Is(err, bbolterrors.ErrDatabaseNotOpen) {
		return store.ErrClosed
	}
	return err
}
