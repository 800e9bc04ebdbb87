package bolt

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"batos/internal/store"
)

// The structural check reads the bbolt file's pages itself, with pread
// (pagefile.go), never through bbolt's memory map: a damaged page costs it
// an error, not a fault. Every offset is bounds-checked against the page,
// its overflow and the file, and every walk is iterative (an explicit
// stack) with the pages seen marked, so a page pointing at its own
// ancestor ends as a reported problem instead of an endless descent. It
// checks what bbolt trusts blindly:
//
//   - both meta pages (magic, version, checksum), and which one bbolt reads
//     the file by: the valid one with the higher transaction id;
//   - the freelist: page ids in range, none listed twice;
//   - every bucket's tree: page ids in range and inside the file, headers
//     naming the page they are on, page kinds, element tables inside the
//     page and its overflow, each element's key and value where bbolt
//     writes them (one after the other from the end of the element
//     table), keys sorted within a page and within the bounds its parent
//     sets, no page referenced twice;
//   - that every page is either in use or free, not both, not neither.
//
// A quick check (deep false) reads only the headers of leaf pages in the
// buckets. What it skips, leaf elements, cannot make bbolt loop or write
// over a page in use; damage there shows as a checksum error, or, for an
// element lost to a damaged count or offset, as a record not found, which
// Verify reports.

// Owners of pages, for the in-use map: 0 is none.
const (
	ownerNone uint8 = iota
	ownerMeta
	ownerFreelist
	ownerRoot // the root bucket, which holds the others; each bucket follows
)

// pageCheck is one run of the structural check over the tree a meta page
// describes. The caller keeps that tree from changing while it runs: a
// bbolt read transaction begun before does, bbolt never reuses a page a
// reader may still see.
type pageCheck struct {
	pf       *pageFile
	meta     fileMeta
	deep     bool
	owner    []uint8 // per page below hwm: who uses it
	free     []bool  // per page below hwm: listed in the freelist
	freeOK   bool    // the freelist could be read
	names    []string
	bad      map[uint64]bool // pages found damaged, skipped by later walks
	buckets  map[string]bucketRef
	problems []store.Problem
	dropped  int
}

// bucketRef is where a bucket's tree starts: a page, or an inline page
// held in its value in the root bucket.
type bucketRef struct {
	root   uint64
	inline []byte
}

// newPageCheck prepares a check of the tree meta describes (metaProblems
// reports the meta pages themselves).
func newPageCheck(pf *pageFile, meta fileMeta, deep bool) *pageCheck {
	c := &pageCheck{pf: pf, meta: meta, deep: deep, bad: map[uint64]bool{}, buckets: map[string]bucketRef{},
		names: []string{"", "meta pages", "freelist", "root bucket"}}
	hwm := meta.hwm
	if hwm*uint64(pf.pageSize) > uint64(pf.size) || hwm < 2 {
		c.report(meta.page, "", "meta page %d says the file has %d pages; it holds %d", meta.page, hwm, pf.pages())
		hwm = min(max(hwm, 2), pf.pages())
	}
	c.meta.hwm = hwm
	c.owner = make([]uint8, hwm)
	c.free = make([]bool, hwm)
	c.owner[0], c.owner[1] = ownerMeta, ownerMeta
	return c
}

// report records a problem with the page structure.
func (c *pageCheck) report(page uint64, bucket, format string, args ...any) {
	if len(c.problems) >= maxProblems {
		c.dropped++
		return
	}
	c.problems = append(c.problems, store.Problem{Kind: store.CorruptFile, Page: page, Bucket: bucket, Detail: fmt.Sprintf(format, args...)})
}

// run checks everything: the freelist, the root bucket, each bucket, and
// that every page is in use or free.
func (c *pageCheck) run() error {
	if err := c.readFreelist(); err != nil {
		return err
	}
	if err := c.walkRoot(); err != nil {
		return err
	}
	for _, name := range bucketNames {
		if _, ok := c.buckets[string(name)]; !ok {
			continue
		}
		if err := c.walk(string(name), true, nil); err != nil {
			return err
		}
	}
	c.finish()
	return nil
}

// keySizes are the sizes of the keys of a bucket, where they have one: a
// lookup passes over a key of another size without a word.
var keySizes = map[string]int{string(bucketRevs): 16, string(bucketTxns): 8}

