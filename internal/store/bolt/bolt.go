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
	"io/fs"
	"log/slog"
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
	// ReadOnly opens without writing anything, so it works on a full disk:
	// the lock is taken but its file not rewritten, the write-ahead log is
	// replayed into memory only and left as it is, no segment is started.
	// Commits, undo, pack and PutBlob fail with store.ErrReadOnly.
	ReadOnly bool
	// Logger receives what no caller can be told: a background checkpoint
	// that failed, the log refusing writes and becoming writable again;
	// default slog.Default().
	Logger *slog.Logger

	// AllowDamaged, with ReadOnly, opens a file whose page structure the
	// check run at open finds damaged, instead of refusing it with a
	// *StructureError: Verify then reports the damage, and every other
	// read of the file fails with that error.
	AllowDamaged bool

	// NoBackgroundCheckpoint keeps every commit in the write-ahead log
	// until Close (or Pack, Compact) checkpoints it, instead of writing
	// the log into the bbolt file whenever commits pause, the log grows
	// big or it grows old. It exists for tests that need commits left in the log, such as
	// a crash after committing, without racing the idle checkpoint; the
	// log and the overlay grow without bound meanwhile.
	NoBackgroundCheckpoint bool

	salvage *RecoveryReport // set by OpenRecovering
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
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return opts
}

// DB is a store.Engine on a bbolt file. It is safe for concurrent use.
type DB struct {
	path string
	opts Options
	// file is the bbolt handle; a compaction swaps it for one on the
	// compacted file, and readers that meet the old one closed retry.
	file    atomic.Pointer[bbolt.DB]
	lock    *processLock
	blobs   *blobDir
	wal     *wal
	overlay *overlay
	serials *serials // newest revisions read or written lately
	pipe    pipeline
	ckpt    *checkpointRun // running checkpoint; committer only
	failed  *checkpointRun // a checkpoint that failed, to write again
	ckptErr error          // the last checkpoint's failure, until one succeeds; committer only

	lastTID atomic.Uint64
	nextOID atomic.Uint64
	// damage is the structural damage an AllowDamaged open found; every
	// read through bbolt fails with it.
	damage *StructureError

	commits   chan *commitRequest
	submitMu  sync.RWMutex // held shared while queueing, exclusively to close
	closed    bool
	closing   chan struct{}
	committer sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	packMu    sync.Mutex // one pack at a time
}

var (
	_ store.Engine       = (*DB)(nil)
	_ store.SerialReader = (*DB)(nil)
)

// Open opens or creates the store at path.
func Open(path string, o *Options) (*DB, error) {
	opts := o.withDefaults(path)
	db := &DB{path: path, opts: opts, commits: make(chan *commitRequest, 1024), closing: make(chan struct{}), overlay: newOverlay(), serials: newSerials()}
	lock, err := lockProcess(path, opts.ReadOnly)
	if err != nil {
		return nil, fmt.Errorf("open image %s: %w", path, err)
	}
	db.lock = lock
	if err := db.open(); err != nil {
		db.lock.release()
		return nil, fmt.Errorf("open image %s: %w", path, err)
	}
	if opts.ReadOnly {
		return db, nil
	}
	db.pipe.start(db)
	db.committer.Add(1)
	go db.commitLoop()
	return db, nil
}

