package bolt

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"

	"batos/internal/store"
)

// compactTxBytes bounds how much one bbolt transaction of the copy holds.
const compactTxBytes = 64 << 20

// Compact rewrites the bbolt file without its free pages, which pack
// leaves behind (bbolt reuses free pages but never shrinks its file), and
// swaps the rewritten file in while the store stays open. The committer
// runs it with every acknowledged commit in the file, so commits wait for
// the copy; readers go on, and those that meet the old file closed under
// them retry on the new one. A crash at any point leaves either the old
// file or the complete new one in place: the copy is synced before it is
// renamed over the old.
func (db *DB) Compact(ctx context.Context) (store.CompactResult, error) {
	if db.opts.ReadOnly {
		return store.CompactResult{}, fmt.Errorf("compact: %w", store.ErrReadOnly)
	}
	db.packMu.Lock() // pack writes the file outside the committer
	defer db.packMu.Unlock()
	var res store.CompactResult
	_, err := db.submit(ctx, &commitRequest{maintenance: true, after: func() error {
		return db.compactLocked(ctx, &res)
	}})
	if err != nil {
		return res, fmt.Errorf("compact: %w", err)
	}
	return res, nil
}

// compactLocked copies the file and swaps the copy in. Caller: the
// committer, with the file up to date and no checkpoint running.
func (db *DB) compactLocked(ctx context.Context, res *store.CompactResult) error {
	if db.damage != nil {
		return db.damage
	}
	fi, err := os.Stat(db.path)
	if err != nil {
		return err
	}
	res.BytesBefore = fi.Size()
	tmp := db.path + ".compact"
	os.Remove(tmp) // left by a crash during an earlier compaction
	dst, err := bbolt.Open(tmp, 0o644, &bbolt.Options{Timeout: time.Second, FreelistType: bbolt.FreelistMapType, NoSync: true})
	if err != nil {
		os.Remove(tmp)
		return noSpace(err, tmp, "compaction")
	}
	src := db.file.Load()
	err = db.guard("read", func() error { return bbolt.Compact(dst, src, compactTxBytes) })
	if err == nil {
		err = ctx.Err()
	}
	// bbolt grows its file in steps ahead of need; what lies past the
	// high-water mark of the copy is unused and goes.
	var used int64
	if err == nil {
		err = dst.View(func(tx *bbolt.Tx) error { used = tx.Size(); return nil })
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = truncateSynced(tmp, used)
	}
	if err == nil {
		err = os.Rename(tmp, db.path)
	}
	if err != nil {
		os.Remove(tmp)
		return noSpace(err, tmp, "compaction")
	}
	// From here the path holds the compacted file; the old one lives on
	// until its handle closes.
	if err := syncDir(filepath.Dir(db.path)); err != nil {
		return err
	}
	b, err := db.openBolt(db.boltOptions())
	if err != nil {
		return fmt.Errorf("open the compacted file (this process goes on with the old one): %w", err)
	}
	old := db.file.Swap(b)
	db.serials.forget()
	if err := old.Close(); err != nil { // waits for the readers still on it
		return fmt.Errorf("close the file before compaction: %w", err)
	}
	if fi, err := os.Stat(db.path); err == nil {
		res.BytesAfter = fi.Size()
	}
	return nil
}

// truncateSynced cuts the file at path to size and syncs it.
func truncateSynced(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
