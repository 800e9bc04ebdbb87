package bolt

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	bbolt "go.etcd.io/bbolt"

	"batos/internal/store"
)

// packChunk bounds how many keys one sweep transaction deletes, so commits
// waiting behind it are delayed by milliseconds, not by the whole pack.
const packChunk = 8192

// packPlan is what the mark phase decided.
type packPlan struct {
	marked store.TID                 // newest transaction the mark saw
	cut    store.TID                 // revisions superseded at or before cut go
	refs   map[store.OID][]store.OID // references of each object's kept revisions
	live   map[store.OID]bool
	blobs  map[store.Digest]bool // referenced by kept revisions of live objects
	// blobRefs: the blobs each object's kept revisions refer to.
	blobRefs map[store.OID][]store.Digest
	// committed holds, for every blob some revision refers to, the newest
	// such revision: proof that a commit referring to it happened. Only
	// gathered while some blob is pinned.
	committed  map[store.Digest]store.TID
	superseded [][]byte    // revision keys to drop
	doomed     []store.OID // unreachable objects
	deadTxns   [][]byte    // log entries left with no revision
}

// Pack implements store.Engine. Marking runs in a read-only transaction;
// sweeping runs in small write transactions interleaved with commits. Before
// each sweep step, objects referenced by transactions committed since the
// mark are rescued, so a commit racing with the pack never loses an object.
func (db *DB) Pack(ctx context.Context, opts store.PackOptions) (store.PackResult, error) {
	if opts.Refs == nil || opts.Root == 0 {
		return store.PackResult{}, fmt.Errorf("%w: pack needs a root and a reference finder", store.ErrInvalid)
	}
	if db.opts.ReadOnly {
		return store.PackResult{}, fmt.Errorf("pack: %w", store.ErrReadOnly)
	}
	db.packMu.Lock()
	defer db.packMu.Unlock()
	plan := &packPlan{cut: store.TIDAt(opts.Before)}
	if db.blobs.hasPins() {
		plan.committed = make(map[store.Digest]store.TID)
	}
	if err := db.sync(ctx); err != nil {
		return store.PackResult{}, fmt.Errorf("pack: %w", err)
	}
	// A cut in the future would refuse undo of transactions not yet made.
	plan.cut = min(plan.cut, db.LastTID())
	if err := db.view(func(tx *bbolt.Tx) error { return plan.mark(ctx, tx, opts) }); err != nil {
		return store.PackResult{}, fmt.Errorf("pack: %w", err)
	}
	if opts.BeforeSweep != nil {
		if err := opts.BeforeSweep(ctx, plan.marked); err != nil {
			return store.PackResult{}, fmt.Errorf("pack: %w", err)
		}
	}
	res, err := db.sweep(ctx, plan, opts.Refs)
	if err != nil {
		return res, fmt.Errorf("pack: %w", err)
	}
	return res, nil
}