// bucketNames are the buckets under the root, in the order they are
// checked: the log before the revisions, which Verify checks against it.
var bucketNames = [][]byte{bucketMeta, bucketTxns, bucketRevs}

// inFile reports whether pages id .. id+n-1 are below the high-water mark
// and inside the file, and says why not.
func (c *pageCheck) inFile(id, n uint64) string {
	switch {
	case id < 2:
		return fmt.Sprintf("page %d is a meta page", id)
	case id >= c.meta.hwm || n > c.meta.hwm-id:
		if id+n > c.pf.pages() || id+n < id {
			return fmt.Sprintf("%s past the end of the file (%d pages)", pageSpan(id, n), c.pf.pages())
		}
		return fmt.Sprintf("%s past the high-water mark %d", pageSpan(id, n), c.meta.hwm)
	}
	return ""
}

// pageSpan names n pages from id: "page 7 lies", "pages 7-9 lie".
func pageSpan(id, n uint64) string {
	if n == 1 {
		return fmt.Sprintf("page %d lies", id)
	}
	return fmt.Sprintf("pages %d-%d lie", id, id+n-1)
}

// readFreelist reads the freelist page and marks the pages it lists.
func (c *pageCheck) readFreelist() error {
	id := c.meta.freelist
	if id == noFreelist {
		return nil // bbolt rebuilds it by scanning; nothing to check against
	}
	if why := c.inFile(id, 1); why != "" {
		c.report(id, "", "freelist: %s", why)
		return nil
	}
	b, err := c.pf.read(id, pageHeaderSize)
	if err != nil {
		c.report(id, "", "freelist page %d cannot be read: %v", id, err)
		return nil
	}
	h := readHeader(b)
	if h.id != id || h.flags != freelistPageFlag {
		c.report(id, "", "freelist page %d: header says page %d, kind %s", id, h.id, pageKind(h.flags))
		return nil
	}
	if why := c.inFile(id, 1+uint64(h.overflow)); why != "" {
		c.report(id, "", "freelist page %d with %d overflow pages: %s", id, h.overflow, why)
		return nil
	}
	if b, err = c.pf.read(id, (1+int(h.overflow))*c.pf.pageSize); err != nil {
		c.report(id, "", "freelist page %d cannot be read: %v", id, err)
		return nil
	}
	ids := b[pageHeaderSize:]
	count := uint64(h.count)
	if h.count == 0xFFFF {
		count = ne.Uint64(ids)
		ids = ids[8:]
	}
	if count > uint64(len(ids)/8) {
		c.report(id, "", "freelist page %d lists %d pages, more than its %d bytes hold", id, count, len(ids))
		return nil
	}
	c.claim(id, 1+uint64(h.overflow), ownerFreelist, "", 0)
	c.freeOK = true
	for i := range count {
		p := ne.Uint64(ids[8*i:])
		switch {
		case p < 2 || p >= c.meta.hwm:
			c.report(id, "", "freelist page %d lists page %d, outside 2-%d", id, p, c.meta.hwm-1)
		case c.free[p]:
			c.report(id, "", "freelist page %d lists page %d twice", id, p)
		default:
			c.free[p] = true
		}
	}
	return nil
}

// claim marks pages id .. id+n-1 as used by owner, reporting any page
// already used.
func (c *pageCheck) claim(id, n uint64, owner uint8, bucket string, from uint64) bool {
	ok := true
	for p := id; p < id+n; p++ {
		if prev := c.owner[p]; prev != ownerNone {
			c.report(p, bucket, "page %d (reached from page %d) is also used by %s", p, from, c.names[prev])
			ok = false
			continue
		}
		c.owner[p] = owner
	}
	return ok
}

