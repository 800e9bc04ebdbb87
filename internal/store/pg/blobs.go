package pg

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/jackc/pgx/v5"

	"batos/internal/store"
)

// blobChunkSize is the size of each blob_chunk row but the last: small
// enough to stream, large enough that rows cost little.
const blobChunkSize = 1 << 20

// PutBlob implements store.Engine. The content streams into chunk rows of
// one PostgreSQL transaction; the blob row, written last, makes it
// visible, so a reader never sees part of a blob. The blob is pinned (see
// Options.BlobPinTime) until a committed revision refers to it.
func (db *DB) PutBlob(ctx context.Context, r io.Reader) (store.Blob, error) {
	if err := ctx.Err(); err != nil {
		return store.Blob{}, fmt.Errorf("put blob: %w", err)
	}
	done, err := db.enter()
	if err != nil {
		return store.Blob{}, err
	}
	defer done()
	var blob store.Blob
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var id, pinned int64
		// The newest TID now: only a revision newer than it proves the
		// transaction referring to this blob committed.
		err := tx.QueryRow(ctx, "SELECT nextval('blob_id_seq'), value FROM store_meta WHERE name = 'last_tid'").Scan(&id, &pinned)
		if err != nil {
			return err
		}
		h := sha256.New()
		buf := make([]byte, blobChunkSize)
		chunks := int32(0)
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			n, rerr := io.ReadFull(r, buf)
			if n > 0 {
				h.Write(buf[:n])
				if _, err := tx.Exec(ctx, "INSERT INTO blob_chunk (blob_id, chunk_num, data) VALUES ($1, $2, $3)", id, chunks, buf[:n]); err != nil {
					return err
				}
				chunks++
				blob.Size += int64(n)
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				return fmt.Errorf("read content: %w", rerr)
			}
		}
		h.Sum(blob.Digest[:0])
		// Same content stored before: keep that copy, renew its pin, and
		// drop ours (it was never visible).
		var kept int64
		err = tx.QueryRow(ctx, `
INSERT INTO blob (digest, blob_id, size, chunks, pinned_tid, pinned_at)
VALUES ($1, $2, $3, $4, $5, now())
ON CONFLICT (digest) DO UPDATE SET pinned_tid = EXCLUDED.pinned_tid, pinned_at = EXCLUDED.pinned_at
RETURNING blob_id`, blob.Digest[:], id, blob.Size, chunks, pinned).Scan(&kept)
		if err != nil {
			return err
		}
		if kept != id {
			_, err = tx.Exec(ctx, "DELETE FROM blob_chunk WHERE blob_id = $1", id)
		}
		return err
	})
	if err != nil {
		return store.Blob{}, fmt.Errorf("put blob: %w", err)
	}
	return blob, nil
}

// blobRow is a row of the blob table.
type blobRow struct {
	id     int64
	size   int64
	chunks int32
}

func readBlobRow(ctx context.Context, q querier, d store.Digest) (blobRow, error) {
	var b blobRow
	err := q.QueryRow(ctx, "SELECT blob_id, size, chunks FROM blob WHERE digest = $1", d[:]).Scan(&b.id, &b.size, &b.chunks)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, store.ErrBlobNotFound
	}
	return b, err
}

// StatBlob implements store.Engine.
func (db *DB) StatBlob(ctx context.Context, d store.Digest) (store.Blob, error) {
	done, err := db.enter()
	if err != nil {
		return store.Blob{}, err
	}
	defer done()
	b, err := readBlobRow(ctx, db.pool, d)
	if err != nil {
		return store.Blob{}, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return store.Blob{Digest: d, Size: b.size}, nil
}

// OpenBlob implements store.Engine. The reader fetches one chunk at a
// time and, instead of io.EOF, returns a *store.CorruptBlobError if the
// content does not match its digest or its recorded size.
func (db *DB) OpenBlob(ctx context.Context, d store.Digest) (io.ReadCloser, error) {
	done, err := db.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	b, err := readBlobRow(ctx, db.pool, d)
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	return &blobReader{db: db, ctx: ctx, digest: d, row: b, h: sha256.New()}, nil
}

// blobReader streams a blob's chunks, checking the content at the end.
type blobReader struct {
	db     *DB
	ctx    context.Context
	digest store.Digest
	row    blobRow
	h      hash.Hash
	next   int32  // the next chunk to fetch
	buf    []byte // what is left of the current chunk
	read   int64
	err    error // sticky: the end, or what went wrong
}

func (r *blobReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 && r.err == nil {
		if r.next == r.row.chunks {
			r.err = r.finish()
			break
		}
		r.err = r.fetch()
	}
	if len(r.buf) == 0 {
		return 0, r.err
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *blobReader) fetch() error {
	done, err := r.db.enter()
	if err != nil {
		return err
	}
	defer done()
	var data []byte
	err = r.db.pool.QueryRow(r.ctx, "SELECT data FROM blob_chunk WHERE blob_id = $1 AND chunk_num = $2", r.row.id, r.next).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, serr := readBlobRow(r.ctx, r.db.pool, r.digest); errors.Is(serr, store.ErrBlobNotFound) {
			return fmt.Errorf("read blob %s: removed (by a pack) while it was read: %w", r.digest, store.ErrBlobNotFound)
		}
		return &store.CorruptBlobError{Digest: r.digest, Detail: fmt.Sprintf("chunk %d of %d is missing", r.next, r.row.chunks)}
	}
	if err != nil {
		return fmt.Errorf("read blob %s: %w", r.digest, err)
	}
	r.h.Write(data)
	r.read += int64(len(data))
	r.buf = data
	r.next++
	return nil
}

// finish checks what was read against the blob's size and digest.
func (r *blobReader) finish() error {
	if r.read != r.row.size {
		return &store.CorruptBlobError{Digest: r.digest, Detail: fmt.Sprintf("its chunks hold %d bytes, the blob %d", r.read, r.row.size)}
	}
	var got store.Digest
	r.h.Sum(got[:0])
	if got != r.digest {
		return &store.CorruptBlobError{Digest: r.digest, Detail: "content hashes to " + got.String()}
	}
	return io.EOF
}

func (r *blobReader) Close() error {
	if r.err == nil {
		r.err = errors.New("read blob: reader closed")
	}
	r.buf = nil
	return nil
}

// hashBlob reads a whole blob on q and reports how its content differs
// from its row, or "" if it does not.
func hashBlob(ctx context.Context, q querier, d store.Digest, b blobRow) (string, error) {
	rows, err := q.Query(ctx, "SELECT chunk_num, data FROM blob_chunk WHERE blob_id = $1 ORDER BY chunk_num", b.id)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	var size int64
	want := int32(0)
	problem := ""
	var num int32
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&num, &data}, func() error {
		if num != want && problem == "" {
			problem = fmt.Sprintf("chunk %d of %d is missing", want, b.chunks)
		}
		want = num + 1
		h.Write(data)
		size += int64(len(data))
		return nil
	})
	if err != nil {
		return "", err
	}
	switch {
	case problem != "":
		return problem, nil
	case want != b.chunks:
		return fmt.Sprintf("it has %d chunks, its row says %d", want, b.chunks), nil
	case size != b.size:
		return fmt.Sprintf("its chunks hold %d bytes, the blob %d", size, b.size), nil
	}
	var got store.Digest
	h.Sum(got[:0])
	if got != d {
		return "content hashes to " + got.String(), nil
	}
	return "", nil
}
