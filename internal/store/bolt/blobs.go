package bolt

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"batos/internal/store"
)

// blobDir keeps blobs as files named by their digest, under a two-hex-digit
// fan-out directory: DIR/ab/abcd.... New blobs are written under DIR/tmp,
// fsynced, renamed into place and the directories fsynced, so a blob is
// durable and complete before any transaction can refer to it.
type blobDir struct {
	root string

	// mu is held across pinning and installing a blob, and across a
	// pack's check and removal of one, so the two never interleave.
	mu sync.Mutex
	// pinned holds blobs this process put whose transaction may not have
	// committed yet, with the newest TID when each was pinned: only a
	// revision newer than that proves the commit happened.
	pinned map[store.Digest]store.TID
}

func openBlobDir(root string, readOnly bool) (*blobDir, error) {
	if readOnly {
		return &blobDir{root: root, pinned: make(map[store.Digest]store.TID)}, nil
	}
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o755); err != nil {
		return nil, fmt.Errorf("blob directory: %w", noSpace(err, root, "blob directory"))
	}
	return &blobDir{root: root, pinned: make(map[store.Digest]store.TID)}, nil
}

func (b *blobDir) path(d store.Digest) string {
	h := d.Hex()
	return filepath.Join(b.root, h[:2], h)
}

// PutBlob implements store.Engine.
func (db *DB) PutBlob(ctx context.Context, r io.Reader) (store.Blob, error) {
	if db.opts.ReadOnly {
		return store.Blob{}, fmt.Errorf("put blob: %w", store.ErrReadOnly)
	}
	return db.blobs.put(ctx, r, db.LastTID())
}

func (b *blobDir) put(ctx context.Context, r io.Reader, now store.TID) (store.Blob, error) {
	tmp, err := os.CreateTemp(filepath.Join(b.root, "tmp"), "put-*")
	if err != nil {
		return store.Blob{}, fmt.Errorf("put blob: %w", noSpace(err, b.root, "blob"))
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	blob, err := copyHashing(ctx, tmp, r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return store.Blob{}, fmt.Errorf("put blob: %w", noSpace(err, b.root, "blob"))
	}
	// Pin before the file becomes visible, so a concurrent pack never
	// deletes a blob whose transaction has not committed yet.
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pinned[blob.Digest] = now
	if err := b.install(tmp.Name(), blob.Digest); err != nil {
		return store.Blob{}, fmt.Errorf("put blob %s: %w", blob.Digest, noSpace(err, b.root, "blob"))
	}
	return blob, nil
}

func copyHashing(ctx context.Context, w io.Writer, r io.Reader) (store.Blob, error) {
	h := sha256.New()
	buf := make([]byte, 256<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return store.Blob{}, err
		}
		m, rerr := r.Read(buf)
		if m > 0 {
			h.Write(buf[:m])
			if _, err := w.Write(buf[:m]); err != nil {
				return store.Blob{}, err
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return store.Blob{}, rerr
		}
	}
	var d store.Digest
	h.Sum(d[:0])
	return store.Blob{Digest: d, Size: n}, nil
}

// install renames a synced temporary file into place and syncs the
// directories whose entries changed. An existing blob with the same digest
// is kept; content addressing makes the two identical.
func (b *blobDir) install(tmp string, d store.Digest) error {
	final := b.path(d)
	dir := filepath.Dir(final)
	created := false
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		created = true
	}
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if created {
		return syncDir(b.root)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// OpenBlob implements store.Engine.
func (db *DB) OpenBlob(ctx context.Context, d store.Digest) (io.ReadCloser, error) {
	f, err := os.Open(db.blobs.path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open blob %s: %w", d, store.ErrBlobNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	return &verifyingReader{f: f, want: d, h: sha256.New()}, nil
}

// StatBlob implements store.Engine.
func (db *DB) StatBlob(ctx context.Context, d store.Digest) (store.Blob, error) {
	fi, err := os.Stat(db.blobs.path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return store.Blob{}, fmt.Errorf("stat blob %s: %w", d, store.ErrBlobNotFound)
	}
	if err != nil {
		return store.Blob{}, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return store.Blob{Digest: d, Size: fi.Size()}, nil
}

// verifyingReader hashes what it reads and, instead of io.EOF, returns a
// *store.CorruptBlobError if the content does not match its digest.
type verifyingReader struct {
	f    *os.File
	want store.Digest
	h    hash.Hash
}

func (r *verifyingReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.h.Write(p[:n])
	if err == io.EOF {
		var got store.Digest
		r.h.Sum(got[:0])
		if got != r.want {
			return n, &store.CorruptBlobError{Digest: r.want, Detail: "content hashes to " + got.String()}
		}
	}
	return n, err
}

func (r *verifyingReader) Close() error { return r.f.Close() }

// each calls fn for every stored blob file, skipping the tmp directory.
// Files whose name is not a digest are reported as corrupt blobs.
func (b *blobDir) each(ctx context.Context, fn func(d store.Digest, path string, fi fs.FileInfo) error) error {
	fans, err := os.ReadDir(b.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, fan := range fans {
		if !fan.IsDir() || fan.Name() == "tmp" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, err := os.ReadDir(filepath.Join(b.root, fan.Name()))
		if err != nil {
			return err
		}
		for _, e := range entries {
			d, err := store.ParseDigest(e.Name())
			if err != nil {
				continue // not ours
			}
			fi, err := e.Info()
			if err != nil {
				return err
			}
			if err := fn(d, filepath.Join(b.root, fan.Name(), e.Name()), fi); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *blobDir) usage(ctx context.Context) (n int, bytes int64, err error) {
	err = b.each(ctx, func(_ store.Digest, _ string, fi fs.FileInfo) error {
		n++
		bytes += fi.Size()
		return nil
	})
	return n, bytes, err
}

// hashFile computes a stored blob's digest.
func hashFile(path string) (store.Digest, error) {
	var d store.Digest
	f, err := os.Open(path)
	if err != nil {
		return d, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return d, err
	}
	h.Sum(d[:0])
	return d, nil
}

func (b *blobDir) hasPins() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pinned) > 0
}
