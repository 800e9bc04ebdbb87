package embed

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
)

// The cache file is a header and then records, appended one after the
// other:
//
//	header  "BATOSEMB" and the format version, uint32 little-endian (1)
//	record  kind    uint8: kindWidth or kindVector
//	        key     [32]byte: sha256(model + "\x00" + text) for a vector,
//	                sha256(model) for a width
//	        width   uint32 little-endian: 1 to MaxWidth
//	        values  width float32 little-endian, for a vector; none for
//	                a width
//	        crc     uint32 little-endian: CRC-32C of the record's bytes
//	                before it
//
// A model's width record comes before its first vector, written with it.
const (
	magic         = "BATOSEMB"
	formatVersion = 1
	headerSize    = len(magic) + 4
	fixedSize     = 1 + sha256.Size + 4 // kind, key, width
	crcSize       = 4
)

// Record kinds.
const (
	kindWidth  = 1 // a model's width
	kindVector = 2 // a text's vector
)

// MaxWidth is the widest vector a cache holds (embedding models give a
// few hundred to a few thousand dimensions). A record claiming more is
// damage: OpenCache never allocates for it.
const MaxWidth = 1 << 16

var crcTable = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrDamaged is returned by OpenCache for a file that is not a cache
	// of this version (its header is wrong), and by Get for a record that
	// was damaged since it was opened. The cache holds derived data: the
	// caller deletes the file and opens a new one.
	ErrDamaged = errors.New("embed: cache file damaged")
	// ErrClosed is returned by a Cache's methods after Close.
	ErrClosed = errors.New("embed: cache closed")
	// ErrWidth is returned by Cache.Put, and by Embed, for a vector whose
	// width is not the one the cache holds for its model.
	ErrWidth = errors.New("embed: vector width differs from the model's")
)

// Cache keeps text vectors on disk by model and text, in an append-only
// file of its own format. In memory it keeps only where each vector is in
// the file (about 48 bytes a vector) and each model's width; Get reads
// the vector from the file. Its methods are safe for concurrent use. One
// process at a time may have a cache file open: nothing locks it against
// another.
type Cache struct {
	path     string
	f        *os.File
	repaired int64

	mu     sync.RWMutex
	index  map[[sha256.Size]byte]int64 // vector key → its record's offset
	widths map[[sha256.Size]byte]int   // model key → width
	end    int64                       // where the next record goes
	closed bool
}

// OpenCache opens the cache file at path, creating it if there is none.
// It reads the whole file once, checking every record's checksum. A
// damaged tail — a record cut short by a crash mid-append, or one whose
// checksum fails — is cut off, with everything after it, and its size in
// bytes reported by Repaired; this is not an error. A file whose header
// is not a cache's of this version is refused with an error wrapping
// ErrDamaged.
func OpenCache(path string) (*Cache, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("embed: open cache: %w", err)
	}
	c := &Cache{path: path, f: f, index: map[[sha256.Size]byte]int64{}, widths: map[[sha256.Size]byte]int{}}
	if err := c.load(); err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cache) load() error {
	info, err := c.f.Stat()
	if err != nil {
		return fmt.Errorf("embed: open cache %s: %w", c.path, err)
	}
	size := info.Size()
	if size < int64(headerSize) {
		return c.create(size)
	}
	var h [headerSize]byte
	if _, err := c.f.ReadAt(h[:], 0); err != nil {
		return fmt.Errorf("embed: open cache %s: %w", c.path, err)
	}
	if string(h[:len(magic)]) != magic {
		return fmt.Errorf("%w: %s is not an embedding cache", ErrDamaged, c.path)
	}
	if v := binary.LittleEndian.Uint32(h[len(magic):]); v != formatVersion {
		return fmt.Errorf("%w: %s is of version %d, not %d", ErrDamaged, c.path, v, formatVersion)
	}
	good, err := c.scan(size)
	if err != nil {
		return fmt.Errorf("embed: open cache %s: %w", c.path, err)
	}
	c.end = good
	if good < size {
		// Cut the damage off now, so that appends follow the last good
		// record and a later scan does not stop at the damage again.
		if err := c.f.Truncate(good); err != nil {
			return fmt.Errorf("embed: open cache %s: cut damaged tail: %w", c.path, err)
		}
		if err := c.f.Sync(); err != nil {
			return fmt.Errorf("embed: open cache %s: %w", c.path, err)
		}
		c.repaired = size - good
	}
	return nil
}

