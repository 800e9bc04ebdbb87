package pg

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"batos/internal/store"
)

// packChunk bounds how many rows one sweep statement deletes, so each
// stays short.
const packChunk = 8192

// revKey names one row of object_state.
type revKey struct {
	oid store.OID
	tid store.TID
}

// packPlan is what the mark phase decided.
type packPlan struct {
	marked store.TID // newest transaction the mark saw
	cut    store.TID // revisions superseded at or before cut go
	// refs and blobRefs: what each object's kept revisions refer to.
	refs     map[store.OID][]store.OID
	blobRefs map[store.OID][]store.Digest
	live     map[store.OID]bool
	blobs    map[store.Digest]bool // referenced by kept revisions of live objects
	// committed holds, for every blob some revision refers to, the newest
	// such revision: proof that a transaction referring to it committed,
	// which ends the blob's pin if it is newer than the pin.
	committed  map[store.Digest]store.TID
	superseded []revKey
	// deadDeletions are objects whose only revision left is a deletion
	// before the cut: the revision goes with the rest of superseded, and
	// the object's current_object row too unless a commit revived it.
	deadDeletions []revKey
	doomed        map[store.OID]bool // unreachable objects
	deadTxns      []int64            // log entries left with no revision
}

// Pack implements store.Engine, without stopping writers:
//
//  1. Mark, in one REPEATABLE READ snapshot: which revisions are
//     superseded at the cut, which objects the root reaches, which blobs
//     they refer to.
//  2. opts.BeforeSweep, with the TID the snapshot saw.
//  3. Record the cut, under the commit lock (undo refuses older
//     transactions from then on), then delete superseded revisions and
//     dead log entries in short statements: no commit or undo can touch
//     a revision superseded before the cut, so they need no lock.
//  4. Under the commit lock, so no commit comes in between: rescue every
//     object written or referred to by a transaction committed since the
//     mark, then delete the unreachable objects and unreferenced,
//     unpinned blobs.
//
// One pack runs at a time across all nodes (an advisory lock).
func (db *DB) Pack(ctx context.Context, opts store.PackOptions) (store.PackResult, error) {
	if opts.Refs == nil || opts.Root == 0 {
		return store.PackResult{}, fmt.Errorf("%w: pack needs a root and a reference finder", store.ErrInvalid)
	}
	done, err := db.enter()
	if err != nil {
		return store.PackResult{}, err
	}
	defer done()
	// Everything runs on one connection, which holds the pack lock: a
	// pool of one connection cannot deadlock.
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return store.PackResult{}, fmt.Errorf("pack: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", packLockKey); err != nil {
		return store.PackResult{}, fmt.Errorf("pack: take the pack lock: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", packLockKey); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) // closing the session releases its locks
		}
	}()
	res, err := db.pack(ctx, conn, opts)
	if err != nil {
		return res, fmt.Errorf("pack: %w", err)
	}
	return res, nil
}

