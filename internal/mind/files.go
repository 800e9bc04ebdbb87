package mind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"batos/internal/gguf"
	"batos/internal/image"
	"batos/internal/store"
)

// ErrNotGGUF is returned when a file offered as weights or an adapter is
// not a complete GGUF file of the right kind; nothing is stored then.
var ErrNotGGUF = errors.New("mind: not a usable GGUF file")

// Weights is the model file pLLM records: a GGUF base model kept in the
// image as a blob. On Ollama batos serves it as a model of its own
// (batos-base-<digest prefix>) to personas that name no model.
type Weights struct {
	Blob         image.BlobRef
	File         string // the file name it was imported from
	Name         string // general.name
	Architecture string
}

// Imported describes a file stored in the image as a blob.
type Imported struct {
	Blob         image.BlobRef
	File         string
	Name         string
	Architecture string
	Tensors      int    // -1 for a PEFT directory
	Format       string // FormatGGUF or FormatPEFT
}

// Progress is told how many bytes of total were copied so far.
type Progress func(done, total int64)

// ImportWeights checks that path is a complete GGUF base model file,
// streams it into the image as a blob and records it in pLLM. A file that is not
// one is refused before anything is stored.
func ImportWeights(ctx context.Context, db *image.DB, path string, progress Progress) (*Imported, error) {
	imp, err := importGGUF(ctx, db, path, false, nil, progress)
	if err != nil {
		return nil, err
	}
	err = db.Update(ctx, func(tx *image.Tx) error {
		// Logged as the user who asked (the image's), like every
		// change a command makes.
		tx.Note("mind: import base model " + imp.File)
		pllm, err := systemObject(tx, "pLLM")
		if err != nil {
			return err
		}
		for _, s := range []image.Slot{
			{Name: "model_blob", Value: imp.Blob},
			{Name: "model_file", Value: image.String(imp.File)},
			{Name: "model_name", Value: image.String(imp.Name)},
			{Name: "model_architecture", Value: image.String(imp.Architecture)},
		} {
			if err := pllm.Set(s.Name, s.Value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record base model: %w", err)
	}
	return imp, nil
}

// ImportAdapter stores an adapter in the image as a blob; attach it with
// Edit. A file must be a complete GGUF LoRA adapter, and if pLLM has
// weights, one that fits them; a directory must be a PEFT adapter
// (for vLLM).
func ImportAdapter(ctx context.Context, db *image.DB, path string, progress Progress) (*Imported, error) {
	return ImportAdapterFor(ctx, db, path, "", progress)
}

// ImportAdapterFor is ImportAdapter for a persona whose model is model: a
// persona that names a server's model of its own is not checked against
// pLLM's weights (the server reports a misfit on first use).
func ImportAdapterFor(ctx context.Context, db *image.DB, path, model string, progress Progress) (*Imported, error) {
	if st, err := os.Stat(path); err != nil {
		return nil, err
	} else if st.IsDir() {
		return importPEFT(ctx, db, path, progress)
	}
	if model != "" {
		return importGGUF(ctx, db, path, true, nil, progress)
	}
	base, err := LoadWeights(ctx, db)
	if err != nil {
		return nil, err
	}
	var fits func(*gguf.File) error
	if base != nil {
		baseFile, err := readBlobHeader(ctx, db.Store(), base.Blob)
		if err != nil {
			return nil, fmt.Errorf("read base model %s: %w", base.File, err)
		}
		// Checked before the copy: a refused adapter leaves no blob behind.
		fits = func(g *gguf.File) error {
			if err := gguf.Fits(baseFile, g); err != nil {
				return fmt.Errorf("%w: adapter %s does not fit the base model %s: %w", ErrNotGGUF, filepath.Base(path), base.File, err)
			}
			return nil
		}
	}
	return importGGUF(ctx, db, path, true, fits, progress)
}

// importGGUF validates the file (with fits too, if set) and copies it
// into the blob store.
func importGGUF(ctx context.Context, db *image.DB, path string, adapter bool, fits func(*gguf.File) error, progress Progress) (*Imported, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrNotGGUF, path)
	}
	g, err := gguf.Read(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotGGUF, path, err)
	}
	check, kind := gguf.CheckModel, "base model"
	if adapter {
		check, kind = gguf.CheckAdapter, "LoRA adapter"
	}
	if err := check(g); err != nil {
		return nil, fmt.Errorf("%w: %s is not a %s: %w", ErrNotGGUF, path, kind, err)
	}
	if fits != nil {
		if err := fits(g); err != nil {
			return nil, err
		}
	}
	r := io.Reader(io.NewSectionReader(f, 0, st.Size()))
	if progress != nil {
		r = &countingReader{r: r, total: st.Size(), progress: progress}
	}
	b, err := db.Store().PutBlob(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	// The file was checked before the copy; refuse one that changed under us.
	if st2, err := f.Stat(); err != nil || b.Size != st.Size() || !st2.ModTime().Equal(st.ModTime()) || st2.Size() != st.Size() {
		return nil, fmt.Errorf("%s changed while it was being imported: try again", path)
	}
	name, _ := g.String("general.name")
	return &Imported{
		Blob: image.BlobRef{Digest: b.Digest, Size: b.Size}, File: filepath.Base(path),
		Name: name, Architecture: g.Architecture(), Tensors: len(g.Tensors), Format: FormatGGUF,
	}, nil
}

type countingReader struct {
	r        io.Reader
	done     int64
	total    int64
	progress Progress
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.done += int64(n)
	c.progress(c.done, c.total)
	return n, err
}

// LoadWeights returns the weights pLLM records, or nil if none were
// imported.
func LoadWeights(ctx context.Context, db *image.DB) (*Weights, error) {
	var base *Weights
	err := db.View(ctx, func(tx *image.Tx) error {
		var err error
		base, err = weightsIn(tx)
		return err
	})
	return base, err
}

func weightsIn(tx *image.Tx) (*Weights, error) {
	pllm, err := systemObject(tx, "pLLM")
	if err != nil {
		return nil, err
	}
	v, ok := pllm.Get("model_blob")
	b, isBlob := v.(image.BlobRef)
	if !ok || !isBlob {
		return nil, nil
	}
	str := func(slot string) string {
		v, _ := pllm.Get(slot)
		s, _ := v.(image.String)
		return string(s)
	}
	return &Weights{Blob: b, File: str("model_file"), Name: str("model_name"), Architecture: str("model_architecture")}, nil
}

// maxHeader bounds how much of a blob readBlobHeader buffers: GGUF
// metadata (vocabularies included) is far smaller than this.
const maxHeader = 256 << 20

// readBlobHeader parses a GGUF blob's header from the stream, buffering
// only the bytes the parser asks for.
func readBlobHeader(ctx context.Context, s store.Engine, b image.BlobRef) (*gguf.File, error) {
	rc, err := s.OpenBlob(ctx, b.Digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return gguf.Read(&prefixReaderAt{r: rc}, b.Size)
}

// prefixReaderAt serves ReadAt from the start of a stream, reading
// forward as far as asked (up to maxHeader) and keeping what it read.
type prefixReaderAt struct {
	r   io.Reader
	buf []byte
}

func (p *prefixReaderAt) ReadAt(dst []byte, off int64) (int, error) {
	end := off + int64(len(dst))
	if end > maxHeader {
		return 0, fmt.Errorf("gguf header beyond %d MiB", maxHeader>>20)
	}
	if need := end - int64(len(p.buf)); need > 0 {
		chunk := make([]byte, need)
		n, err := io.ReadFull(p.r, chunk)
		p.buf = append(p.buf, chunk[:n]...)
		if err != nil && int64(len(p.buf)) < end {
			if off >= int64(len(p.buf)) {
				return 0, io.EOF
			}
			return copy(dst, p.buf[off:]), io.EOF
		}
	}
	return copy(dst, p.buf[off:end]), nil
}
