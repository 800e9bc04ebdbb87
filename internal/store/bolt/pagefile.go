package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"slices"
)

// pageFile reads the pages of a bbolt file with pread, for the structural
// check (pagecheck.go).
//
// The layout follows go.etcd.io/bbolt/internal/common (page.go, meta.go):
// native byte order, a 16-byte page header id(8) flags(2) count(2)
// overflow(4), then count elements of 16 bytes, each pointing at its key
// relative to the element's own offset.

const (
	pageHeaderSize  = 16
	pageElementSize = 16 // branch: pos ksize pgid(8); leaf: flags pos ksize vsize
	bucketHeaderLen = 16 // a bucket's value: root pgid(8) sequence(8), then an inline page if root is 0
	metaLen         = 64

	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01

	boltMagic    = 0xED0CDAED
	boltVersion  = 2
	noFreelist   = ^uint64(0)
	maxTreeDepth = 64  // bbolt's trees are a few levels deep; deeper is damage
	maxProblems  = 200 // problems reported in full; the rest are counted
	maxPageSize  = 1 << 24
	minPageSize  = 1 << 10
)

var ne = binary.NativeEndian

// fileMeta is one meta page as read from the file.
type fileMeta struct {
	page     uint64 // 0 or 1
	invalid  error  // why bbolt would not accept it; nil if it would
	pageSize uint32
	root     uint64 // the root bucket's page
	freelist uint64
	hwm      uint64 // pages in use: 0 .. hwm-1
	txid     uint64
}

// pageFile reads a bbolt file's pages with pread.
type pageFile struct {
	f        *os.File
	size     int64
	pageSize int
	metas    [2]fileMeta
	meta     *fileMeta // the one bbolt reads the file by; nil if neither is valid
	// cache holds the first page of each page prefetched, read with one
	// pread per run of nearby pages; scratch serves the other reads.
	cache   map[uint64][]byte
	arena   []byte
	scratch []byte
}

// openPageFile reads the meta pages of the bbolt file f.
func openPageFile(f *os.File) (*pageFile, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	pf := &pageFile{f: f, size: fi.Size()}
	if err := pf.readMetas(); err != nil {
		return nil, err
	}
	return pf, nil
}

// readMetas finds the page size as bbolt does (the first meta page's, or
// the second's, looked for at each power of two from 1 KiB) and reads both
// meta pages.
func (pf *pageFile) readMetas() error {
	buf := make([]byte, pageHeaderSize+metaLen)
	m0, err := pf.readMeta(buf, 0, 0)
	if err != nil {
		return err
	}
	pf.pageSize = int(m0.pageSize)
	if m0.invalid != nil {
		pf.pageSize = os.Getpagesize()
		for off := int64(minPageSize); off < pf.size-minPageSize && off <= maxPageSize; off <<= 1 {
			m1, err := pf.readMeta(buf, off, 1)
			if err != nil {
				return err
			}
			if m1.invalid == nil {
				pf.pageSize = int(m1.pageSize)
				break
			}
		}
	}
	pf.metas[0] = m0
	if pf.metas[1], err = pf.readMeta(buf, int64(pf.pageSize), 1); err != nil {
		return err
	}
	for i := range pf.metas {
		m := &pf.metas[i]
		if m.invalid == nil && int(m.pageSize) != pf.pageSize {
			m.invalid = fmt.Errorf("page size %d differs from the other meta page's %d", m.pageSize, pf.pageSize)
		}
		if m.invalid == nil && (pf.meta == nil || m.txid > pf.meta.txid) {
			pf.meta = m
		}
	}
	return nil
}

