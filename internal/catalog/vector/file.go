package vector

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
)

// The file format, version 1, all integers little-endian:
//
//	header   magic "batosvec", version u32, dims u32, m u32, top u32,
//	         nodes u64, dead u64, entry u32, zero u32        (48 bytes)
//	nodes    per node, in number order: key u64, flags u8 (1: dead),
//	         level u8, dims × f32 (the unit vector), then for each level
//	         0 … level: a count u16 and count × u32 linked node numbers
//	trailer  CRC-32C (Castagnoli) of all the bytes before it
//
// The file is the graph itself, not just the vectors: rebuilding the graph
// from the vectors costs an insertion each (42 s for 100,000 of 384
// dimensions, measured), reading it back 0.11 s.
const (
	magic      = "batosvec"
	version    = 1
	headerSize = 48
	flagDead   = 1
	// maxM bounds a file's M: a hostile header cannot make link lists
	// huge, and no useful graph needs more.
	maxM = 128
	// unitSlack is how far from 1 a stored vector's squared length may
	// be: rounding to float32 moves it by about 1e-7.
	unitSlack = 1e-4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Save writes the index to path atomically: to a temporary file in the
// same directory, synced, then renamed over path, and the directory
// synced; a crash leaves the old file or the new one. Searches go on
// while Save runs; Add and Delete wait for it.
func (ix *Index) Save(path string) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if err := writeAtomic(path, ix.g.encode); err != nil {
		return fmt.Errorf("save vector index %s: %w", path, err)
	}
	return nil
}

func writeAtomic(path string, encode func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if err := encode(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// encode writes the graph in the file format.
func (g *graph) encode(w io.Writer) error {
	e := encoder{w: w}
	e.bytes([]byte(magic))
	e.u32(version)
	e.u32(uint32(g.dims))
	e.u32(uint32(g.m))
	e.u32(uint32(g.top))
	e.u64(uint64(len(g.nodes)))
	e.u64(uint64(g.dead))
	e.u32(g.entry)
	e.u32(0)
	vb := make([]byte, 4*g.dims)
	var lb []byte
	for id := range g.nodes {
		n := &g.nodes[id]
		e.u64(n.key)
		var flags byte
		if n.dead {
			flags = flagDead
		}
		e.bytes([]byte{flags, byte(len(n.links) - 1)})
		for i, x := range g.vec(uint32(id)) {
			binary.LittleEndian.PutUint32(vb[4*i:], math.Float32bits(x))
		}
		e.bytes(vb)
		for _, ls := range n.links {
			lb = binary.LittleEndian.AppendUint16(lb[:0], uint16(len(ls)))
			for _, to := range ls {
				lb = binary.LittleEndian.AppendUint32(lb, to)
			}
			e.bytes(lb)
		}
	}
	sum := e.crc
	e.u32(sum)
	return e.err
}

// encoder writes little-endian integers and sums what it writes; the
// first error sticks.
type encoder struct {
	w   io.Writer
	crc uint32
	err error
	b   [8]byte
}

func (e *encoder) bytes(p []byte) {
	if e.err != nil {
		return
	}
	e.crc = crc32.Update(e.crc, castagnoli, p)
	_, e.err = e.w.Write(p)
}

func (e *encoder) u32(x uint32) { binary.LittleEndian.PutUint32(e.b[:], x); e.bytes(e.b[:4]) }
func (e *encoder) u64(x uint64) { binary.LittleEndian.PutUint64(e.b[:], x); e.bytes(e.b[:8]) }

// Load reads an index that Save wrote. A missing file gives an error
// wrapping os.ErrNotExist; a file that is there but is not a whole, valid
// index (truncated, another format or version, a failed checksum, an
// inconsistent graph) gives one wrapping ErrDamaged. Either way the caller
// rebuilds the index. Load never trusts the file's counts further than its
// size allows, so a hostile file cannot make it allocate much more than
// the file's size.
func Load(path string) (*Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load vector index: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load vector index: %w", err)
	}
	ix, err := decode(bufio.NewReaderSize(f, 1<<20), info.Size())
	if err != nil {
		return nil, fmt.Errorf("load vector index %s: %w", path, err)
	}
	return ix, nil
}

// header is the file's first 48 bytes.
type header struct {
	version, dims, m, top uint32
	nodes, dead           uint64
	entry                 uint32
}

// decode reads an index of size bytes from r.
func decode(r io.Reader, size int64) (*Index, error) {
	d := decoder{r: r}
	h, err := d.header(size)
	if err != nil {
		return nil, err
	}
	ix := newIndex(int(h.dims), int(h.m), h.nodes)
	g := &ix.g
	g.top, g.entry = int(h.top), h.entry
	g.nodes = make([]node, 0, h.nodes)
	vb := make([]byte, 4*g.dims)
	v := make([]float32, g.dims)
	for id := range h.nodes {
		n, err := d.node(vb, v, g.m)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", id, err)
		}
		if len(n.links)-1 > g.top {
			return nil, damaged("node %d is on level %d, over the top level %d", id, len(n.links)-1, g.top)
		}
		if id%(1<<pageBits) == 0 {
			// The file holds these vectors (the header check saw to it), so
			// their page can be allocated whole.
			g.pages = append(g.pages, make([]float32, 0, min(1<<pageBits, h.nodes-id)*uint64(g.dims)))
		}
		g.appendVec(v)
		g.nodes = append(g.nodes, n)
		if n.dead {
			g.dead++
		}
	}
	sum := d.crc
	var b [4]byte
	if err := d.read(b[:]); err != nil {
		return nil, err
	}
	if got := binary.LittleEndian.Uint32(b[:]); got != sum {
		return nil, damaged("checksum %08x, want %08x", got, sum)
	}
	if n, _ := io.ReadFull(r, b[:1]); n != 0 {
		return nil, damaged("bytes after the checksum")
	}
	if err := ix.check(h); err != nil {
		return nil, err
	}
	return ix, nil
}