// walkRoot checks the root bucket's tree and finds the buckets in it.
func (c *pageCheck) walkRoot() error {
	root := c.meta.root
	if why := c.inFile(root, 1); why != "" {
		c.report(c.meta.page, "", "meta page %d: the root bucket's %s", c.meta.page, why)
		return nil
	}
	c.buckets = map[string]bucketRef{}
	err := c.walkTree("", bucketRef{root: root}, ownerRoot, true, true, func(k, v []byte, flags uint32, page uint64) error {
		name := string(k)
		switch {
		case !slices.ContainsFunc(bucketNames, func(n []byte) bool { return bytes.Equal(n, k) }):
			c.report(page, "", "the root bucket holds an unknown key %q", k)
		case flags != bucketLeafFlag:
			c.report(page, "", "the root bucket's %q is not marked as a bucket (flags %#x)", k, flags)
		case len(v) < bucketHeaderLen:
			c.report(page, "", "bucket %s: header of %d bytes", name, len(v))
		default:
			ref := bucketRef{root: ne.Uint64(v)}
			if ref.root == 0 {
				ref.inline = v[bucketHeaderLen:]
			}
			c.buckets[name] = ref
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range bucketNames {
		if _, ok := c.buckets[string(name)]; !ok {
			c.report(root, string(name), "bucket %s is missing from the root bucket", name)
		}
	}
	return nil
}

// walk checks the tree of a bucket found by walkRoot (record: marking its
// pages as used, reporting damage), calling fn, if set, with each key and
// value in key order. Without record it only reads, skipping the pages
// found damaged before. fn's slices are valid only during the call.
func (c *pageCheck) walk(name string, record bool, fn func(k, v []byte) error) error {
	ref, ok := c.buckets[name]
	if !ok {
		return nil
	}
	owner := uint8(len(c.names))
	if record {
		c.names = append(c.names, "bucket "+name)
	}
	size := keySizes[name]
	return c.walkTree(name, ref, owner, record, fn != nil, func(k, v []byte, flags uint32, page uint64) error {
		var why string
		switch {
		case flags != 0:
			why = fmt.Sprintf("key %x is marked as a nested bucket; bucket %s holds none", k, name)
		case size != 0 && len(k) != size:
			why = fmt.Sprintf("a key of %d bytes, %x; the keys of bucket %s have %d", len(k), k[:min(len(k), 24)], name, size)
		}
		if why != "" {
			if record {
				c.report(page, name, "page %d: %s", page, why)
			}
			return nil
		}
		if fn == nil {
			return nil
		}
		return fn(k, v)
	})
}

// frame is a page waiting on the walk's stack: its id, the page that
// pointed at it, the bounds its keys must lie in (lo <= key < hi, nil for
// none) and its depth.
type frame struct {
	id, from uint64
	lo, hi   []byte
	depth    int
}

// walkTree walks one bucket's tree in key order with an explicit stack,
// calling leaf with every leaf element (reading every leaf page in full
// when elements is set or the check is deep).
func (c *pageCheck) walkTree(bucket string, ref bucketRef, owner uint8, record, elements bool, leaf func(k, v []byte, flags uint32, page uint64) error) error {
	w := &treeWalk{c: c, bucket: bucket, owner: owner, record: record, leaf: leaf, deep: c.deep || elements || owner == ownerRoot}
	if !record {
		w.seen = map[uint64]bool{}
	}
	if ref.root == 0 {
		return w.inline(ref.inline)
	}
	stack := []frame{{id: ref.root, from: c.meta.page}}
	var path []uint64 // the pages from the root to the current one
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		path = append(path[:f.depth], f.id)
		children, err := w.page(f, path[:f.depth])
		if err != nil {
			return err
		}
		if len(children) > 0 {
			ids := make([]uint64, len(children))
			for i, ch := range children {
				ids[i] = ch.id
			}
			c.pf.prefetch(ids)
		}
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, children[i])
		}
	}
	return nil
}

// treeWalk is the state of walkTree.
type treeWalk struct {
	c      *pageCheck
	bucket string
	owner  uint8
	record bool
	deep   bool // read leaf elements, not just headers
	leaf   func(k, v []byte, flags uint32, page uint64) error
	seen   map[uint64]bool // without record: pages visited
}

// report records a problem found from page (a pointer it holds).
func (w *treeWalk) report(page uint64, format string, args ...any) {
	if w.record {
		w.c.report(page, w.bucket, format, args...)
	}
}

// damaged records a problem with page's own content: later walks skip it.
func (w *treeWalk) damaged(page uint64, format string, args ...any) {
	w.c.bad[page] = true
	w.report(page, format, args...)
}

