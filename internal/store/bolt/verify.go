package bolt

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"

	"batos/internal/store"
)

// objectState is what verification needs to know of each object.
type objectState struct {
	current store.TID // serial of its newest revision
	deleted bool      // its current revision records a deletion
}

// Verify implements store.Engine. It reads everything: the file's page
// structure, every record and log entry against its checksum, the
// revisions against the log, every reference (with refs) and every blob
// against its digest. It returns an error only when it could not finish;
// what is wrong is in the report.
//
// The file is read with pread through the structural check's walk, never
// through bbolt: Verify works on a file whose damage would crash bbolt
// (opened with AllowDamaged), and reports the records it can still reach.
// A bbolt read transaction held meanwhile keeps the pages it reads from
// being reused by commits.
func (db *DB) Verify(ctx context.Context, refs store.RefsFunc) (*store.Report, error) {
	// Verify reads the file by its pages: no compaction may swap it.
	db.packMu.Lock()
	defer db.packMu.Unlock()
	if err := db.sync(ctx); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	rep := &store.Report{}
	blobsNeeded := map[store.Digest][]store.Problem{}
	err := db.pinned(func(pf *pageFile, meta fileMeta) error {
		v := &verifier{ctx: ctx, rep: rep, c: newPageCheck(pf, meta, true), objects: map[store.OID]objectState{}}
		return v.run(refs, blobsNeeded)
	})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if err := db.verifyBlobs(ctx, rep, blobsNeeded); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return rep, nil
}

// verifier is one run of Verify over the pages of one meta page's tree.
type verifier struct {
	ctx     context.Context
	rep     *store.Report
	c       *pageCheck
	objects map[store.OID]objectState
	// corruptOIDs have revisions whose records fail their checks.
	corruptOIDs map[store.OID]bool
	// log holds each log entry that decodes, corruptLog the TIDs of
	// those that do not.
	log          map[store.TID]*logEntry
	corruptLog   map[store.TID]bool
	packedBefore store.TID // 0: never packed
	packed       bool
	problems     []store.Problem // of records and the log, after the structure's
	n            int
}

// logEntry is what the cross-check keeps of a log entry: the objects it
// names, ascending, and which of them had their revision.
type logEntry struct {
	oids  []store.OID
	found []bool
}

func (v *verifier) run(refs store.RefsFunc, blobsNeeded map[store.Digest][]store.Problem) error {
	c := v.c
	v.log, v.corruptLog, v.corruptOIDs = map[store.TID]*logEntry{}, map[store.TID]bool{}, map[store.OID]bool{}
	if err := c.readFreelist(); err != nil {
		return err
	}
	if err := c.walkRoot(); err != nil {
		return err
	}
	steps := []struct {
		bucket []byte
		fn     func(k, v []byte) error
	}{{bucketMeta, v.meta}, {bucketTxns, v.txn}, {bucketRevs, v.record}}
	for _, s := range steps {
		if err := c.walk(string(s.bucket), true, s.fn); err != nil {
			return err
		}
	}
	c.finish()
	v.rep.Problems = append(v.rep.Problems, settledMetaProblems(c.pf)...)
	v.rep.Problems = append(v.rep.Problems, c.problems...)
	v.rep.Problems = append(v.rep.Problems, capKind(append(v.problems, v.unwrittenRevisions()...), store.LogMismatch, maxMismatches)...)
	v.rep.Objects = len(v.objects)
	if refs == nil {
		return nil
	}
	v.n = 0
	return c.walk(string(bucketRevs), false, func(k, val []byte) error {
		return v.refs(k, val, refs, blobsNeeded)
	})
}

// maxMismatches bounds the log mismatches listed: a damaged page of the
// log or of the revisions leaves every transaction or object on it
// mismatched, and the page is what the report must name.
const maxMismatches = 100

// capKind keeps the first max problems of kind, and counts the rest in
// one more.
func capKind(problems []store.Problem, kind store.ProblemKind, max int) []store.Problem {
	n := 0
	kept := problems[:0]
	for _, p := range problems {
		if p.Kind == kind {
			if n++; n > max {
				continue
			}
		}
		kept = append(kept, p)
	}
	if n > max {
		kept = append(kept, store.Problem{Kind: kind, Detail: fmt.Sprintf("%d more not listed", n-max)})
	}
	return kept
}

// tick checks for cancellation every 4096 calls.
func (v *verifier) tick() error {
	if v.n++; v.n%4096 == 0 {
		return v.ctx.Err()
	}
	return nil
}

func (v *verifier) meta(k, val []byte) error {
	if string(k) == string(keyPackedBefore) {
		v.packed = true
		if len(val) == 8 {
			v.packedBefore = store.TID(beUint64(val))
		}
	}
	return nil
}