func (db *DB) pack(ctx context.Context, conn *pgxpool.Conn, opts store.PackOptions) (store.PackResult, error) {
	var res store.PackResult
	p := &packPlan{
		refs:      map[store.OID][]store.OID{},
		blobRefs:  map[store.OID][]store.Digest{},
		committed: map[store.Digest]store.TID{},
		doomed:    map[store.OID]bool{},
	}
	err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		return p.mark(ctx, tx, opts)
	})
	if err != nil {
		return res, err
	}
	if opts.BeforeSweep != nil {
		if err := opts.BeforeSweep(ctx, p.marked); err != nil {
			return res, err
		}
	}
	// Under the commit lock: an undo (which reads the cut, then the
	// revisions it restores, under that lock) either finishes before any
	// revision goes, or sees the cut and refuses.
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", commitLockKey); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE store_meta SET value = greatest(value, $1) WHERE name = 'packed_before'", int64(p.cut))
		return err
	})
	if err != nil {
		return res, fmt.Errorf("record the cut: %w", err)
	}
	for keys := p.superseded; len(keys) > 0; {
		n := min(packChunk, len(keys))
		oids, tids := revKeyArrays(keys[:n])
		tag, err := conn.Exec(ctx, `
DELETE FROM object_state s USING unnest($1::bigint[], $2::bigint[]) AS d(oid, tid)
WHERE s.oid = d.oid AND s.tid = d.tid`, oids, tids)
		if err != nil {
			return res, fmt.Errorf("delete superseded revisions: %w", err)
		}
		res.Revisions += int(tag.RowsAffected())
		keys = keys[n:]
	}
	if len(p.deadDeletions) > 0 {
		// Only while the deletion is still current: a commit since the
		// mark may have created the object again.
		oids, tids := revKeyArrays(p.deadDeletions)
		_, err := conn.Exec(ctx, `
DELETE FROM current_object c USING unnest($1::bigint[], $2::bigint[]) AS d(oid, tid)
WHERE c.oid = d.oid AND c.tid = d.tid AND c.deleted`, oids, tids)
		if err != nil {
			return res, fmt.Errorf("delete deleted objects: %w", err)
		}
	}
	for tids := p.deadTxns; len(tids) > 0; {
		n := min(packChunk, len(tids))
		tag, err := conn.Exec(ctx, "DELETE FROM transaction WHERE tid = ANY($1)", tids[:n])
		if err != nil {
			return res, fmt.Errorf("delete log entries: %w", err)
		}
		res.Transactions += int(tag.RowsAffected())
		tids = tids[n:]
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", commitLockKey); err != nil {
			return fmt.Errorf("take the commit lock: %w", err)
		}
		if err := p.rescue(ctx, tx, opts.Refs); err != nil {
			return err
		}
		if err := p.sweepObjects(ctx, tx, &res); err != nil {
			return err
		}
		return db.sweepBlobs(ctx, tx, p, &res)
	})
	return res, err
}

func revKeyArrays(keys []revKey) (oids, tids []int64) {
	oids, tids = make([]int64, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		oids[i], tids[i] = int64(k.oid), int64(k.tid)
	}
	return oids, tids
}

