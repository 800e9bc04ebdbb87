// Package storecopy copies an image from one storage engine to another
// with its whole history: every transaction the source's log keeps, in
// order, with its TID, time, user, description and extension, every
// revision it wrote, and every blob a revision refers to. The copy is
// then verified and compared with the source, log and histories alike.
package storecopy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"batos/internal/store"
)

// Options configures a copy.
type Options struct {
	// Refs finds the objects and blobs a record refers to (the image
	// layer's); the copy needs it for blobs, and Verify for references.
	Refs store.RefsFunc
	// Progress, if set, is told after each transaction how many of the
	// source's transactions are copied, and of how many.
	Progress func(done, total int)
}

// Result reports a copy.
type Result struct {
	Transactions int   // transactions copied
	Revisions    int   // revisions copied (deletions included)
	Blobs        int   // blobs copied
	BlobBytes    int64 // their bytes
	// Missing counts revisions the source's log names but no longer
	// holds (a pack dropped them while keeping the log entry); the copy
	// has the same gap.
	Missing int
	// Through is the newest transaction copied: the source as it was
	// when the copy began. Commits to a live source after that (other
	// nodes of a database) are not in the copy; Compare up to it.
	Through store.TID
}

// ErrNotEmpty refuses a copy into a store that holds transactions.
var ErrNotEmpty = errors.New("the destination is not empty")

// Copy copies src into dst, which must be empty and able to import.
func Copy(ctx context.Context, src, dst store.Engine, o Options) (Result, error) {
	var res Result
	im, ok := dst.(store.Importer)
	if !ok {
		return res, fmt.Errorf("the destination engine %T cannot import transactions", dst)
	}
	if o.Refs == nil {
		return res, errors.New("storecopy: no RefsFunc")
	}
	if last := dst.LastTID(); last != 0 {
		return res, fmt.Errorf("%w: its last transaction is %s (copy into a new image)", ErrNotEmpty, last)
	}
	tids, err := allTIDs(ctx, src)
	if err != nil {
		return res, err
	}
	if len(tids) > 0 {
		res.Through = tids[len(tids)-1]
	}
	copied := map[store.Digest]bool{}
	// packedTo is the newest transaction a pack of the source took
	// revisions from: the copy is marked packed up to it, so its Verify
	// reads the same gaps as the source's.
	var packedTo store.TID
	for i, tid := range tids {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		info, err := src.Transaction(ctx, tid)
		if err != nil {
			return res, fmt.Errorf("read transaction %s: %w", tid, err)
		}
		var records []store.ImportRecord
		for _, oid := range info.OIDs {
			r, missing, err := revision(ctx, src, oid, tid)
			if err != nil {
				return res, err
			}
			if missing {
				res.Missing++
				packedTo = tid
				continue
			}
			if !r.Deleted {
				_, blobs, err := o.Refs(r.Data)
				if err != nil {
					return res, fmt.Errorf("%s as of %s: %w", oid, tid, err)
				}
				for _, d := range blobs {
					if copied[d] {
						continue
					}
					n, err := copyBlob(ctx, src, dst, d)
					if err != nil {
						return res, err
					}
					copied[d] = true
					res.Blobs++
					res.BlobBytes += n
				}
			}
			records = append(records, r)
		}
		if err := im.Import(ctx, info, records); err != nil {
			return res, fmt.Errorf("import transaction %s: %w", tid, err)
		}
		res.Transactions++
		res.Revisions += len(records)
		if o.Progress != nil {
			o.Progress(i+1, len(tids))
		}
	}
	// The source's own cut, where it records one: transactions up to it
	// cannot be undone there, and must not be here (their history before
	// the cut is gone: an undo would restore nothing, or delete).
	if pm, ok := src.(store.PackMarker); ok {
		cut, err := pm.PackedBefore(ctx)
		if err != nil {
			return res, fmt.Errorf("read the source's pack cut: %w", err)
		}
		packedTo = max(packedTo, min(cut, dst.LastTID()))
	}
	if packedTo != 0 {
		if err := im.MarkPacked(ctx, packedTo); err != nil {
			return res, fmt.Errorf("mark the copy packed up to %s: %w", packedTo, err)
		}
	}
	return res, nil
}

// allTIDs lists the source's transactions, oldest first.
func allTIDs(ctx context.Context, src store.Engine) ([]store.TID, error) {
	const page = 1000
	var tids []store.TID
	before := store.TID(0)
	for {
		txs, err := src.Log(ctx, store.LogQuery{Before: before, Limit: page})
		if err != nil {
			return nil, fmt.Errorf("read the log: %w", err)
		}
		for _, t := range txs {
			tids = append(tids, t.TID)
		}
		if len(txs) < page {
			break
		}
		before = txs[len(txs)-1].TID
	}
	slices.Reverse(tids)
	return tids, nil
}

// revision reads the revision of oid that transaction tid wrote:
// its data, a deletion, or missing when the source no longer holds it.
func revision(ctx context.Context, src store.Engine, oid store.OID, tid store.TID) (store.ImportRecord, bool, error) {
	r, err := src.LoadAt(ctx, oid, tid)
	switch {
	case err == nil && r.Serial == tid:
		return store.ImportRecord{OID: oid, Data: r.Data}, false, nil
	case err == nil:
		return store.ImportRecord{}, true, nil // an older revision: tid's was packed away
	case errors.Is(err, store.ErrNotFound):
		// Either tid deleted it (an undone creation), or its revision is
		// gone: the history says which.
		deleted, err := deletedAt(ctx, src, oid, tid)
		if err != nil {
			return store.ImportRecord{}, false, err
		}
		return store.ImportRecord{OID: oid, Deleted: true}, !deleted, nil
	default:
		return store.ImportRecord{}, false, fmt.Errorf("read %s as of %s: %w", oid, tid, err)
	}
}