// page checks one page and returns the frames of its children.
func (w *treeWalk) page(f frame, ancestors []uint64) ([]frame, error) {
	c := w.c
	id := f.id
	switch why := c.inFile(id, 1); {
	case why != "":
		w.report(f.from, "page %d points at page %d: %s", f.from, id, why)
		return nil, nil
	case slices.Contains(ancestors, id):
		w.report(f.from, "page %d points at page %d, its own ancestor", f.from, id)
		return nil, nil
	case f.depth > maxTreeDepth:
		w.report(id, "page %d is %d levels deep", id, f.depth)
		return nil, nil
	case !w.record && (c.bad[id] || w.seen[id]):
		return nil, nil
	case w.record && !c.claim(id, 1, w.owner, w.bucket, f.from):
		return nil, nil
	}
	if w.seen != nil {
		w.seen[id] = true
	}
	first := pageHeaderSize
	if w.deep {
		first = c.pf.pageSize
	}
	b, err := c.pf.read(id, first)
	if err != nil {
		w.damaged(id, "page %d (reached from page %d) cannot be read: %v", id, f.from, err)
		return nil, nil
	}
	h := readHeader(b)
	if !w.header(h, f) {
		return nil, nil
	}
	if h.flags == leafPageFlag && !w.deep {
		return nil, nil
	}
	if size := (1 + int(h.overflow)) * c.pf.pageSize; len(b) < size {
		if b, err = c.pf.read(id, size); err != nil {
			w.damaged(id, "page %d cannot be read: %v", id, err)
			return nil, nil
		}
	}
	if h.flags == leafPageFlag {
		return nil, w.elements(b, id, h.count, f)
	}
	return w.branch(b, id, h.count, f), nil
}

// header checks a page's header, and claims its overflow pages.
func (w *treeWalk) header(h pageHeader, f frame) bool {
	c, id := w.c, f.id
	n := 1 + uint64(h.overflow)
	switch {
	case h.id != id:
		w.damaged(id, "page %d (reached from page %d): its header says page %d", id, f.from, h.id)
	case h.flags != branchPageFlag && h.flags != leafPageFlag:
		w.damaged(id, "page %d (reached from page %d) is not a branch or leaf page: %s", id, f.from, pageKind(h.flags))
	case c.inFile(id, n) != "":
		w.damaged(id, "page %d has %d overflow pages: %s", id, h.overflow, c.inFile(id, n))
	case w.record && !c.claim(id+1, n-1, w.owner, w.bucket, id):
		c.bad[id] = true
	case pageHeaderSize+uint64(h.count)*pageElementSize > n*uint64(c.pf.pageSize):
		w.damaged(id, "page %d: %d elements do not fit in %d bytes", id, h.count, n*uint64(c.pf.pageSize))
	case h.count == 0 && (h.flags == branchPageFlag || f.depth > 0):
		w.damaged(id, "page %d: an empty %s page below the root", id, pageKind(h.flags))
	default:
		return true
	}
	return false
}

// branch checks a branch page's elements and returns its children.
func (w *treeWalk) branch(b []byte, id uint64, count uint16, f frame) []frame {
	children := make([]frame, 0, count)
	var prev []byte
	next := uint64(pageHeaderSize + int(count)*pageElementSize)
	for i := range int(count) {
		e := pageHeaderSize + i*pageElementSize
		key, end, why := elementAt(b, e, next, ne.Uint32(b[e:]), ne.Uint32(b[e+4:]), 0)
		if why == "" {
			why = keyOrder(key, prev, f.lo, f.hi, i, int(count))
		}
		if why != "" {
			w.damaged(id, "page %d: branch element %d %s", id, i, why)
			return nil
		}
		prev, next = key, end
		children = append(children, frame{id: ne.Uint64(b[e+8:]), from: id, lo: bytes.Clone(key), depth: f.depth + 1})
	}
	for i := range children {
		if i+1 < len(children) {
			children[i].hi = children[i+1].lo
		} else {
			children[i].hi = f.hi
		}
	}
	return children
}

// elements checks a leaf page's elements and hands each to the walk's
// leaf function. Past a damaged element it goes on with the others (those
// it can read), reporting only the first problem of the page.
func (w *treeWalk) elements(b []byte, id uint64, count uint16, f frame) error {
	var prev []byte
	damaged := false
	next := uint64(pageHeaderSize + int(count)*pageElementSize)
	for i := range int(count) {
		e := pageHeaderSize + i*pageElementSize
		flags, pos, ksize, vsize := ne.Uint32(b[e:]), ne.Uint32(b[e+4:]), ne.Uint32(b[e+8:]), ne.Uint32(b[e+12:])
		key, end, why := elementAt(b, e, next, pos, ksize, vsize)
		if why == "" {
			why = keyOrder(key, prev, f.lo, f.hi, i, int(count))
		}
		if why == "" && flags&^bucketLeafFlag != 0 {
			why = fmt.Sprintf("has unknown flags %#x", flags)
		}
		if why != "" && !damaged {
			w.damaged(id, "page %d: leaf element %d %s", id, i, why)
			damaged = true
		}
		if key == nil || flags&^bucketLeafFlag != 0 {
			continue
		}
		prev, next = key, end
		start := uint64(e) + uint64(pos) + uint64(ksize)
		if err := w.leaf(key, b[start:start+uint64(vsize)], flags, id); err != nil {
			return err
		}
	}
	return nil
}

