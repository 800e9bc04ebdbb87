package mind

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"batos/internal/image"
	"batos/internal/llm"
)

// Adapter formats: GGUF files serve Ollama and llama-server; PEFT
// directories (adapter_config.json + weights) serve vLLM. A PEFT adapter
// is kept in the image as one blob: a tar of the directory's files.
const (
	FormatGGUF = "gguf"
	FormatPEFT = "peft"
)

// maxPEFTFiles and maxPEFTSize bound what a PEFT directory may hold.
const (
	maxPEFTFiles = 64
	maxPEFTSize  = 16 << 30
)

// ErrNotPEFT is returned for a directory that is not a PEFT adapter.
var ErrNotPEFT = errors.New("mind: not a PEFT adapter directory")

// importPEFT checks dir is a PEFT adapter and stores it as a tar blob.
func importPEFT(ctx context.Context, db *image.DB, dir string, progress Progress) (*Imported, error) {
	files, total, err := peftFiles(dir)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writePEFTTar(pw, dir, files))
	}()
	r := io.Reader(pr)
	if progress != nil {
		r = &countingReader{r: pr, total: total, progress: progress}
	}
	b, err := db.Store().PutBlob(ctx, r)
	pr.CloseWithError(errors.New("import ended"))
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	return &Imported{Blob: image.BlobRef{Digest: b.Digest, Size: b.Size}, File: filepath.Base(filepath.Clean(dir)), Format: FormatPEFT, Tensors: -1}, nil
}

// peftFiles lists dir's regular files (sorted) after checking it holds an
// adapter_config.json that is a JSON object and adapter weights.
func peftFiles(dir string) ([]string, int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	var files []string
	var total int64
	has := map[string]bool{}
	for _, e := range entries {
		// Links are followed: a Hugging Face cache snapshot is a directory
		// of links to its blobs. Subdirectories and hidden files
		// (.gitattributes) are not part of an adapter, and untarFlat
		// refuses hidden names.
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		info, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		files, total, has[e.Name()] = append(files, e.Name()), total+info.Size(), true
	}
	if len(files) > maxPEFTFiles || total > maxPEFTSize {
		return nil, 0, fmt.Errorf("%w: %s holds %d files, %d bytes (at most %d files, %d GiB)", ErrNotPEFT, dir, len(files), total, maxPEFTFiles, maxPEFTSize>>30)
	}
	if !has["adapter_config.json"] {
		return nil, 0, fmt.Errorf("%w: %s has no adapter_config.json", ErrNotPEFT, dir)
	}
	if !has["adapter_model.safetensors"] && !has["adapter_model.bin"] {
		return nil, 0, fmt.Errorf("%w: %s has no adapter_model.safetensors or adapter_model.bin", ErrNotPEFT, dir)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	if err != nil {
		return nil, 0, err
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, 0, fmt.Errorf("%w: %s/adapter_config.json: %w", ErrNotPEFT, dir, err)
	}
	sort.Strings(files)
	return files, total, nil
}

// writePEFTTar writes the files as a tar with fixed metadata, so the same
// directory always gives the same blob.
func writePEFTTar(w io.Writer, dir string, files []string) error {
	tw := tar.NewWriter(w)
	for _, name := range files {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX})
		}
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return tw.Close()
}

func (m *Manager) peftDir(p *Persona) string {
	return filepath.Join(m.cacheDir, "adapters", p.Adapter.Digest.Hex())
}

// materialiseDir unpacks p's PEFT adapter blob into the cache directory
// (into a temporary directory first, renamed into place) and returns it.
func (m *Manager) materialiseDir(ctx context.Context, p *Persona) (string, error) {
	if p.AdapterFormat != FormatPEFT {
		return "", fmt.Errorf("%w: vLLM loads PEFT adapter directories, and persona %s's adapter is %s: set one with batos persona set %s -adapter DIR", llm.ErrUnsupported, p.Name, p.AdapterFormat, p.Name)
	}
	if m.cacheDir == "" {
		return "", errors.New("mind: no cache directory for adapters")
	}
	dir := m.peftDir(p)
	if dirExists(dir) {
		return dir, nil
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	rc, err := m.db.Store().OpenBlob(ctx, p.Adapter.Digest)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	if err := untarFlat(rc, tmp, p.Adapter.Size); err != nil {
		return "", fmt.Errorf("unpack persona %s's adapter: %w", p.Name, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil && !dirExists(dir) {
		return "", err
	}
	// Another persona with the same adapter may have unpacked it first.
	return dir, nil
}

// untarFlat unpacks regular files with plain names only, at most limit
// bytes in all: an archive cannot write outside dir, nor more than its
// own size (a sparse entry can claim any size at all).
func untarFlat(r io.Reader, dir string, limit int64) error {
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			// Read to the end so the blob reader checks the digest.
			_, err = io.Copy(io.Discard, r)
			return err
		}
		if err != nil {
			return err
		}
		if n >= maxPEFTFiles || h.Typeflag != tar.TypeReg || h.Name != filepath.Base(h.Name) || strings.HasPrefix(h.Name, ".") {
			return fmt.Errorf("unexpected archive entry %q", h.Name)
		}
		if h.Size > limit {
			return fmt.Errorf("archive entry %q of %d bytes is larger than what is left of the archive", h.Name, h.Size)
		}
		limit -= h.Size
		f, err := os.OpenFile(filepath.Join(dir, h.Name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, io.LimitReader(tr, h.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
}