func (v *verifier) txn(k, val []byte) error {
	v.rep.Transactions++
	if len(k) != 8 {
		v.problems = append(v.problems, store.Problem{Kind: store.CorruptTransaction, Detail: fmt.Sprintf("log key of %d bytes", len(k))})
		return nil
	}
	tid := store.TID(beUint64(k))
	info, err := decodeTxn(k, val)
	if err != nil {
		v.problems = append(v.problems, store.Problem{Kind: store.CorruptTransaction, TID: tid, Detail: detailOf(err)})
		v.corruptLog[tid] = true
		return v.tick()
	}
	v.log[tid] = &logEntry{oids: info.OIDs, found: make([]bool, len(info.OIDs))}
	return v.tick()
}

func (v *verifier) record(k, val []byte) error {
	if len(k) != 16 {
		v.problems = append(v.problems, store.Problem{Kind: store.CorruptRecord, Detail: fmt.Sprintf("revision key of %d bytes", len(k))})
		return nil
	}
	oid, tid := splitRevKey(k)
	v.rep.Revisions++
	v.crossCheck(oid, tid)
	flags, _, err := decodeRecord(k, val)
	if err != nil {
		v.problems = append(v.problems, store.Problem{Kind: store.CorruptRecord, OID: oid, TID: tid, Detail: detailOf(err)})
		v.corruptOIDs[oid] = true
		return v.tick()
	}
	// Revisions come oldest first, so the last one seen is current.
	v.objects[oid] = objectState{current: tid, deleted: flags&flagDeleted != 0}
	return v.tick()
}

// crossCheck checks that the revision of oid written by tid has a log
// entry naming it. A log entry that does not decode was reported already.
func (v *verifier) crossCheck(oid store.OID, tid store.TID) {
	if v.corruptLog[tid] {
		return
	}
	e, ok := v.log[tid]
	if !ok {
		v.problems = append(v.problems, store.Problem{Kind: store.LogMismatch, OID: oid, TID: tid, Detail: "revision with no log entry"})
		return
	}
	i, ok := slices.BinarySearch(e.oids, oid)
	if !ok {
		v.problems = append(v.problems, store.Problem{Kind: store.LogMismatch, OID: oid, TID: tid, Detail: "revision not named by its transaction's log entry"})
		return
	}
	e.found[i] = true
}

// unwrittenRevisions reports objects a log entry names that have no
// revision from its transaction. Pack explains two cases: it drops
// superseded revisions up to its cut, and every revision of an object no
// longer reachable, leaving their log entries.
func (v *verifier) unwrittenRevisions() []store.Problem {
	var problems []store.Problem
	tids := slices.Sorted(maps.Keys(v.log))
	for _, tid := range tids {
		e := v.log[tid]
		for i, oid := range e.oids {
			_, exists := v.objects[oid]
			switch {
			case e.found[i], v.packed && tid <= v.packedBefore:
			case v.packed && !exists && !v.corruptOIDs[oid]:
			default:
				problems = append(problems, store.Problem{Kind: store.LogMismatch, OID: oid, TID: tid, Detail: "named by the log entry, but no revision from this transaction"})
			}
		}
	}
	return problems
}

func (v *verifier) refs(k, val []byte, refs store.RefsFunc, blobsNeeded map[store.Digest][]store.Problem) error {
	if len(k) != 16 {
		return nil
	}
	if err := v.tick(); err != nil {
		return err
	}
	oid, tid := splitRevKey(k)
	flags, data, err := decodeRecord(k, val)
	if err != nil || flags&flagDeleted != 0 {
		return nil // already reported, or nothing to follow
	}
	oids, blobs, err := refs(data)
	if err != nil {
		v.rep.Problems = append(v.rep.Problems, store.Problem{Kind: store.UndecodableRecord, OID: oid, TID: tid, Detail: err.Error()})
		return nil
	}
	current := v.objects[oid].current == tid
	for _, target := range oids {
		st, ok := v.objects[target]
		if !ok || (current && st.deleted) {
			v.rep.Problems = append(v.rep.Problems, store.Problem{Kind: store.DanglingReference, OID: oid, TID: tid, Target: target})
		}
	}
	for _, d := range blobs {
		blobsNeeded[d] = append(blobsNeeded[d], store.Problem{Kind: store.MissingBlob, OID: oid, TID: tid, Digest: d})
	}
	return nil
}

// verifyBlobs hashes every blob file and reports references to blobs that
// are not there.
func (db *DB) verifyBlobs(ctx context.Context, rep *store.Report, needed map[store.Digest][]store.Problem) error {
	err := db.blobs.each(ctx, func(d store.Digest, path string, fi fs.FileInfo) error {
		rep.Blobs++
		rep.BlobBytes += fi.Size()
		delete(needed, d)
		got, err := hashFile(path)
		if err != nil {
			return err
		}
		if got != d {
			rep.Problems = append(rep.Problems, store.Problem{Kind: store.CorruptBlob, Digest: d, Detail: "content hashes to " + got.String()})
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, problems := range needed {
		rep.Problems = append(rep.Problems, problems...)
	}
	return nil
}

// detailOf strips a corrupt-data error down to what is wrong; the problem
// already names the object and transaction.
func detailOf(err error) string {
	var ce *store.CorruptError
	if errors.As(err, &ce) {
		return ce.Detail
	}
	return err.Error()
}
