package pg

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"

	"batos/internal/store"
)

// maxMismatches bounds the log mismatches listed, as bolt does.
const maxMismatches = 100

// objectState is what verification needs to know of each object.
type objectState struct {
	current store.TID // serial of its newest revision
	deleted bool      // its current revision records a deletion
}

// logEntry is what the cross-check keeps of a log entry: the objects it
// names, ascending, and which of them had their revision.
type logEntry struct {
	oids  []store.OID
	found []bool
}

// pendingRefs are a revision's references, checked once every object's
// current revision is known.
type pendingRefs struct {
	oid   store.OID
	tid   store.TID
	oids  []store.OID
	blobs []store.Digest
}

// verifier is one run of Verify, over one snapshot.
type verifier struct {
	rep          *store.Report
	objects      map[store.OID]objectState
	corruptOIDs  map[store.OID]bool
	log          map[store.TID]*logEntry
	corruptLog   map[store.TID]bool
	packedBefore store.TID // 0: never packed
	problems     []store.Problem
	refProblems  []store.Problem
	refs         []pendingRefs
}

// Verify implements store.Engine. It reads everything in one REPEATABLE
// READ snapshot: every log entry and record against its CRC, the
// revisions against the log and current_object, every reference (with
// refs) and every blob against its digest. It returns an error only when
// it could not finish; what is wrong is in the report.
func (db *DB) Verify(ctx context.Context, refs store.RefsFunc) (*store.Report, error) {
	done, err := db.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	v := &verifier{
		rep:         &store.Report{},
		objects:     map[store.OID]objectState{},
		corruptOIDs: map[store.OID]bool{},
		log:         map[store.TID]*logEntry{},
		corruptLog:  map[store.TID]bool{},
	}
	err = pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		return v.run(ctx, tx, refs)
	})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return v.rep, nil
}

func (v *verifier) run(ctx context.Context, tx pgx.Tx, refs store.RefsFunc) error {
	var packed int64
	if err := tx.QueryRow(ctx, "SELECT value FROM store_meta WHERE name = 'packed_before'").Scan(&packed); err != nil {
		return fmt.Errorf("read the pack cut: %w", err)
	}
	v.packedBefore = store.TID(packed)
	if err := v.readLog(ctx, tx); err != nil {
		return err
	}
	if err := v.readRevisions(ctx, tx, refs); err != nil {
		return err
	}
	if err := v.checkCurrent(ctx, tx); err != nil {
		return err
	}
	v.rep.Objects = len(v.objects)
	v.problems = append(v.problems, v.unwrittenRevisions()...)
	v.rep.Problems = append(v.rep.Problems, capKind(v.problems, store.LogMismatch, maxMismatches)...)
	needed := v.checkRefs()
	v.rep.Problems = append(v.rep.Problems, v.refProblems...)
	return v.checkBlobs(ctx, tx, needed)
}

func (v *verifier) readLog(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, "SELECT "+txnColumns+" FROM transaction ORDER BY tid")
	if err != nil {
		return err
	}
	var r txnRow
	_, err = pgx.ForEachRow(rows, r.dest(), func() error {
		v.rep.Transactions++
		tid := store.TID(r.tid)
		info, err := r.info()
		if err != nil {
			v.problems = append(v.problems, store.Problem{Kind: store.CorruptTransaction, TID: tid, Detail: detailOf(err)})
			v.corruptLog[tid] = true
			return nil
		}
		v.log[tid] = &logEntry{oids: info.OIDs, found: make([]bool, len(info.OIDs))}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the log: %w", err)
	}
	return nil
}