func (pf *pageFile) readMeta(buf []byte, off int64, page uint64) (fileMeta, error) {
	m := fileMeta{page: page}
	clear(buf)
	n, err := pf.f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return m, fmt.Errorf("read meta page %d: %w", page, err)
	}
	if n < len(buf) {
		m.invalid = fmt.Errorf("the file ends at %d bytes, inside the page", pf.size)
		return m, nil
	}
	b := buf[pageHeaderSize:]
	h := fnv.New64a()
	h.Write(b[:56])
	m.pageSize = ne.Uint32(b[8:])
	// magic(4) version(4) pageSize(4) flags(4) root(8) sequence(8)
	// freelist(8) pgid(8) txid(8) checksum(8), the checksum over the rest
	m.root, m.freelist, m.hwm, m.txid = ne.Uint64(b[16:]), ne.Uint64(b[32:]), ne.Uint64(b[40:]), ne.Uint64(b[48:])
	switch {
	case ne.Uint32(b) != boltMagic:
		m.invalid = fmt.Errorf("bad magic %#08x", ne.Uint32(b))
	case ne.Uint32(b[4:]) != boltVersion:
		m.invalid = fmt.Errorf("version %d, not %d", ne.Uint32(b[4:]), boltVersion)
	case ne.Uint64(b[56:]) != h.Sum64():
		m.invalid = fmt.Errorf("checksum mismatch (stored %016x, computed %016x)", ne.Uint64(b[56:]), h.Sum64())
	case m.pageSize < minPageSize || m.pageSize > maxPageSize || m.pageSize&(m.pageSize-1) != 0:
		m.invalid = fmt.Errorf("page size %d", m.pageSize)
	}
	return m, nil
}

// pages is how many whole pages the file holds.
func (pf *pageFile) pages() uint64 { return uint64(pf.size) / uint64(pf.pageSize) }

// read reads size bytes from the start of page id, from the prefetched
// pages or the file; the caller has checked that they lie inside the file.
// The bytes are valid until the next read or prefetch.
func (pf *pageFile) read(id uint64, size int) ([]byte, error) {
	if b, ok := pf.cache[id]; ok && size <= len(b) {
		return b[:size], nil
	}
	if cap(pf.scratch) < size {
		pf.scratch = make([]byte, size)
	}
	b := pf.scratch[:size]
	if _, err := pf.f.ReadAt(b, int64(id)*int64(pf.pageSize)); err != nil {
		return nil, err
	}
	return b, nil
}

// prefetch reads the first page of each of ids, replacing what was
// prefetched before. A syscall costs as much as copying a few pages, so
// pages close together are read with one pread, gaps included. A failed
// read is left to read, which reports it for its page.
func (pf *pageFile) prefetch(ids []uint64) {
	const gap, maxRun = 4, 256
	clear(pf.cache)
	if pf.cache == nil {
		pf.cache = map[uint64][]byte{}
	}
	n := pf.pages()
	ids = slices.DeleteFunc(slices.Compact(slices.Sorted(slices.Values(ids))), func(id uint64) bool { return id < 2 || id >= n })
	type run struct{ i, j int }
	var runs []run
	total := 0
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1]-ids[j] <= gap && ids[j+1]-ids[i] < maxRun {
			j++
		}
		runs = append(runs, run{i, j})
		total += int(ids[j]-ids[i]+1) * pf.pageSize
		i = j + 1
	}
	if len(pf.arena) < total {
		pf.arena = make([]byte, total)
	}
	used := 0
	for _, r := range runs {
		first := ids[r.i]
		size := int(ids[r.j]-first+1) * pf.pageSize
		buf := pf.arena[used : used+size]
		used += size
		if _, err := pf.f.ReadAt(buf, int64(first)*int64(pf.pageSize)); err != nil {
			continue
		}
		for _, id := range ids[r.i : r.j+1] {
			off := int(id-first) * pf.pageSize
			pf.cache[id] = buf[off : off+pf.pageSize : off+pf.pageSize]
		}
	}
}

// pageHeader is a page's first 16 bytes.
type pageHeader struct {
	id       uint64
	flags    uint16
	count    uint16
	overflow uint32
}

func readHeader(b []byte) pageHeader {
	return pageHeader{id: ne.Uint64(b), flags: ne.Uint16(b[8:]), count: ne.Uint16(b[10:]), overflow: ne.Uint32(b[12:])}
}

func pageKind(flags uint16) string {
	switch flags {
	case branchPageFlag:
		return "branch"
	case leafPageFlag:
		return "leaf"
	case metaPageFlag:
		return "meta"
	case freelistPageFlag:
		return "freelist"
	}
	return fmt.Sprintf("unknown (flags %#x)", flags)
}