// inline checks a bucket held inline in its value in the root bucket: a
// leaf page with no page of its own.
func (w *treeWalk) inline(b []byte) error {
	root := w.c.meta.root
	if len(b) < pageHeaderSize {
		w.damaged(root, "bucket %s: inline page of %d bytes", w.bucket, len(b))
		return nil
	}
	h := readHeader(b)
	if h.flags != leafPageFlag {
		w.damaged(root, "bucket %s: its inline page is a %s page", w.bucket, pageKind(h.flags))
		return nil
	}
	if pageHeaderSize+int(h.count)*pageElementSize > len(b) {
		w.damaged(root, "bucket %s: inline page: %d elements do not fit in %d bytes", w.bucket, h.count, len(b))
		return nil
	}
	return w.elements(b, root, h.count, frame{})
}

// elementAt returns the key of the element at offset e and where its
// value ends, or says what is wrong. bbolt writes the keys and values of a
// page one after the other from the end of the element table, so each
// element's must start where the previous one's ended (next): a count or
// an offset or a size changed by damage breaks the chain.
func elementAt(b []byte, e int, next uint64, pos, ksize, vsize uint32) (key []byte, end uint64, why string) {
	start := uint64(e) + uint64(pos)
	end = start + uint64(ksize) + uint64(vsize)
	switch {
	case end > uint64(len(b)):
		return nil, next, fmt.Sprintf("(key size %d, value size %d at offset %d) reaches outside the page", ksize, vsize, pos)
	case ksize == 0:
		return nil, next, "has an empty key"
	case start != next:
		why = fmt.Sprintf("starts at byte %d of the page, not at %d where the one before ends", start, next)
	}
	return b[start : start+uint64(ksize)], end, why
}

// keyOrder says what is wrong with the place of key, element i of n: it
// must follow prev strictly, and lie within [lo, hi). Keys in order within
// the page, only the first and the last need comparing with the bounds.
func keyOrder(key, prev, lo, hi []byte, i, n int) string {
	switch {
	case i > 0 && bytes.Compare(key, prev) <= 0:
		return fmt.Sprintf("has key %x, not after the previous key %x", key, prev)
	case i == 0 && lo != nil && bytes.Compare(key, lo) < 0:
		return fmt.Sprintf("has key %x, before %x where the parent page starts this page", key, lo)
	case i == n-1 && hi != nil && bytes.Compare(key, hi) >= 0:
		return fmt.Sprintf("has key %x, not before %x where the parent page starts the next page", key, hi)
	}
	return ""
}

// finish reports pages both in use and free, and pages neither.
func (c *pageCheck) finish() {
	var leaked []uint64
	for p := uint64(2); p < c.meta.hwm; p++ {
		switch {
		case c.owner[p] != ownerNone && c.free[p]:
			c.report(p, strings.TrimPrefix(c.names[c.owner[p]], "bucket "), "page %d is in use and listed free", p)
		case c.owner[p] == ownerNone && !c.free[p] && c.freeOK:
			leaked = append(leaked, p)
		}
	}
	if len(leaked) > 0 {
		c.report(leaked[0], "", "%s neither in use nor free: %s", plural(len(leaked), "page is", "pages are"), pageRanges(leaked))
	}
	if c.dropped > 0 {
		c.problems = append(c.problems, store.Problem{Kind: store.CorruptFile, Detail: fmt.Sprintf("%d more problems with the page structure not listed", c.dropped)})
		c.dropped = 0
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// pageRanges formats ascending page ids as ranges, eliding the middle of
// a long list.
func pageRanges(ids []uint64) string {
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, fmt.Sprint(ids[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", ids[i], ids[j]))
		}
		i = j + 1
	}
	if len(parts) > 12 {
		parts = append(append(parts[:6:6], "..."), parts[len(parts)-6:]...)
	}
	return strings.Join(parts, ", ")
}
