package vector

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sample builds an index with replaced and deleted keys, the states a
// file must carry.
func sample(tb testing.TB, n, dims int) (*Index, *corpus) {
	tb.Helper()
	c := clustered(dims, 9)
	ix := build(tb, dims, c.take(n))
	for k := range n / 10 {
		ix.Delete(uint64(3 * k))
		ix.Add(uint64(3*k+1), c.next())
	}
	return ix, c
}

func TestSaveLoad(t *testing.T) {
	ix, c := sample(t, 1500, 24)
	path := filepath.Join(t.TempDir(), "vectors")
	if err := ix.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	check(t, got)
	if got.Len() != ix.Len() || got.Dims() != ix.Dims() {
		t.Fatalf("loaded Len %d, Dims %d; want %d, %d", got.Len(), got.Dims(), ix.Len(), ix.Dims())
	}
	// The graph is the same, so are the answers.
	for _, q := range c.take(30) {
		want, _ := ix.Search(q, 10)
		have, _ := got.Search(q, 10)
		if diff := cmp.Diff(have, want); diff != "" {
			t.Fatalf("Search after Load (-got +want):\n%s", diff)
		}
	}
	// A loaded index takes changes as a built one does.
	for i, v := range c.take(300) {
		if err := got.Add(uint64(10000+i), v); err != nil {
			t.Fatal(err)
		}
	}
	got.Delete(1)
	check(t, got)
	if rc, _ := Recall(got, c.take(30), 10); rc < 0.95 {
		t.Errorf("recall after Load and Add = %.3f", rc)
	}
}

func TestSaveLoadEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vectors")
	if err := New(7).Save(path); err != nil {
		t.Fatal(err)
	}
	ix, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 0 || ix.Dims() != 7 {
		t.Errorf("Len %d, Dims %d; want 0, 7", ix.Len(), ix.Dims())
	}
	ix.Add(1, []float32{1, 2, 3, 4, 5, 6, 7})
	check(t, ix)
}

func TestSaveReplacesAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vectors")
	ix, _ := sample(t, 50, 4)
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ix.Save(path); err != nil {
		t.Fatal(err)
	}
	if err := ix.Save(path); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d files, want 1", len(ents))
	}
	if _, err := Load(path); err != nil {
		t.Error(err)
	}
	if err := ix.Save(filepath.Join(dir, "no", "such", "dir")); err == nil {
		t.Error("Save into a missing directory succeeded")
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "vectors"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want an error wrapping os.ErrNotExist", err)
	}
	if errors.Is(err, ErrDamaged) {
		t.Errorf("a missing file is not damaged: %v", err)
	}
}

func encoded(tb testing.TB, ix *Index) []byte {
	tb.Helper()
	var b bytes.Buffer
	if err := ix.g.encode(&b); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// resum fixes a file's checksum after a change, so that what is tested
// is the check behind it.
func resum(b []byte) []byte {
	n := len(b) - 4
	binary.LittleEndian.PutUint32(b[n:], crc32.Checksum(b[:n], castagnoli))
	return b
}

func TestLoadDamaged(t *testing.T) {
	ix, _ := sample(t, 200, 8)
	good := encoded(t, ix)
	edit := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	flip := func(i int) []byte { return edit(func(b []byte) []byte { b[i] ^= 0x10; return b }) }
	le := binary.LittleEndian
	garbage := make([]byte, 5000)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	cases := map[string][]byte{
		"empty":                  {},
		"one byte":               {'b'},
		"header only":            good[:headerSize],
		"truncated in a node":    good[:len(good)/2],
		"truncated by one byte":  good[:len(good)-1],
		"extra byte":             append(slices.Clone(good), 0),
		"flipped magic":          flip(0),
		"flipped node count":     flip(24),
		"flipped in a vector":    flip(headerSize + 12),
		"flipped in the middle":  flip(len(good) / 2),
		"flipped checksum":       flip(len(good) - 1),
		"garbage":                garbage,
		"garbage after a header": append(slices.Clone(good[:headerSize]), garbage...),
		"version 2": edit(func(b []byte) []byte {
			le.PutUint32(b[8:], 2)
			return resum(b)
		}),
		"huge node count": edit(func(b []byte) []byte {
			le.PutUint64(b[24:], 1<<60)
			return resum(b)
		}),
		"huge dims": edit(func(b []byte) []byte {
			le.PutUint32(b[12:], 1<<31)
			return resum(b)
		}),
		"M of 1": edit(func(b []byte) []byte {
			le.PutUint32(b[16:], 1)
			return resum(b)
		}),
		"entry out of range": edit(func(b []byte) []byte {
			le.PutUint32(b[40:], 1<<20)
			return resum(b)
		}),
		"dead count off": edit(func(b []byte) []byte {
			le.PutUint64(b[32:], le.Uint64(b[32:])+1)
			return resum(b)
		}),
		"a link out of range": edit(func(b []byte) []byte {
			// node 0's first link on level 0
			o := headerSize + 10 + 4*8 + 2
			le.PutUint32(b[o:], 1<<30)
			return resum(b)
		}),
		"a vector not unit": edit(func(b []byte) []byte {
			le.PutUint32(b[headerSize+10:], 0x40000000) // 2.0
			return resum(b)
		}),
	}
	dir := t.TempDir()
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			ix, err := Load(path)
			if !errors.Is(err, ErrDamaged) {
				t.Errorf("Load = %v, %v; want ErrDamaged", ix, err)
			}
		})
	}
}

// FuzzLoad feeds Load files that pass the checksum (the fuzzer's bytes
// with the right checksum appended) and must be refused or give a
// consistent index, never a panic or a huge allocation.
func FuzzLoad(f *testing.F) {
	ix, _ := sample(f, 40, 3)
	good := encoded(f, ix)
	f.Add(good[:len(good)-4])
	small := New(2)
	small.Add(1, []float32{1, 0})
	small.Add(2, []float32{0, 1})
	f.Add(encoded(f, small)[:len(encoded(f, small))-4])
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = resum(append(slices.Clone(b), 0, 0, 0, 0))
		ix, err := decode(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("error not ErrDamaged: %v", err)
			}
			return
		}
		check(t, ix)
		q := make([]float32, ix.Dims())
		q[0] = 1
		ix.scanBelow = 0
		if _, err := ix.Search(q, 3); err != nil {
			t.Fatal(err)
		}
		ix.Add(99, q)
		check(t, ix)
	})
}