// create writes the header of a new file, of size bytes: empty, or a
// header cut short by a crash when the file was created (which counts as
// repaired). Other short content is not a cache.
func (c *Cache) create(size int64) error {
	h := header()
	have := make([]byte, size)
	if _, err := c.f.ReadAt(have, 0); err != nil {
		return fmt.Errorf("embed: open cache %s: %w", c.path, err)
	}
	if !bytes.HasPrefix(h, have) {
		return fmt.Errorf("%w: %s is not an embedding cache", ErrDamaged, c.path)
	}
	if _, err := c.f.WriteAt(h, 0); err != nil {
		return fmt.Errorf("embed: create cache %s: %w", c.path, err)
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("embed: create cache %s: %w", c.path, err)
	}
	if err := syncDir(filepath.Dir(c.path)); err != nil {
		return fmt.Errorf("embed: create cache %s: %w", c.path, err)
	}
	c.end, c.repaired = int64(headerSize), size
	return nil
}

func header() []byte {
	return binary.LittleEndian.AppendUint32([]byte(magic), formatVersion)
}

// syncDir makes a new file's directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// scan reads the records of a file of size bytes into the index and
// returns where the good ones end: at the end of the file, or at the
// first record that is cut short, malformed or fails its checksum. The
// rest is dropped even where it might hold good records, because the
// damaged record's width, which says where the next record starts, is
// itself not to be trusted; and since the file is only ever appended
// to, damage short of the end is not a crash's but the disk's or another
// writer's, after which nothing in the file can be relied on to be
// where it seems. The vectors are derived data: what is dropped is asked
// for again.
func (c *Cache) scan(size int64) (int64, error) {
	r := bufio.NewReaderSize(io.NewSectionReader(c.f, int64(headerSize), size-int64(headerSize)), 64<<10)
	var fixed [fixedSize]byte
	var sum [crcSize]byte
	scratch := make([]byte, 32<<10)
	for off := int64(headerSize); ; {
		if size-off < fixedSize+crcSize {
			return off, nil // the end, or a record cut short
		}
		if _, err := io.ReadFull(r, fixed[:]); err != nil {
			return 0, err
		}
		kind, key, width := fixed[0], [sha256.Size]byte(fixed[1:1+sha256.Size]), binary.LittleEndian.Uint32(fixed[1+sha256.Size:])
		if (kind != kindWidth && kind != kindVector) || width == 0 || width > MaxWidth {
			return off, nil
		}
		n := recordSize(kind, int(width))
		if size-off < n {
			return off, nil
		}
		crc := crc32.Update(0, crcTable, fixed[:])
		for rest := n - fixedSize - crcSize; rest > 0; {
			m := min(rest, int64(len(scratch)))
			if _, err := io.ReadFull(r, scratch[:m]); err != nil {
				return 0, err
			}
			crc = crc32.Update(crc, crcTable, scratch[:m])
			rest -= m
		}
		if _, err := io.ReadFull(r, sum[:]); err != nil {
			return 0, err
		}
		if binary.LittleEndian.Uint32(sum[:]) != crc {
			return off, nil
		}
		if kind == kindWidth {
			if w, ok := c.widths[key]; ok && w != int(width) {
				return off, nil // a model has one width: this record is not ours
			}
			c.widths[key] = int(width)
		} else {
			c.index[key] = off
		}
		off += n
	}
}

// recordSize is the size in bytes of a record of kind and width.
func recordSize(kind byte, width int) int64 {
	values := 0
	if kind == kindVector {
		values = width
	}
	return int64(fixedSize + 4*values + crcSize)
}

// appendRecord appends a record to b.
func appendRecord(b []byte, kind byte, key [sha256.Size]byte, width int, values []float32) []byte {
	start := len(b)
	b = append(b, kind)
	b = append(b, key[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(width))
	for _, v := range values {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], crcTable))
}

// vectorKey is the key of model's vector of text.
func vectorKey(model, text string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(model))
	h.Write([]byte{0})
	h.Write([]byte(text))
	return [sha256.Size]byte(h.Sum(nil))
}

func modelKey(model string) [sha256.Size]byte { return sha256.Sum256([]byte(model)) }

