package bolt

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	bbolt "go.etcd.io/bbolt"

	"batos/internal/store"
)

// objectState is what verification needs to know of each object.
type objectState struct {
	current store.TID // serial of its newest revision
	deleted bool      // its current revision records a deletion
}

// Verify implements store.Engine. It reads everything: the file's page
// structure, every record and log entry against its checksum, every
// reference (with refs) and every blob against its digest. It returns an
// error only when it could not finish; what is wrong is in the report.
func (db *DB) Verify(ctx context.Context, refs store.RefsFunc) (*store.Report, error) {
	if err := db.sync(ctx); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	rep := &store.Report{}
	blobsNeeded := map[store.Digest][]store.Problem{}
	err := db.view(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			rep.Problems = append(rep.Problems, store.Problem{Kind: store.CorruptFile, Detail: err.Error()})
		}
		objects, err := verifyRecords(ctx, tx, rep)
		if err != nil {
			return err
		}
		if refs != nil {
			if err := verifyRefs(ctx, tx, rep, objects, refs, blobsNeeded); err != nil {
				return err
			}
		}
		return verifyTxns(ctx, tx, rep)
	})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if err := db.verifyBlobs(ctx, rep, blobsNeeded); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return rep, nil
}

func verifyRecords(ctx context.Context, tx *bbolt.Tx, rep *store.Report) (map[store.OID]objectState, error) {
	objects := map[store.OID]objectState{}
	c := tx.Bucket(bucketRevs).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 16 {
			rep.Problems = append(rep.Problems, store.Problem{Kind: store.CorruptRecord, Detail: fmt.Sprintf("revision key of %d bytes", len(k))})
			continue
		}
		oid, tid := splitRevKey(k)
		rep.Revisions++
		if rep.Revisions%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		flags, _, err := decodeRecord(k, v)
		if err != nil {
			rep.Problems = append(rep.Problems, store.Problem{Kind: store.CorruptRecord, OID: oid, TID: tid, Detail: detailOf(err)})
			continue
		}
		// Revisions come oldest first, so the last one seen is current.
		objects[oid] = objectState{current: tid, deleted: flags&flagDeleted != 0}
	}
	rep.Objects = len(objects)
	return objects, nil
}

func verifyRefs(ctx context.Context, tx *bbolt.Tx, rep *store.Report, objects map[store.OID]objectState, refs store.RefsFunc, blobsNeeded map[store.Digest][]store.Problem) error {
	c := tx.Bucket(bucketRevs).Cursor()
	n := 0
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 16 {
			continue
		}
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		oid, tid := splitRevKey(k)
		flags, data, err := decodeRecord(k, v)
		if err != nil || flags&flagDeleted != 0 {
			continue // already reported, or nothing to follow
		}
		oids, blobs, err := refs(data)
		if err != nil {
			rep.Problems = append(rep.Problems, store.Problem{Kind: store.UndecodableRecord, OID: oid, TID: tid, Detail: err.Error()})
			continue
		}
		current := objects[oid].current == tid
		for _, target := range oids {
			st, ok := objects[target]
			if !ok || (current && st.deleted) {
				rep.Problems = append(rep.Problems, store.Problem{Kind: store.DanglingReference, OID: oid, TID: tid, Target: target})
			}
		}
		for _, d := range blobs {
			blobsNeeded[d] = append(blobsNeeded[d], store.Problem{Kind: store.MissingBlob, OID: oid, TID: tid, Digest: d})
		}
	}
	return nil
}

func verifyTxns(ctx context.Context, tx *bbolt.Tx, rep *store.Report) error {
	return tx.Bucket(bucketTxns).ForEach(func(k, v []byte) error {
		rep.Transactions++
		if len(k) != 8 {
			rep.Problems = append(rep.Problems, store.Problem{Kind: store.CorruptTransaction, Detail: fmt.Sprintf("log key of %d bytes", len(k))})
			return nil
		}
		if _, err := decodeTxn(k, v); err != nil {
			rep.Problems = append(rep.Problems, store.Problem{Kind: store.CorruptTransaction, TID: store.TID(beUint64(k)), Detail: detailOf(err)})
		}
		if rep.Transactions%4096 == 0 {
			return ctx.Err()
		}
		return nil
	})
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
