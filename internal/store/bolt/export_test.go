package bolt

import (
	"fmt"
	"os"
)

// FilePage is a page of an intact bbolt file, for tests that damage it.
type FilePage struct {
	ID       uint64
	Bucket   string // "" for the root bucket
	Branch   bool
	Parent   uint64 // 0 for a bucket's root page
	Depth    int
	Count    int
	Overflow int
	// Elements: a leaf's keys and values; a branch's keys and children.
	Keys     [][]byte
	Values   [][]byte
	Children []uint64
}

// FileLayout is what the meta page in use says and the pages of every
// bucket's tree.
type FileLayout struct {
	PageSize int
	Meta     uint64 // the meta page bbolt reads the file by
	Freelist uint64
	HWM      uint64
	Pages    []FilePage
}

// Layout reads the layout of the intact bbolt file at path.
func Layout(path string) (*FileLayout, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pf, err := openPageFile(f)
	if err != nil {
		return nil, err
	}
	if pf.meta == nil {
		return nil, fmt.Errorf("no valid meta page")
	}
	l := &FileLayout{PageSize: pf.pageSize, Meta: pf.meta.page, Freelist: pf.meta.freelist, HWM: pf.meta.hwm}
	roots := map[string]uint64{}
	if err := l.walk(pf, "", pf.meta.root, 0, 0, roots); err != nil {
		return nil, err
	}
	for _, name := range bucketNames {
		if root := roots[string(name)]; root != 0 {
			if err := l.walk(pf, string(name), root, 0, 0, nil); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

func (l *FileLayout) walk(pf *pageFile, bucket string, id, parent uint64, depth int, roots map[string]uint64) error {
	b, err := pf.read(id, pf.pageSize)
	if err != nil {
		return err
	}
	h := readHeader(b)
	if h.overflow > 0 {
		if b, err = pf.read(id, (1+int(h.overflow))*pf.pageSize); err != nil {
			return err
		}
	}
	b = append([]byte(nil), b...)
	p := FilePage{ID: id, Bucket: bucket, Branch: h.flags == branchPageFlag, Parent: parent, Depth: depth, Count: int(h.count), Overflow: int(h.overflow)}
	for i := range int(h.count) {
		e := pageHeaderSize + i*pageElementSize
		if p.Branch {
			pos, ksize := ne.Uint32(b[e:]), ne.Uint32(b[e+4:])
			p.Keys = append(p.Keys, b[e+int(pos):e+int(pos)+int(ksize)])
			p.Children = append(p.Children, ne.Uint64(b[e+8:]))
			continue
		}
		pos, ksize, vsize := ne.Uint32(b[e+4:]), ne.Uint32(b[e+8:]), ne.Uint32(b[e+12:])
		k := b[e+int(pos) : e+int(pos)+int(ksize)]
		v := b[e+int(pos)+int(ksize) : e+int(pos)+int(ksize)+int(vsize)]
		p.Keys, p.Values = append(p.Keys, k), append(p.Values, v)
		if roots != nil && ne.Uint32(b[e:])&bucketLeafFlag != 0 {
			roots[string(k)] = ne.Uint64(v)
		}
	}
	l.Pages = append(l.Pages, p)
	for _, child := range p.Children {
		if err := l.walk(pf, bucket, child, id, depth+1, roots); err != nil {
			return err
		}
	}
	return nil
}

// Find returns the first page of bucket that satisfies ok.
func (l *FileLayout) Find(bucket string, ok func(FilePage) bool) (FilePage, bool) {
	for _, p := range l.Pages {
		if p.Bucket == bucket && ok(p) {
			return p, true
		}
	}
	return FilePage{}, false
}

// Offset is where page id starts in the file.
func (l *FileLayout) Offset(id uint64) int64 { return int64(id) * int64(l.PageSize) }

// ElementOffset is where element i's 16 bytes start in the file.
func (l *FileLayout) ElementOffset(id uint64, i int) int64 {
	return l.Offset(id) + pageHeaderSize + int64(i)*pageElementSize
}

// Encode helpers in the file's byte order.
func PutUint16(b []byte, v uint16) { ne.PutUint16(b, v) }
func PutUint32(b []byte, v uint32) { ne.PutUint32(b, v) }
func PutUint64(b []byte, v uint64) { ne.PutUint64(b, v) }
func Uint32(b []byte) uint32       { return ne.Uint32(b) }

// Page header field offsets, for tests that damage headers.
const (
	HeaderID       = 0
	HeaderFlags    = 8
	HeaderCount    = 10
	HeaderOverflow = 12
)