// Repaired is the number of bytes OpenCache cut off the file's end as
// damaged (zero for a sound file).
func (c *Cache) Repaired() int64 { return c.repaired }

// Len is the number of vectors in the cache.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.index)
}

// Width returns the width of model's vectors, known once the cache holds
// one.
func (c *Cache) Width(model string) (int, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	w, ok := c.widths[modelKey(model)]
	return w, ok
}

// Get returns model's vector of text, if the cache holds it. The vector
// is read from the file and its checksum checked: a record damaged since
// OpenCache is an error wrapping ErrDamaged.
func (c *Cache) Get(model, text string) ([]float32, bool, error) {
	key := vectorKey(model, text)
	c.mu.RLock()
	off, ok := c.index[key]
	width := c.widths[modelKey(model)]
	closed := c.closed
	c.mu.RUnlock()
	if closed {
		return nil, false, ErrClosed
	}
	if !ok {
		return nil, false, nil
	}
	v, err := c.read(off, key, width)
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// read reads the vector record at off, which should hold key at width.
func (c *Cache) read(off int64, key [sha256.Size]byte, width int) ([]float32, error) {
	if width < 1 || width > MaxWidth {
		return nil, fmt.Errorf("%w: %s: no width for the vector at %d", ErrDamaged, c.path, off)
	}
	b := make([]byte, recordSize(kindVector, width))
	if _, err := c.f.ReadAt(b, off); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("embed: cache %s: read vector at %d: %w", c.path, off, err)
	}
	body := b[:len(b)-crcSize]
	switch {
	case crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[len(body):]):
		return nil, fmt.Errorf("%w: %s: vector at %d fails its checksum", ErrDamaged, c.path, off)
	case b[0] != kindVector || [sha256.Size]byte(b[1:1+sha256.Size]) != key ||
		binary.LittleEndian.Uint32(b[1+sha256.Size:]) != uint32(width):
		return nil, fmt.Errorf("%w: %s: record at %d is not the vector indexed there", ErrDamaged, c.path, off)
	}
	v := make([]float32, width)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[fixedSize+4*i:]))
	}
	return v, nil
}

// Put appends model's vector of text to the file, unless the cache holds
// it already (a text's vector is taken to depend on the model and text
// alone). The first vector of a model sets the model's width; a vector
// of another width is an error wrapping ErrWidth. Put does not sync:
// the vector is durable after the next Sync.
func (c *Cache) Put(model, text string, vec []float32) error {
	if len(vec) < 1 || len(vec) > MaxWidth {
		return fmt.Errorf("embed: cache a vector of width %d (want 1 to %d)", len(vec), MaxWidth)
	}
	key, mk := vectorKey(model, text), modelKey(model)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if _, ok := c.index[key]; ok {
		return nil
	}
	w, known := c.widths[mk]
	if known && w != len(vec) {
		return fmt.Errorf("%w: model %s: a vector of width %d, the cache holds width %d", ErrWidth, model, len(vec), w)
	}
	var b []byte
	if !known {
		b = appendRecord(b, kindWidth, mk, len(vec), nil)
	}
	at := c.end + int64(len(b))
	b = appendRecord(b, kindVector, key, len(vec), vec)
	if _, err := c.f.WriteAt(b, c.end); err != nil {
		// Cut off what part of it was written. Were the cut to fail too,
		// the next record, written at c.end, would overwrite the part,
		// and OpenCache would cut off what a shorter one left of it.
		_ = c.f.Truncate(c.end)
		return fmt.Errorf("embed: cache %s: append: %w", c.path, err)
	}
	c.end += int64(len(b))
	c.index[key] = at
	if !known {
		c.widths[mk] = len(vec)
	}
	return nil
}

// Sync makes the vectors put so far durable.
func (c *Cache) Sync() error {
	c.mu.RLock()
	closed := c.closed
	c.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if err := c.f.Sync(); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return ErrClosed
		}
		return fmt.Errorf("embed: cache %s: sync: %w", c.path, err)
	}
	return nil
}

// Close syncs and closes the file. Calls after the first return nil.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	serr := c.f.Sync()
	if err := c.f.Close(); err != nil {
		return fmt.Errorf("embed: close cache %s: %w", c.path, err)
	}
	if serr != nil {
		return fmt.Errorf("embed: close cache %s: sync: %w", c.path, serr)
	}
	return nil
}