func (p *packPlan) mark(ctx context.Context, tx *bbolt.Tx, opts store.PackOptions) error {
	if k, _ := tx.Bucket(bucketTxns).Cursor().Last(); k != nil {
		p.marked = store.TID(beUint64(k))
	}
	p.refs = make(map[store.OID][]store.OID)
	p.blobRefs = make(map[store.OID][]store.Digest)
	keptSerials := make(map[store.TID]bool)
	exists := make(map[store.OID]bool)
	err := eachObject(ctx, tx.Bucket(bucketRevs), func(oid store.OID, keys, vals [][]byte) error {
		first := p.firstKept(keys)
		p.superseded = append(p.superseded, keys[:first]...)
		if err := p.noteCommitted(keys[:first], vals[:first], opts.Refs); err != nil {
			return err
		}
		keys, vals = keys[first:], vals[first:]
		if len(keys) == 1 && p.serial(keys[0]) <= p.cut {
			// Check the flags' checksum first: a damaged flags byte must not
			// get the object dropped as deleted.
			flags, _, err := decodeRecord(keys[0], vals[0])
			if err != nil {
				return err
			}
			if flags&flagDeleted != 0 {
				p.superseded = append(p.superseded, keys[0]) // deleted and never revived
				return nil
			}
		}
		exists[oid] = true
		for i, k := range keys {
			keptSerials[p.serial(k)] = true
			flags, data, err := decodeRecord(k, vals[i])
			if err != nil {
				return err // never drop anything on the strength of corrupt data
			}
			if flags&flagDeleted != 0 {
				continue
			}
			oids, blobs, err := opts.Refs(data)
			if err != nil {
				return fmt.Errorf("references of %s at %s: %w", oid, p.serial(k), err)
			}
			p.refs[oid] = append(p.refs[oid], oids...)
			p.blobRefs[oid] = append(p.blobRefs[oid], blobs...)
			p.noteBlobs(blobs, p.serial(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !exists[opts.Root] {
		return fmt.Errorf("root %s not found; refusing to pack: %w", opts.Root, store.ErrNotFound)
	}
	p.live = make(map[store.OID]bool)
	p.reach(opts.Root)
	p.blobs = make(map[store.Digest]bool)
	for oid := range exists {
		if !p.live[oid] {
			p.doomed = append(p.doomed, oid)
			continue
		}
		for _, d := range p.blobRefs[oid] {
			p.blobs[d] = true
		}
	}
	return tx.Bucket(bucketTxns).ForEach(func(k, _ []byte) error {
		if tid := store.TID(beUint64(k)); tid <= p.cut && !keptSerials[tid] {
			p.deadTxns = append(p.deadTxns, k)
		}
		return nil
	})
}

// noteCommitted records the blobs superseded revisions refer to, when
// pinned blobs need proof that their transaction committed.
func (p *packPlan) noteCommitted(keys, vals [][]byte, refs store.RefsFunc) error {
	if p.committed == nil {
		return nil
	}
	for i, k := range keys {
		flags, data, err := decodeRecord(k, vals[i])
		if err != nil {
			return err
		}
		if flags&flagDeleted != 0 {
			continue
		}
		_, blobs, err := refs(data)
		if err != nil {
			return fmt.Errorf("references of %s at %s: %w", store.OID(beUint64(k)), p.serial(k), err)
		}
		p.noteBlobs(blobs, p.serial(k))
	}
	return nil
}

// noteBlobs records that a revision with the given serial refers to blobs.
func (p *packPlan) noteBlobs(blobs []store.Digest, serial store.TID) {
	if p.committed == nil {
		return
	}
	for _, d := range blobs {
		p.committed[d] = max(p.committed[d], serial)
	}
}

// firstKept is the index of the oldest revision to keep: the one current
// at the cut, or the first written after it.
func (p *packPlan) firstKept(keys [][]byte) int {
	i := 0
	for i+1 < len(keys) && p.serial(keys[i+1]) <= p.cut {
		i++
	}
	return i
}

func (p *packPlan) serial(key []byte) store.TID { return store.TID(beUint64(key[8:])) }

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

// eachObject calls fn with every object's revision keys and values,
// oldest first. Keys and values are copied: fn may keep them.
func eachObject(ctx context.Context, b *bbolt.Bucket, fn func(oid store.OID, keys, vals [][]byte) error) error {
	c := b.Cursor()
	var keys, vals [][]byte
	var cur store.OID
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		err := fn(cur, keys, vals)
		keys, vals = nil, nil
		return err
	}
	n := 0
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 16 {
			return &store.CorruptError{Detail: fmt.Sprintf("revision key of %d bytes", len(k))}
		}
		if oid := store.OID(beUint64(k)); oid != cur {
			if err := flush(); err != nil {
				return err
			}
			cur = oid
		}
		if len(v) == 0 {
			oid, tid := splitRevKey(k)
			return &store.CorruptError{OID: oid, TID: tid, Detail: "empty record"}
		}
		keys = append(keys, append([]byte(nil), k...))
		vals = append(vals, append([]byte(nil), v...))
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func (db *DB) sweep(ctx context.Context, p *packPlan, refs store.RefsFunc) (store.PackResult, error) {
	var res store.PackResult
	scanned := p.marked
	doomed := make(map[store.OID]bool, len(p.doomed))
	for _, oid := range p.doomed {
		doomed[oid] = true
	}
	del := func(keys [][]byte, bucket []byte, count *int) error {
		for len(keys) > 0 {
			n := min(packChunk, len(keys))
			err := db.update(func(tx *bbolt.Tx) error {
				b := tx.Bucket(bucket)
				for _, k := range keys[:n] {
					if err := b.Delete(k); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			*count += n
			keys = keys[n:]
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return nil
	}
	// Record the cut first: from now on undo refuses transactions whose
	// earlier revisions are about to go.
	if err := db.update(p.recordCut); err != nil {
		return res, err
	}
	if err := del(p.superseded, bucketRevs, &res.Revisions); err != nil {
		return res, err
	}
	if err := del(p.deadTxns, bucketTxns, &res.Transactions); err != nil {
		return res, err
	}
	// Unreachable objects and blobs go in one step run by the committer,
	// so no commit comes in between, after rescuing whatever commits since
	// the mark refer to. Blob files go only once the objects' deletion has
	// committed.
	_, err := db.submit(ctx, &commitRequest{maintenance: true, after: func() error {
		return db.sweepBlobs(ctx, p, &res)
	}, fn: func(tx *bbolt.Tx) error {
		if err := p.rescue(tx, &scanned, doomed, refs); err != nil {
			return err
		}
		c := tx.Bucket(bucketRevs).Cursor()
		for oid := range doomed {
			for k, _ := c.Seek(revKey(oid, 0)); k != nil && store.OID(beUint64(k)) == oid; k, _ = c.Seek(revKey(oid, 0)) {
				if err := c.Delete(); err != nil {
					return err
				}
			}
			res.Objects++
		}
		return nil
	}})
	return res, err
}

// rescue takes back from doomed every object written by, or referred to by,
// a transaction committed after the mark, and everything they refer to.
func (p *packPlan) rescue(tx *bbolt.Tx, scanned *store.TID, doomed map[store.OID]bool, refs store.RefsFunc) error {
	c := tx.Bucket(bucketTxns).Cursor()
	revs := tx.Bucket(bucketRevs)
	var save func(oid store.OID)
	save = func(oid store.OID) {
		if !doomed[oid] {
			return
		}
		delete(doomed, oid)
		for _, d := range p.blobRefs[oid] {
			p.blobs[d] = true
		}
		for _, r := range p.refs[oid] {
			save(r)
		}
	}
	for k, v := c.Seek(tidKey(*scanned + 1)); k != nil; k, v = c.Next() {
		info, err := decodeTxn(k, v)
		if err != nil {
			return err
		}
		for _, oid := range info.OIDs {
			save(oid)
			key := revKey(oid, info.TID)
			v := revs.Get(key)
			if v == nil {
				continue // packed away since: superseded within the window
			}
			flags, data, err := decodeRecord(key, v)
			if err != nil {
				return err // never drop anything on the strength of corrupt data
			}
			if flags&flagDeleted != 0 {
				continue
			}
			oids, blobs, err := refs(data)
			if err != nil {
				return fmt.Errorf("references of %s at %s: %w", oid, info.TID, err)
			}
			for _, r := range oids {
				save(r)
			}
			for _, d := range blobs {
				p.blobs[d] = true
			}
			p.noteBlobs(blobs, info.TID)
		}
		*scanned = info.TID
	}
	return nil
}

func (p *packPlan) recordCut(tx *bbolt.Tx) error { return raisePackMark(tx, p.cut) }

// raisePackMark records that history up to cut was packed, unless a pack
// went further already.
func raisePackMark(tx *bbolt.Tx, cut store.TID) error {
	meta := tx.Bucket(bucketMeta)
	if old := meta.Get(keyPackedBefore); len(old) == 8 && store.TID(beUint64(old)) >= cut {
		return nil
	}
	return meta.Put(keyPackedBefore, tidKey(cut))
}

// sweepBlobs removes blobs no kept revision refers to. A blob this process
// wrote is pinned until some revision is seen referring to it: until then
// its transaction may still be about to commit.
func (db *DB) sweepBlobs(ctx context.Context, p *packPlan, res *store.PackResult) error {
	b := db.blobs
	return b.each(ctx, func(d store.Digest, path string, fi fs.FileInfo) error {
		b.mu.Lock()
		defer b.mu.Unlock()
		if pinnedAt, ok := b.pinned[d]; ok && p.committed[d] > pinnedAt {
			delete(b.pinned, d)
		}
		if _, pinned := b.pinned[d]; p.blobs[d] || pinned {
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		res.Blobs++
		res.BlobBytes += fi.Size()
		return nil
	})
}

// PackedBefore implements store.PackMarker.
func (db *DB) PackedBefore(ctx context.Context) (store.TID, error) {
	var cut store.TID
	err := db.viewFile(func(tx *bbolt.Tx) error {
		if packed := tx.Bucket(bucketMeta).Get(keyPackedBefore); len(packed) == 8 {
			cut = store.TID(beUint64(packed))
		}
		return nil
	})
	return cut, err
}