func (v *verifier) readRevisions(ctx context.Context, tx pgx.Tx, refs store.RefsFunc) error {
	rows, err := tx.Query(ctx, "SELECT oid, tid, deleted, data, crc FROM object_state ORDER BY oid, tid")
	if err != nil {
		return err
	}
	var oid64, tid64, crc int64
	var deleted bool
	var data []byte
	n := 0
	_, err = pgx.ForEachRow(rows, []any{&oid64, &tid64, &deleted, &data, &crc}, func() error {
		oid, tid := store.OID(oid64), store.TID(tid64)
		v.rep.Revisions++
		v.crossCheck(oid, tid)
		if err := checkRevision(oid, tid, deleted, data, crc); err != nil {
			v.problems = append(v.problems, store.Problem{Kind: store.CorruptRecord, OID: oid, TID: tid, Detail: detailOf(err)})
			v.corruptOIDs[oid] = true
			return nil
		}
		// Revisions come oldest first, so the last one seen is current.
		v.objects[oid] = objectState{current: tid, deleted: deleted}
		if refs != nil && !deleted {
			oids, blobs, err := refs(data)
			if err != nil {
				v.refProblems = append(v.refProblems, store.Problem{Kind: store.UndecodableRecord, OID: oid, TID: tid, Detail: err.Error()})
			} else if len(oids) > 0 || len(blobs) > 0 {
				v.refs = append(v.refs, pendingRefs{oid: oid, tid: tid, oids: oids, blobs: blobs})
			}
		}
		if n++; n%4096 == 0 {
			return ctx.Err()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the revisions: %w", err)
	}
	return nil
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

// checkCurrent checks current_object against the revisions: commits
// check serials against it, so a wrong row would let a stale write in.
func (v *verifier) checkCurrent(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, "SELECT oid, tid, deleted FROM current_object")
	if err != nil {
		return err
	}
	seen := map[store.OID]bool{}
	var oid64, tid64 int64
	var deleted bool
	_, err = pgx.ForEachRow(rows, []any{&oid64, &tid64, &deleted}, func() error {
		oid, tid := store.OID(oid64), store.TID(tid64)
		seen[oid] = true
		st, ok := v.objects[oid]
		switch {
		case v.corruptOIDs[oid]:
		case !ok:
			v.problems = append(v.problems, store.Problem{Kind: store.CorruptRecord, OID: oid, TID: tid, Detail: "current_object names a revision of an object that has none"})
		case st.current != tid || st.deleted != deleted:
			v.problems = append(v.problems, store.Problem{Kind: store.CorruptRecord, OID: oid, TID: tid, Detail: fmt.Sprintf("current_object names revision %s (deleted %t), the newest is %s (deleted %t)", tid, deleted, st.current, st.deleted)})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read current_object: %w", err)
	}
	for _, oid := range slices.Sorted(maps.Keys(v.objects)) {
		if !seen[oid] {
			v.problems = append(v.problems, store.Problem{Kind: store.CorruptRecord, OID: oid, TID: v.objects[oid].current, Detail: "missing from current_object"})
		}
	}
	return nil
}

// unwrittenRevisions reports objects a log entry names that have no
// revision from its transaction. Pack explains two cases: it drops
// superseded revisions up to its cut, and every revision of an object no
// longer reachable, leaving their log entries.
func (v *verifier) unwrittenRevisions() []store.Problem {
	var problems []store.Problem
	packed := v.packedBefore != 0
	for _, tid := range slices.Sorted(maps.Keys(v.log)) {
		e := v.log[tid]
		for i, oid := range e.oids {
			_, exists := v.objects[oid]
			switch {
			case e.found[i], packed && tid <= v.packedBefore:
			case packed && !exists && !v.corruptOIDs[oid]:
			default:
				problems = append(problems, store.Problem{Kind: store.LogMismatch, OID: oid, TID: tid, Detail: "named by the log entry, but no revision from this transaction"})
			}
		}
	}
	return problems
}

// checkRefs reports references to missing objects, and to deleted ones
// from current revisions; it returns the blobs referred to, with the
// problem to report for each if the blob is missing.
func (v *verifier) checkRefs() map[store.Digest][]store.Problem {
	needed := map[store.Digest][]store.Problem{}
	for _, r := range v.refs {
		current := v.objects[r.oid].current == r.tid
		for _, target := range r.oids {
			st, ok := v.objects[target]
			if !ok || (current && st.deleted) {
				v.refProblems = append(v.refProblems, store.Problem{Kind: store.DanglingReference, OID: r.oid, TID: r.tid, Target: target})
			}
		}
		for _, d := range r.blobs {
			needed[d] = append(needed[d], store.Problem{Kind: store.MissingBlob, OID: r.oid, TID: r.tid, Digest: d})
		}
	}
	return needed
}

// checkBlobs hashes every blob and reports references to blobs that are
// not there.
func (v *verifier) checkBlobs(ctx context.Context, tx pgx.Tx, needed map[store.Digest][]store.Problem) error {
	rows, err := tx.Query(ctx, "SELECT digest, blob_id, size, chunks FROM blob ORDER BY digest")
	if err != nil {
		return err
	}
	type stored struct {
		digest []byte
		row    blobRow
	}
	var blobs []stored
	var b stored
	_, err = pgx.ForEachRow(rows, []any{&b.digest, &b.row.id, &b.row.size, &b.row.chunks}, func() error {
		blobs = append(blobs, b)
		return nil
	})
	if err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	for _, b := range blobs {
		v.rep.Blobs++
		v.rep.BlobBytes += b.row.size
		var d store.Digest
		if len(b.digest) != len(d) {
			v.rep.Problems = append(v.rep.Problems, store.Problem{Kind: store.CorruptBlob, Detail: fmt.Sprintf("blob %d has a digest of %d bytes: %x", b.row.id, len(b.digest), b.digest)})
			continue
		}
		copy(d[:], b.digest)
		delete(needed, d)
		problem, err := hashBlob(ctx, tx, d, b.row)
		if err != nil {
			return fmt.Errorf("read blob %s: %w", d, err)
		}
		if problem != "" {
			v.rep.Problems = append(v.rep.Problems, store.Problem{Kind: store.CorruptBlob, Digest: d, Detail: problem})
		}
	}
	for _, d := range slices.SortedFunc(maps.Keys(needed), func(a, b store.Digest) int { return slices.Compare(a[:], b[:]) }) {
		v.rep.Problems = append(v.rep.Problems, needed[d]...)
	}
	return nil
}

// capKind keeps the first max problems of kind, and counts the rest in
// one more.
func capKind(problems []store.Problem, kind store.ProblemKind, max int) []store.Problem {
	n := 0
	var kept []store.Problem
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

// detailOf strips a corrupt-data error down to what is wrong; the problem
// already names the object and transaction.
func detailOf(err error) string {
	var ce *store.CorruptError
	if errors.As(err, &ce) {
		return ce.Detail
	}
	return err.Error()
}