// mark reads the whole store in one snapshot.
func (p *packPlan) mark(ctx context.Context, tx pgx.Tx, opts store.PackOptions) error {
	var last int64
	if err := tx.QueryRow(ctx, "SELECT value FROM store_meta WHERE name = 'last_tid'").Scan(&last); err != nil {
		return err
	}
	p.marked = store.TID(last)
	// A cut in the future would refuse undo of transactions not yet made.
	p.cut = min(store.TIDAt(opts.Before), p.marked)
	keptSerials := map[store.TID]bool{}
	exists := map[store.OID]bool{}

	var revs []revision
	var cur store.OID
	flush := func() error {
		if len(revs) == 0 {
			return nil
		}
		defer func() { revs = revs[:0] }()
		oid := cur
		first := 0 // the oldest revision kept: the one current at the cut, or the first after
		for first+1 < len(revs) && revs[first+1].tid <= p.cut {
			first++
		}
		for _, r := range revs[:first] {
			p.superseded = append(p.superseded, revKey{oid, r.tid})
			if err := p.noteRefs(oid, r, opts.Refs, false); err != nil {
				return err
			}
		}
		revs = revs[first:]
		if len(revs) == 1 && revs[0].tid <= p.cut && revs[0].deleted {
			// Deleted and never revived.
			k := revKey{oid, revs[0].tid}
			p.superseded = append(p.superseded, k)
			p.deadDeletions = append(p.deadDeletions, k)
			return nil
		}
		exists[oid] = true
		for _, r := range revs {
			keptSerials[r.tid] = true
			if err := p.noteRefs(oid, r, opts.Refs, true); err != nil {
				return err
			}
		}
		return nil
	}
	rows, err := tx.Query(ctx, "SELECT oid, tid, deleted, data, crc FROM object_state ORDER BY oid, tid")
	if err != nil {
		return err
	}
	var oid, tid, crc int64
	var r revision
	n := 0
	_, err = pgx.ForEachRow(rows, []any{&oid, &tid, &r.deleted, &r.data, &crc}, func() error {
		if store.OID(oid) != cur {
			if err := flush(); err != nil {
				return err
			}
			cur = store.OID(oid)
		}
		r.tid = store.TID(tid)
		// Never drop anything on the strength of corrupt data.
		if err := checkRevision(cur, r.tid, r.deleted, r.data, crc); err != nil {
			return err
		}
		revs = append(revs, r)
		if n++; n%4096 == 0 {
			return ctx.Err()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	if !exists[opts.Root] {
		return fmt.Errorf("root %s not found; refusing to pack: %w", opts.Root, store.ErrNotFound)
	}
	p.live = map[store.OID]bool{}
	p.reach(opts.Root)
	p.blobs = map[store.Digest]bool{}
	for oid := range exists {
		if !p.live[oid] {
			p.doomed[oid] = true
			continue
		}
		for _, d := range p.blobRefs[oid] {
			p.blobs[d] = true
		}
	}
	rows, err = tx.Query(ctx, "SELECT tid FROM transaction WHERE tid <= $1", int64(p.cut))
	if err != nil {
		return err
	}
	_, err = pgx.ForEachRow(rows, []any{&tid}, func() error {
		if !keptSerials[store.TID(tid)] {
			p.deadTxns = append(p.deadTxns, tid)
		}
		return nil
	})
	return err
}

// noteRefs records what a revision refers to: its blobs as committed
// and, for a kept revision, its references.
func (p *packPlan) noteRefs(oid store.OID, r revision, refs store.RefsFunc, kept bool) error {
	if r.deleted {
		return nil
	}
	oids, blobs, err := refs(r.data)
	if err != nil {
		return fmt.Errorf("references of %s at %s: %w", oid, r.tid, err)
	}
	for _, d := range blobs {
		p.committed[d] = max(p.committed[d], r.tid)
	}
	if kept {
		p.refs[oid] = append(p.refs[oid], oids...)
		p.blobRefs[oid] = append(p.blobRefs[oid], blobs...)
	}
	return nil
}

// reach marks oid and everything it refers to as live.
func (p *packPlan) reach(oid store.OID) {
	stack := []store.OID{oid}
	for len(stack) > 0 {
		o := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if p.live[o] {
			continue
		}
		p.live[o] = true
		stack = append(stack, p.refs[o]...)
	}
}

// rescue takes back from doomed every object written by, or referred to
// by, a transaction committed after the mark, and everything they refer
// to. Called under the commit lock: nothing commits until the sweep ends.
func (p *packPlan) rescue(ctx context.Context, tx pgx.Tx, refs store.RefsFunc) error {
	var save func(oid store.OID)
	save = func(oid store.OID) {
		if !p.doomed[oid] {
			return
		}
		delete(p.doomed, oid)
		for _, d := range p.blobRefs[oid] {
			p.blobs[d] = true
		}
		for _, r := range p.refs[oid] {
			save(r)
		}
	}
	rows, err := tx.Query(ctx, "SELECT oids FROM transaction WHERE tid > $1", int64(p.marked))
	if err != nil {
		return err
	}
	var written []int64
	_, err = pgx.ForEachRow(rows, []any{&written}, func() error {
		for _, oid := range written {
			save(store.OID(oid))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read transactions since the mark: %w", err)
	}
	rows, err = tx.Query(ctx, `
SELECT s.oid, s.tid, s.deleted, s.data, s.crc
FROM transaction t CROSS JOIN LATERAL unnest(t.oids) AS w(oid)
JOIN object_state s ON s.oid = w.oid AND s.tid = t.tid
WHERE t.tid > $1`, int64(p.marked))
	if err != nil {
		return err
	}
	var oid, tid, crc int64
	var r revision
	_, err = pgx.ForEachRow(rows, []any{&oid, &tid, &r.deleted, &r.data, &crc}, func() error {
		r.tid = store.TID(tid)
		if err := checkRevision(store.OID(oid), r.tid, r.deleted, r.data, crc); err != nil {
			return err
		}
		if r.deleted {
			return nil
		}
		oids, blobs, err := refs(r.data)
		if err != nil {
			return fmt.Errorf("references of %s at %s: %w", store.OID(oid), r.tid, err)
		}
		for _, o := range oids {
			save(o)
		}
		for _, d := range blobs {
			p.blobs[d] = true
			p.committed[d] = max(p.committed[d], r.tid)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read revisions since the mark: %w", err)
	}
	return nil
}

// sweepObjects deletes the unreachable objects, every revision of them.
func (p *packPlan) sweepObjects(ctx context.Context, tx pgx.Tx, res *store.PackResult) error {
	if len(p.doomed) == 0 {
		return nil
	}
	oids := make([]int64, 0, len(p.doomed))
	for oid := range p.doomed {
		oids = append(oids, int64(oid))
	}
	if _, err := tx.Exec(ctx, "DELETE FROM object_state WHERE oid = ANY($1)", oids); err != nil {
		return fmt.Errorf("delete unreachable objects: %w", err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM current_object WHERE oid = ANY($1)", oids); err != nil {
		return fmt.Errorf("delete unreachable objects: %w", err)
	}
	res.Objects += len(oids)
	return nil
}

// sweepBlobs ends the pins of blobs a committed revision newer than the
// pin refers to, then deletes the blobs no kept revision of a live
// object refers to, unless pinned.
func (db *DB) sweepBlobs(ctx context.Context, tx pgx.Tx, p *packPlan, res *store.PackResult) error {
	if len(p.committed) > 0 {
		digests, tids := make([][]byte, 0, len(p.committed)), make([]int64, 0, len(p.committed))
		for d, tid := range p.committed {
			digests = append(digests, d[:])
			tids = append(tids, int64(tid))
		}
		_, err := tx.Exec(ctx, `
UPDATE blob SET pinned_tid = NULL, pinned_at = NULL
FROM unnest($1::bytea[], $2::bigint[]) AS c(digest, tid)
WHERE blob.digest = c.digest AND blob.pinned_tid < c.tid`, digests, tids)
		if err != nil {
			return fmt.Errorf("unpin committed blobs: %w", err)
		}
	}
	rows, err := tx.Query(ctx, "SELECT digest FROM blob")
	if err != nil {
		return err
	}
	var unreferenced [][]byte
	var digest []byte
	_, err = pgx.ForEachRow(rows, []any{&digest}, func() error {
		var d store.Digest
		if copy(d[:], digest) != len(d) || len(digest) != len(d) || !p.blobs[d] {
			unreferenced = append(unreferenced, digest)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	if len(unreferenced) == 0 {
		return nil
	}
	rows, err = tx.Query(ctx, `
DELETE FROM blob WHERE digest = ANY($1)
AND (pinned_tid IS NULL OR pinned_at < now() - make_interval(secs => $2))
RETURNING blob_id, size`, unreferenced, db.opts.BlobPinTime.Seconds())
	if err != nil {
		return fmt.Errorf("delete unreferenced blobs: %w", err)
	}
	var ids []int64
	var id, size int64
	_, err = pgx.ForEachRow(rows, []any{&id, &size}, func() error {
		ids = append(ids, id)
		res.Blobs++
		res.BlobBytes += size
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete unreferenced blobs: %w", err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM blob_chunk WHERE blob_id = ANY($1)", ids); err != nil {
		return fmt.Errorf("delete unreferenced blobs' chunks: %w", err)
	}
	return nil
}
