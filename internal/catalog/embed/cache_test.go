package embed

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// openCache opens a cache at path, closed at cleanup.
func openCache(t testing.TB, path string) *Cache {
	t.Helper()
	c, err := OpenCache(path)
	if err != nil {
		t.Fatalf("OpenCache: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// vec is a deterministic vector of width w for n.
func vec(n, w int) []float32 {
	v := make([]float32, w)
	for i := range v {
		v[i] = float32(n) + float32(i)/8 + 0.5
	}
	return v
}

// entry is a vector put in a cache.
type entry struct {
	model, text string
	vec         []float32
}

// fill writes entries to a new cache file at path and closes it.
func fill(t testing.TB, path string, entries []entry) {
	t.Helper()
	c, err := OpenCache(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := c.Put(e.model, e.text, e.vec); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// check checks that c holds exactly the vectors of want and that every
// other entry of all is either missing or, never, wrong; and that the
// file, opened again, is sound and says the same.
func check(t testing.TB, c *Cache, all []entry, want int) {
	t.Helper()
	if c.Len() != want {
		t.Errorf("Len = %d, want %d", c.Len(), want)
	}
	for i, e := range all {
		got, ok, err := c.Get(e.model, e.text)
		switch {
		case err != nil:
			t.Errorf("Get %q: %v", e.text, err)
		case ok != (i < want):
			t.Errorf("Get %q: found %v, want %v", e.text, ok, i < want)
		case ok && !cmp.Equal(got, e.vec):
			t.Errorf("Get %q = %v, want %v", e.text, got, e.vec)
		}
	}
}

var entries = []entry{
	{"m", "one", vec(1, 4)},
	{"m", "two", vec(2, 4)},
	{"other", "one", vec(3, 2)},
	{"m", "three", vec(4, 4)},
}

func TestCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vectors")
	c := openCache(t, path)
	if c.Len() != 0 || c.Repaired() != 0 {
		t.Errorf("new cache: Len %d, Repaired %d", c.Len(), c.Repaired())
	}
	if _, ok := c.Width("m"); ok {
		t.Error("new cache knows a width")
	}
	for _, e := range entries {
		if err := c.Put(e.model, e.text, e.vec); err != nil {
			t.Fatal(err)
		}
	}
	// Putting again is a no-op, even with another vector: a text's vector
	// is the model's and the text's.
	if err := c.Put("m", "one", vec(9, 4)); err != nil {
		t.Fatal(err)
	}
	if err := c.Put("m", "four", vec(5, 3)); !errors.Is(err, ErrWidth) {
		t.Errorf("Put of another width: got %v, want ErrWidth", err)
	}
	for _, bad := range [][]float32{nil, make([]float32, MaxWidth+1)} {
		if err := c.Put("new", "x", bad); err == nil {
			t.Errorf("Put of width %d: no error", len(bad))
		}
	}
	if w, ok := c.Width("m"); w != 4 || !ok {
		t.Errorf("Width(m) = %d, %v; want 4", w, ok)
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	check(t, c, entries, len(entries))
	if _, ok, err := c.Get("m", "absent"); ok || err != nil {
		t.Errorf("Get of an absent text: %v, %v", ok, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, _, err := c.Get("m", "one"); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if err := c.Put("m", "new", vec(1, 4)); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close: %v", err)
	}
	if err := c.Sync(); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync after Close: %v", err)
	}

	c = openCache(t, path)
	check(t, c, entries, len(entries))
	if c.Repaired() != 0 {
		t.Errorf("sound file: Repaired = %d", c.Repaired())
	}
	if w, ok := c.Width("other"); w != 2 || !ok {
		t.Errorf("Width(other) after reopening = %d, %v; want 2", w, ok)
	}
}

// recordEnds returns where each record of the file at path ends.
func recordEnds(t testing.TB, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ends []int64
	for off := int64(headerSize); off < int64(len(b)); {
		off += recordSize(b[off], int(binary.LittleEndian.Uint32(b[off+1+sha256.Size:])))
		ends = append(ends, off)
	}
	return ends
}

// vectorsBefore is how many vector records of the file at path end by off.
func vectorsBefore(t testing.TB, path string, off int64) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for at := int64(headerSize); at < int64(len(b)); {
		end := at + recordSize(b[at], int(binary.LittleEndian.Uint32(b[at+1+sha256.Size:])))
		if end > off {
			break
		}
		if b[at] == kindVector {
			n++
		}
		at = end
	}
	return n
}

// TestCacheTorn opens the file cut at every length, as a crash mid-append
// leaves it: the records whole before the cut are kept, the rest is cut
// off and reported, and the file is sound again.
func TestCacheTorn(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	fill(t, full, entries)
	data, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	for size := 0; size < len(data); size++ {
		path := filepath.Join(dir, fmt.Sprint(size))
		if err := os.WriteFile(path, data[:size], 0o644); err != nil {
			t.Fatal(err)
		}
		want := vectorsBefore(t, full, int64(size))
		good := int64(headerSize)
		for _, end := range recordEnds(t, full) {
			if end <= int64(size) {
				good = end
			}
		}
		c := openCache(t, path)
		if c.Repaired() != int64(size)-good && !(size < headerSize && c.Repaired() == int64(size)) {
			t.Errorf("cut at %d: Repaired = %d, want %d", size, c.Repaired(), int64(size)-good)
		}
		check(t, c, entries, want)
		// The cache goes on: a vector put now is found after reopening.
		if err := c.Put("later", "text", vec(7, 3)); err != nil {
			t.Fatal(err)
		}
		c.Close()
		c = openCache(t, path)
		if c.Repaired() != 0 || c.Len() != want+1 {
			t.Errorf("cut at %d, reopened: Repaired %d, Len %d; want 0, %d", size, c.Repaired(), c.Len(), want+1)
		}
		c.Close()
	}
}

// TestCacheFlipped flips each byte of each record in turn: the record
// fails its checksum and is cut off with every record after it (after a
// damaged record, where the next one starts is unknown); no Get ever
// returns a wrong vector.
func TestCacheFlipped(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	fill(t, full, entries)
	data, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	ends := recordEnds(t, full)
	path := filepath.Join(dir, "flipped")
	for at := headerSize; at < len(data); at++ {
		flipped := bytes.Clone(data)
		flipped[at] ^= 0x10
		if err := os.WriteFile(path, flipped, 0o644); err != nil {
			t.Fatal(err)
		}
		start := int64(headerSize) // of the record holding at
		for _, end := range ends {
			if end <= int64(at) {
				start = end
			}
		}
		c := openCache(t, path)
		if c.Repaired() != int64(len(data))-start {
			t.Errorf("byte %d flipped: Repaired = %d, want %d", at, c.Repaired(), int64(len(data))-start)
		}
		check(t, c, entries, vectorsBefore(t, full, start))
		c.Close()
	}
}

func TestCacheHeader(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	otherVersion := binary.LittleEndian.AppendUint32([]byte(magic), formatVersion+1)
	tests := []struct {
		name    string
		content []byte
	}{
		{"garbage", garbage},
		{"short garbage", []byte("hello")},
		{"another version", append(otherVersion, garbage[:100]...)},
		{"text", []byte("BATOSEMB is not the start of this file")},
		{"header flipped", append([]byte("BATOSEMC"), header()[len(magic):]...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vectors")
			if err := os.WriteFile(path, tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := OpenCache(path)
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("got %v, %v; want ErrDamaged", c, err)
			}
			// Refused, the file is left as it was.
			if b, _ := os.ReadFile(path); !bytes.Equal(b, tt.content) {
				t.Error("OpenCache changed a file it refused")
			}
		})
	}
}

// TestCacheHugeWidth: a record claiming a huge width is damage, found
// without allocating for the width.
func TestCacheHugeWidth(t *testing.T) {
	for _, width := range []uint32{math.MaxUint32, MaxWidth + 1, MaxWidth} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vectors")
			fill(t, path, entries[:2])
			good, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// A record header claiming width values, and a few bytes of them.
			rec := append([]byte{kindVector}, make([]byte, sha256.Size)...)
			rec = binary.LittleEndian.AppendUint32(rec, width)
			rec = append(rec, make([]byte, 64)...)
			if err := os.WriteFile(path, append(bytes.Clone(good), rec...), 0o644); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			c := openCache(t, path)
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
				t.Errorf("OpenCache allocated %d bytes", alloc)
			}
			if c.Repaired() != int64(len(rec)) {
				t.Errorf("Repaired = %d, want %d", c.Repaired(), len(rec))
			}
			check(t, c, entries, 2)
		})
	}
}