// deletedAt says whether oid's history records a deletion at tid.
func deletedAt(ctx context.Context, src store.Engine, oid store.OID, tid store.TID) (bool, error) {
	revs, err := src.History(ctx, oid, 0)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("history of %s: %w", oid, err)
	}
	for _, r := range revs {
		if r.Serial == tid {
			return r.Deleted, nil
		}
	}
	return false, nil
}

// copyBlob streams blob d from src into dst and checks that dst stored it
// under the same digest; it answers its size.
func copyBlob(ctx context.Context, src, dst store.Engine, d store.Digest) (int64, error) {
	if b, err := dst.StatBlob(ctx, d); err == nil {
		return b.Size, nil
	}
	rc, err := src.OpenBlob(ctx, d)
	if err != nil {
		return 0, fmt.Errorf("read blob %s: %w", d, err)
	}
	defer rc.Close()
	b, err := dst.PutBlob(ctx, rc)
	if err != nil {
		return 0, fmt.Errorf("copy blob %s: %w", d, err)
	}
	if b.Digest != d {
		return 0, fmt.Errorf("copy blob %s: it arrived as %s", d, b.Digest)
	}
	return b.Size, nil
}

// Compare checks that dst reads as src read as of transaction through
// (a copy's Result.Through; 0: as src reads now): the same log,
// transaction for transaction, and for every object either names, the
// same history and the same current revision. It answers the first
// difference. What a live source committed after through is left out.
func Compare(ctx context.Context, src, dst store.Engine, through store.TID) error {
	a, err := fullLog(ctx, src)
	if err != nil {
		return err
	}
	if through != 0 {
		a = slices.DeleteFunc(a, func(tx store.TxInfo) bool { return tx.TID > through })
	}
	b, err := fullLog(ctx, dst)
	if err != nil {
		return err
	}
	if len(a) != len(b) {
		return fmt.Errorf("the source's log has %d transactions, the copy's %d", len(a), len(b))
	}
	if err := samePackCut(ctx, src, dst, a); err != nil {
		return err
	}
	objects := map[store.OID]bool{}
	for i := range a {
		if err := sameTx(a[i], b[i]); err != nil {
			return err
		}
		for _, oid := range a[i].OIDs {
			objects[oid] = true
		}
	}
	for _, oid := range slices.Sorted(maps.Keys(objects)) {
		ha, errA := src.History(ctx, oid, 0)
		hb, errB := dst.History(ctx, oid, 0)
		if (errA == nil) != (errB == nil) {
			return fmt.Errorf("history of %s: the source says %v, the copy %v", oid, errA, errB)
		}
		if through != 0 {
			ha = slices.DeleteFunc(ha, func(r store.Revision) bool { return r.Serial > through })
		}
		if !slices.Equal(ha, hb) {
			return fmt.Errorf("history of %s differs: source %v, copy %v", oid, ha, hb)
		}
		ra, errA := loadThrough(ctx, src, oid, through)
		rb, errB := dst.Load(ctx, oid)
		if (errA == nil) != (errB == nil) || errA == nil && (ra.Serial != rb.Serial || string(ra.Data) != string(rb.Data)) {
			return fmt.Errorf("%s reads differently in the copy", oid)
		}
	}
	return nil
}

// loadThrough reads oid's revision current as of through (0: now).
func loadThrough(ctx context.Context, s store.Engine, oid store.OID, through store.TID) (store.Record, error) {
	if through == 0 {
		return s.Load(ctx, oid)
	}
	return s.LoadAt(ctx, oid, through)
}

func fullLog(ctx context.Context, s store.Engine) ([]store.TxInfo, error) {
	txs, err := s.Log(ctx, store.LogQuery{})
	if err != nil {
		return nil, fmt.Errorf("read the log: %w", err)
	}
	return txs, nil
}

func sameTx(a, b store.TxInfo) error {
	same := a.TID == b.TID && a.Time.Equal(b.Time) && a.User == b.User && a.Description == b.Description &&
		len(a.Extension) == len(b.Extension) && slices.Equal(a.OIDs, b.OIDs)
	for k, v := range a.Extension {
		w, ok := b.Extension[k]
		same = same && ok && w == v
	}
	if !same {
		return fmt.Errorf("transaction %s differs in the copy: source %+v, copy %+v", a.TID, a, b)
	}
	return nil
}

// samePackCut checks that the copy refuses to undo what the source
// refuses for a pack: the newest logged transaction at or before the
// source's cut is at or before the copy's.
func samePackCut(ctx context.Context, src, dst store.Engine, log []store.TxInfo) error {
	ps, ok1 := src.(store.PackMarker)
	pd, ok2 := dst.(store.PackMarker)
	if !ok1 || !ok2 {
		return nil
	}
	a, err := ps.PackedBefore(ctx)
	if err != nil {
		return fmt.Errorf("the source's pack cut: %w", err)
	}
	b, err := pd.PackedBefore(ctx)
	if err != nil {
		return fmt.Errorf("the copy's pack cut: %w", err)
	}
	for _, tx := range log { // newest first
		if tx.TID <= a {
			if tx.TID > b {
				return fmt.Errorf("the source cannot undo %s (packed up to %s), the copy could (packed up to %s)", tx.TID, a, b)
			}
			break
		}
	}
	return nil
}