func (db *DB) open() error {
	bo := db.boltOptions()
	if err := db.checkAtOpen(); err != nil {
		return err
	}
	b, err := db.openBolt(bo)
	if err != nil {
		if errors.Is(err, bbolterrors.ErrTimeout) {
			return &store.InUseError{Path: db.path}
		}
		if !errors.Is(err, store.ErrCorrupt) && (errors.Is(err, bbolterrors.ErrChecksum) ||
			errors.Is(err, bbolterrors.ErrInvalid) || errors.Is(err, bbolterrors.ErrVersionMismatch)) {
			// Both meta pages fail bbolt's own check: damage the
			// page check let through, as AllowDamaged asks.
			return fmt.Errorf("%w: bbolt finds no valid meta page: %w", store.ErrCorrupt, err)
		}
		return err
	}
	db.file.Store(b)
	if !db.opts.ReadOnly && needsBuckets(b) {
		// Only a new file is written to before recovery has looked at
		// it: a bbolt commit here would overwrite the older meta page
		// and hide a damaged newest one.
		err = db.update(initBuckets)
	}
	if err == nil {
		err = db.readCounters()
	}
	if err == nil {
		// Before the blob directory is made: an open refused as damaged
		// creates nothing.
		err = db.recover()
	}
	if err == nil {
		db.blobs, err = openBlobDir(db.opts.BlobDir, db.opts.ReadOnly)
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
// starts. Damage that would lose acknowledged commits — a damaged frame
// that later frames prove was durable, a torn end in a segment that is not
// the newest, a file older than a segment header says was acknowledged —
// stops the open with a *store.DamageError before any file is changed,
// unless OpenRecovering is salvaging: then what is intact is kept, the damaged
// segments are moved aside and the loss is reported.
func (db *DB) recover() error {
	base := db.path + ".wal"
	seqs, err := segments(base)
	if err != nil {
		return fmt.Errorf("list write-ahead log: %w", err)
	}
	scans := make([]*segmentScan, len(seqs))
	for i, seq := range seqs {
		if scans[i], err = scanSegment(segmentName(base, seq)); err != nil {
			return err
		}
	}
	damaged, err := db.checkSegments(scans)
	if err != nil {
		return err
	}
	last := db.LastTID()
	var fresh []walTx
	var required store.TID
	var requiredBy string
	for _, s := range scans {
		if s.header != nil && s.header.base > required {
			required, requiredBy = s.header.base, s.path
		}
		txs := s.txs
		if db.opts.salvage != nil {
			txs = append(txs[:len(txs):len(txs)], s.later...)
		}
		for _, t := range txs {
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
	if last < required {
		dmg := &store.DamageError{Path: db.path, Offset: -1, After: last,
			Detail: fmt.Sprintf("it and the write-ahead log hold commits up to %s, but %s records that commits up to %s were acknowledged (a damaged newest meta page makes bbolt fall back to an older one)", last, filepath.Base(requiredBy), required)}
		if db.opts.salvage == nil {
			return dmg
		}
		db.opts.salvage.Damage = append(db.opts.salvage.Damage, dmg)
	}
	if db.opts.ReadOnly {
		// Nothing is written: the log's transactions are served from the
		// overlay, and the segments stay for a writable open.
		db.overlay.add(fresh)
		db.serials.wrote(fresh)
		db.lastTID.Store(uint64(last))
		return nil
	}
	if len(fresh) > 0 {
		if err := db.writeToFile(fresh); err != nil {
			return err
		}
		db.lastTID.Store(uint64(last))
	}
	if rep := db.opts.salvage; rep != nil {
		rep.Replayed = len(fresh)
		for _, s := range damaged {
			aside := fmt.Sprintf("%s.damaged-%s", s.path, time.Now().UTC().Format("20060102T150405"))
			if err := os.Rename(s.path, aside); err != nil {
				return fmt.Errorf("move damaged write-ahead log segment aside: %w", err)
			}
			rep.MovedAside = append(rep.MovedAside, aside)
		}
	}
	// The replayed segments go before a new one starts: were a crash to
	// leave an old segment with a torn end behind a newer one holding
	// frames, the next recovery could not tell the torn end from damage.
	for _, seq := range seqs {
		if err := os.Remove(segmentName(base, seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
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
	db.wal, err = createSegment(base, next, last, 0)
	return err
}

// checkSegments finds the segments whose damage loses acknowledged
// commits. Opening stops at the first; salvaging records them all.
func (db *DB) checkSegments(scans []*segmentScan) ([]*segmentScan, error) {
	var damaged []*segmentScan
	for i, s := range scans {
		laterFrames := false
		for _, l := range scans[i+1:] {
			laterFrames = laterFrames || len(l.txs) > 0 || len(l.later) > 0
		}
		var detail string
		switch {
		case s.damaged:
			detail = s.detail
		case s.torn() && laterFrames:
			detail = fmt.Sprintf("it ends in %d bytes that are not an intact frame, and later segments hold commits", s.size-s.end)
		default:
			continue
		}
		dmg := &store.DamageError{Path: s.path, Offset: s.end, After: db.LastTID(), Detail: detail}
		for _, p := range scans[:i+1] {
			if n := len(p.txs); n > 0 {
				dmg.After = max(dmg.After, p.txs[n-1].tid)
			}
		}
		if len(s.later) > 0 {
			dmg.Before = s.later[0].tid
		} else {
			for _, l := range scans[i+1:] {
				if len(l.txs) > 0 {
					dmg.Before = l.txs[0].tid
					break
				}
			}
		}
		if db.opts.salvage == nil {
			return nil, dmg
		}
		db.opts.salvage.Damage = append(db.opts.salvage.Damage, dmg)
		damaged = append(damaged, s)
	}
	return damaged, nil
}

// needsBuckets reports whether the file is new: no bucket at all. A file
// holding other buckets is not an image, and loadCounters says so.
func needsBuckets(b *bbolt.DB) bool {
	empty := true
	_ = b.View(func(tx *bbolt.Tx) error {
		k, _ := tx.Cursor().First()
		empty = k == nil
		return nil
	})
	return empty
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
	if meta == nil || tx.Bucket(bucketRevs) == nil || tx.Bucket(bucketTxns) == nil {
		return fmt.Errorf("%s is not a batos image (its meta, revs and txns buckets are not all there)", db.path)
	}
	if v := meta.Get(keyFormat); len(v) != 1 || v[0] != formatVersion {
		if len(v) == 1 && v[0] > formatVersion && v[0] < formatVersion+8 {
			return fmt.Errorf("%s has image format %d, written by a newer batos; this one reads format %d", db.path, v[0], formatVersion)
		}
		return &store.DamageError{Path: db.path, Offset: -1, Detail: fmt.Sprintf("its meta bucket's format value %x is not one batos writes (%d)", v, formatVersion)}
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
		if !db.opts.ReadOnly {
			db.closeErr = db.checkpointNow()
			if db.closeErr == nil {
				db.closeErr = db.leaveCleanSegment()
			} else {
				if db.pipe.failed() == nil {
					// Every acknowledged commit is durable in the log,
					// which the next open replays: nothing to report to a
					// caller who can do nothing about it.
					db.opts.Logger.Warn("store: closed with commits not yet in the file (a checkpoint failed); the next open replays them from the write-ahead log", "image", db.path, "err", db.closeErr)
					db.closeErr = nil
				}
				db.wal.close()
			}
		}
		if err := db.file.Load().Close(); db.closeErr == nil {
			db.closeErr = err
		}
		if err := db.lock.release(); db.closeErr == nil {
			db.closeErr = err
		}
	})
	return db.closeErr
}

// leaveCleanSegment replaces the (empty) current segment by one whose
// header, flagged clean, records the newest TID: the file must hold it
// when the image is next opened. Without the space for it, the current
// segment stays, its header recording an older TID.
func (db *DB) leaveCleanSegment() error {
	old, err := db.wal.rotate(db.LastTID(), walFlagClean)
	if err != nil {
		db.opts.Logger.Warn("store: cannot write the clean-close log segment; the previous one stays", "image", db.path, "err", err)
		return db.wal.close()
	}
	if err := old.remove(); err != nil {
		db.wal.close()
		return fmt.Errorf("close: remove write-ahead log segment: %w", err)
	}
	if err := syncDir(filepath.Dir(db.path)); err != nil {
		db.wal.close()
		return fmt.Errorf("close: %w", err)
	}
	return db.wal.close()
}

// Bolt exposes the underlying bbolt handle for tests and consistency
// checks; callers must not write through it.
func (db *DB) Bolt() *bbolt.DB { return db.file.Load() }

// boltOptions are the options the bbolt file is opened with.
func (db *DB) boltOptions() *bbolt.Options {
	return &bbolt.Options{
		Timeout:         time.Second,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: 1 << 30, // readers never block a growing writer below this
		ReadOnly:        db.opts.ReadOnly,
	}
}

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
	err := db.viewFile(fn)
	if errors.Is(err, bbolterrors.ErrDatabaseNotOpen) {
		return store.ErrClosed
	}
	return err
}