// TestCacheConcurrent puts and gets from many goroutines at once (run it
// with -race).
func TestCacheConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vectors")
	c := openCache(t, path)
	const workers, texts = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range texts {
				text := fmt.Sprint((i + w) % texts) // overlapping texts
				if err := c.Put("m", text, vec(i+w, 16)); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					if err := c.Sync(); err != nil {
						t.Error(err)
						return
					}
				}
				v, ok, err := c.Get("m", fmt.Sprint((i+w+texts/2)%texts))
				if err != nil || (ok && len(v) != 16) {
					t.Errorf("Get: %v, %v, %v", v, ok, err)
					return
				}
				c.Len()
			}
		})
	}
	wg.Wait()
	if c.Len() != texts {
		t.Errorf("Len = %d, want %d", c.Len(), texts)
	}
	want := map[string][]float32{}
	for i := range texts {
		v, ok, err := c.Get("m", fmt.Sprint(i))
		if !ok || err != nil {
			t.Fatalf("Get %d: %v, %v", i, ok, err)
		}
		want[fmt.Sprint(i)] = v
	}
	c.Close()
	c = openCache(t, path)
	if c.Len() != texts || c.Repaired() != 0 {
		t.Errorf("reopened: Len %d, Repaired %d; want %d, 0", c.Len(), c.Repaired(), texts)
	}
	for text, v := range want {
		if got, _, _ := c.Get("m", text); !cmp.Equal(got, v) {
			t.Errorf("reopened: Get %s = %v, want %v", text, got, v)
		}
	}
}