// check verifies what a checksum cannot, for a file made to pass it: that
// the graph's links and counts are consistent, so that no search can go
// out of bounds; and it fills byKey.
func (ix *Index) check(h header) error {
	g := &ix.g
	if uint64(g.dead) != h.dead {
		return damaged("%d dead nodes, the header says %d", g.dead, h.dead)
	}
	if len(g.nodes) > 0 && len(g.nodes[g.entry].links)-1 != g.top {
		return damaged("the entry node is not on the top level")
	}
	for id := range g.nodes {
		n := &g.nodes[id]
		for l, ls := range n.links {
			for _, to := range ls {
				if int(to) >= len(g.nodes) || len(g.nodes[to].links) <= l {
					return damaged("node %d links to node %d on level %d, which it is not on", id, to, l)
				}
			}
		}
		if n.dead {
			continue
		}
		if _, dup := ix.byKey[n.key]; dup {
			return damaged("key %d is live twice", n.key)
		}
		ix.byKey[n.key] = uint32(id)
	}
	return nil
}

func damaged(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrDamaged}, args...)...)
}

// decoder reads what encoder wrote, summing it.
type decoder struct {
	r   io.Reader
	crc uint32
	b   [8]byte
	lb  []byte
}

// buf returns a reused buffer of n bytes.
func (d *decoder) buf(n int) []byte {
	if cap(d.lb) < n {
		d.lb = make([]byte, n)
	}
	return d.lb[:n]
}

// read fills p; the file ending first is damage.
func (d *decoder) read(p []byte) error {
	if _, err := io.ReadFull(d.r, p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return damaged("truncated")
		}
		return fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	d.crc = crc32.Update(d.crc, castagnoli, p)
	return nil
}

func (d *decoder) u16() (uint16, error) {
	err := d.read(d.b[:2])
	return binary.LittleEndian.Uint16(d.b[:]), err
}

// header reads and checks the header of a file of size bytes.
func (d *decoder) header(size int64) (header, error) {
	var h header
	var b [headerSize]byte
	if size < headerSize+4 {
		return h, damaged("%d bytes, too short for an index", size)
	}
	if err := d.read(b[:]); err != nil {
		return h, err
	}
	if string(b[:8]) != magic {
		return h, damaged("not a vector index file")
	}
	le := binary.LittleEndian
	h = header{
		version: le.Uint32(b[8:]), dims: le.Uint32(b[12:]), m: le.Uint32(b[16:]), top: le.Uint32(b[20:]),
		nodes: le.Uint64(b[24:]), dead: le.Uint64(b[32:]), entry: le.Uint32(b[40:]),
	}
	switch {
	case h.version != version:
		return h, damaged("format version %d, want %d", h.version, version)
	case h.dims < 1 || h.dims > maxDims:
		return h, damaged("%d dimensions", h.dims)
	case h.m < 2 || h.m > maxM:
		return h, damaged("M = %d", h.m)
	case h.top > maxLevel:
		return h, damaged("top level %d", h.top)
	}
	// The smallest node: key, flags, level, vector and one empty list.
	least := uint64(8 + 1 + 1 + 4*h.dims + 2)
	if h.nodes > uint64(size-headerSize-4)/least || h.nodes > math.MaxUint32 {
		return h, damaged("%d nodes cannot fit in %d bytes", h.nodes, size)
	}
	if h.dead > h.nodes || (h.nodes > 0 && uint64(h.entry) >= h.nodes) {
		return h, damaged("inconsistent counts")
	}
	return h, nil
}

// node reads one node, its vector into v (using vb to read it). Each list
// is allocated as long as it is, so the memory stays proportional to the
// file's size whatever m says.
func (d *decoder) node(vb []byte, v []float32, m int) (node, error) {
	var n node
	var b [10]byte
	if err := d.read(b[:]); err != nil {
		return n, err
	}
	n.key = binary.LittleEndian.Uint64(b[:])
	if b[8]&^flagDead != 0 || b[9] > maxLevel {
		return n, damaged("flags %#x, level %d", b[8], b[9])
	}
	n.dead = b[8] == flagDead
	if err := d.read(vb); err != nil {
		return n, err
	}
	var sum float64
	for i := range v {
		x := math.Float32frombits(binary.LittleEndian.Uint32(vb[4*i:]))
		v[i] = x
		sum += float64(x) * float64(x)
	}
	// A unit vector; NaN fails this too.
	if !(math.Abs(sum-1) <= unitSlack) {
		return n, damaged("a vector of squared length %v, not 1", sum)
	}
	n.links = make([][]uint32, int(b[9])+1)
	for l := range n.links {
		c, err := d.u16()
		if err != nil {
			return n, err
		}
		if limit := 2 * m; l > 0 && int(c) > m || int(c) > limit {
			return n, damaged("%d links on level %d", c, l)
		}
		lb := d.buf(4 * int(c))
		if err := d.read(lb); err != nil {
			return n, err
		}
		ls := make([]uint32, c)
		for i := range ls {
			ls[i] = binary.LittleEndian.Uint32(lb[4*i:])
		}
		n.links[l] = ls
	}
	return n, nil
}
