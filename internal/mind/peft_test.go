package mind

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestPEFTFromLinkedSnapshot: a Hugging Face cache snapshot is a
// directory of links; it imports as the same blob as the files
// themselves. Before, it was refused as having no adapter_config.json.
func TestPEFTFromLinkedSnapshot(t *testing.T) {
	db, _ := testImage(t)
	src := peftDirFixture(t)
	direct, err := ImportAdapter(t.Context(), db, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap := t.TempDir()
	for _, name := range []string{"adapter_config.json", "adapter_model.safetensors", "README.md"} {
		if err := os.Symlink(filepath.Join(src, name), filepath.Join(snap, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/dev/zero", filepath.Join(snap, "zero")); err != nil {
		t.Fatal(err)
	}
	linked, err := ImportAdapter(t.Context(), db, snap, nil)
	if err != nil {
		t.Fatalf("linked snapshot: %v", err)
	}
	if linked.Blob != direct.Blob {
		t.Errorf("linked snapshot stored as %v, the files themselves as %v", linked.Blob, direct.Blob)
	}
}

// sparseTar is a tar whose one entry, a PAX sparse file of a few bytes,
// claims size bytes of content.
func sparseTar(t *testing.T, name string, size int64) []byte {
	t.Helper()
	record := func(k, v string) string {
		body := " " + k + "=" + v + "\n"
		for n := len(body); ; n++ {
			if s := fmt.Sprint(n) + body; len(s) == n {
				return s
			}
		}
	}
	pax := record("GNU.sparse.major", "1") + record("GNU.sparse.minor", "0") +
		record("GNU.sparse.name", name) + record("GNU.sparse.realsize", fmt.Sprint(size))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "paxheader", Mode: 0o644, Size: int64(len(pax)), Format: tar.FormatUSTAR})
	tw.Write([]byte(pax))
	sparseMap := "1\n0\n0\n" // one region, at 0, of 0 bytes: all hole
	tw.WriteHeader(&tar.Header{Name: "x", Mode: 0o644, Size: 512, Format: tar.FormatUSTAR})
	tw.Write([]byte(sparseMap + strings.Repeat("\x00", 512-len(sparseMap))))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// Turn the first entry into a PAX extended header and fix its checksum.
	b[156] = 'x'
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// TestUntarFlatHostileArchives: a crafted PEFT blob can neither write
// outside the directory nor more than its own size. Before, a 3 KB
// archive with a sparse entry wrote 16 GiB of zeros per entry.
func TestUntarFlatHostileArchives(t *testing.T) {
	archive := func(hs ...*tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hs {
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
		tw.Close()
		return buf.Bytes()
	}
	reg := func(name string) *tar.Header {
		return &tar.Header{Name: name, Mode: 0o644, Size: 3, Typeflag: tar.TypeReg}
	}
	for name, data := range map[string][]byte{
		"sparse":    sparseTar(t, "adapter_model.safetensors", 1<<34),
		"dotdot":    archive(reg("../evil")),
		"absolute":  archive(reg("/tmp/evil")),
		"nested":    archive(reg("a/../../evil")),
		"hidden":    archive(reg(".evil")),
		"symlink":   archive(&tar.Header{Name: "evil", Linkname: "/etc/passwd", Typeflag: tar.TypeSymlink}),
		"hardlink":  archive(&tar.Header{Name: "evil", Linkname: "/etc/passwd", Typeflag: tar.TypeLink}),
		"directory": archive(&tar.Header{Name: "evil/", Mode: 0o755, Typeflag: tar.TypeDir}),
		"duplicate": archive(reg("a"), reg("a")),
	} {
		parent := t.TempDir()
		dir := filepath.Join(parent, "out")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := untarFlat(bytes.NewReader(data), dir, int64(len(data))); err == nil {
			t.Errorf("%s: unpacked, want an error", name)
		}
		if entries, _ := os.ReadDir(parent); len(entries) != 1 {
			t.Errorf("%s: wrote beside the directory: %v", name, entries)
		}
		filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() && info.Size() > int64(len(data)) {
				t.Errorf("%s: wrote %s of %d bytes from a %d-byte archive", name, path, info.Size(), len(data))
			}
			return nil
		})
	}
}

// TestMaterialiseDirConcurrently: personas sharing one PEFT adapter
// unpack it at the same time; every one gets the directory. Before, the
// losers of the rename failed with "directory not empty".
func TestMaterialiseDirConcurrently(t *testing.T) {
	db, _ := testImage(t)
	imp, err := ImportAdapter(t.Context(), db, peftDirFixture(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(db, &Server{API: APIVLLM}, t.TempDir())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			p := &Persona{Name: fmt.Sprint("P", i), Adapter: imp.Blob, AdapterFormat: FormatPEFT}
			dir, err := m.materialiseDir(t.Context(), p)
			if err != nil {
				t.Errorf("persona %d: %v", i, err)
			} else if _, err := os.Stat(filepath.Join(dir, "adapter_config.json")); err != nil {
				t.Errorf("persona %d: %v", i, err)
			}
		})
	}
	wg.Wait()
}

// TestPEFTHiddenFilesLeftOut: a downloaded adapter directory's hidden
// files (.gitattributes) stay out of the blob. Before, they were stored,
// and unpacking the blob for vLLM then refused them: the adapter could
// never be loaded.
func TestPEFTHiddenFilesLeftOut(t *testing.T) {
	db, _ := testImage(t)
	dir := peftDirFixture(t)
	if err := os.WriteFile(filepath.Join(dir, ".gitattributes"), []byte("*.safetensors filter=lfs"), 0o644); err != nil {
		t.Fatal(err)
	}
	imp, err := ImportAdapter(t.Context(), db, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(db, &Server{API: APIVLLM}, t.TempDir())
	out, err := m.materialiseDir(t.Context(), &Persona{Name: "X", Adapter: imp.Blob, AdapterFormat: FormatPEFT})
	if err != nil {
		t.Fatalf("unpack: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, ".gitattributes")); !os.IsNotExist(err) {
		t.Errorf(".gitattributes unpacked: %v", err)
	}
}