// TestCacheDamagedAfterOpen: a record damaged while the cache is open is
// an error on Get, not a wrong vector.
func TestCacheDamagedAfterOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vectors")
	fill(t, path, entries)
	c := openCache(t, path)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The first vector's first value, after the width record.
	if _, err := f.WriteAt([]byte{0xff}, int64(headerSize)+recordSize(kindWidth, 4)+fixedSize); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := c.Get("m", "one"); !errors.Is(err, ErrDamaged) {
		t.Errorf("Get of a damaged record: %v, %v, %v; want ErrDamaged", v, ok, err)
	}
	if _, ok, err := c.Get("m", "two"); !ok || err != nil {
		t.Errorf("Get of a sound record: %v, %v", ok, err)
	}
}

// FuzzOpenCache opens any file: OpenCache either refuses it as damaged
// or opens it, and then every vector it indexed reads back, and the file
// is sound when opened again.
func FuzzOpenCache(f *testing.F) {
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed")
	fill(f, seed, entries)
	data, err := os.ReadFile(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)-3])
	f.Add(header())
	f.Add([]byte{})
	f.Add([]byte("BATO"))
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(t.TempDir(), "vectors")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := OpenCache(path)
		if errors.Is(err, ErrDamaged) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		n := c.Len()
		for key, off := range c.index {
			width := binary.LittleEndian.Uint32(content[off+1+sha256.Size:])
			if _, err := c.read(off, key, int(width)); err != nil {
				t.Errorf("vector at %d: %v", off, err)
			}
		}
		c.Close()
		c, err = OpenCache(path)
		if err != nil {
			t.Fatalf("reopened: %v", err)
		}
		defer c.Close()
		if c.Repaired() != 0 || c.Len() != n {
			t.Fatalf("reopened: Repaired %d, Len %d; want 0, %d", c.Repaired(), c.Len(), n)
		}
	})
}
