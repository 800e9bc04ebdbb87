package bolt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	bbolt "go.etcd.io/bbolt"
	bbolterrors "go.etcd.io/bbolt/errors"

	"batos/internal/store"
)

// bbolt trusts its file: it reads pages through a memory map, follows page
// ids without bounds checks and panics on a page it cannot make sense of.
// A damaged byte could then end the process with a panic or a memory fault
// (SIGSEGV past the map, SIGBUS past the end of the file, or on a disk
// error). Two defences keep any damaged byte from crashing batos:
//
//   - Opening checks the page structure first (pagecheck.go), reading the
//     file with pread, and refuses a damaged file: a page pointing at its
//     own ancestor would make bbolt descend forever, which no recover can
//     stop, and a freelist listing a page in use would have bbolt write
//     over it.
//   - Every goroutine that touches the file through bbolt does so inside
//     guard, which turns a memory fault into a panic
//     (debug.SetPanicOnFault) and a panic into a *StructureError. bbolt
//     rolls its transaction back on the way out, so the store stays
//     usable.
//
// bbolt's own Tx.Check is never used: it runs in a goroutine of its own,
// where a fault is fatal, and recurses through the tree it checks.

// StructureError reports damage to the page structure of the bbolt file:
// what the check run at open found, or the fault or panic a read or write
// met. It unwraps to store.ErrCorrupt.
type StructureError struct {
	Path string
	// Op is what was being done: "open" (the file was refused), "check"
	// (the check at open found it, and the file was opened AllowDamaged),
	// "read", "write".
	Op string
	// Problems are store.CorruptFile problems, naming the page and the
	// bucket where known, and the object or transaction being read.
	Problems []store.Problem
}

func (e *StructureError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "store: %s: the page structure is damaged", e.Path)
	seen := map[string]bool{}
	for _, p := range e.Problems {
		text := strings.TrimPrefix(p.String(), store.CorruptFile.String()+": ")
		if seen[text] {
			continue
		}
		if len(seen) == 3 {
			b.WriteString("; and more")
			break
		}
		seen[text] = true
		b.WriteString("; ")
		b.WriteString(text)
	}
	switch e.Op {
	case "open":
		b.WriteString(" (the image was not opened)")
	case "check":
		b.WriteString(" (found when the image was opened)")
	}
	return b.String()
}

func (e *StructureError) Unwrap() error { return store.ErrCorrupt }

// guard runs fn, which reads or writes the bbolt file through bbolt, so
// that no damage can end the process: a memory fault becomes a panic, and
// a panic a *StructureError naming the page when the fault address lies in
// the file's map.
func (db *DB) guard(op string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &StructureError{Path: db.path, Op: op, Problems: []store.Problem{db.faultProblem(r)}}
		}
	}()
	return fn()
}

// faultProblem describes a recovered panic: where it happened, and for a
// memory fault the page of the file it hit.
func (db *DB) faultProblem(r any) store.Problem {
	p := store.Problem{Kind: store.CorruptFile}
	what := fmt.Sprintf("panic %q", fmt.Sprint(r))
	if f, ok := r.(interface{ Addr() uintptr }); ok {
		what = fmt.Sprintf("memory fault at %#x", f.Addr())
		if page, ok := db.pageAt(f.Addr()); ok {
			p.Page = page
			what = fmt.Sprintf("memory fault reading page %d", page)
		}
	}
	p.Detail = what + " in " + panicSite()
	return p
}

// pageAt maps an address in bbolt's memory map to a page of the file.
func (db *DB) pageAt(addr uintptr) (page uint64, ok bool) {
	b := db.file.Load()
	if b == nil {
		return 0, false
	}
	defer func() {
		if recover() != nil { // the map is gone
			ok = false
		}
	}()
	info := b.Info()
	fi, err := os.Stat(db.path)
	if err != nil || addr < info.Data || int64(addr-info.Data) >= fi.Size() || info.PageSize <= 0 {
		return 0, false
	}
	return uint64(addr-info.Data) / uint64(info.PageSize), true
}

// panicSite names the function that panicked, from inside the deferred
// function that recovered.
func panicSite() string {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	panicking := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic" || f.Function == "runtime.sigpanic" || f.Function == "runtime.panicmem" || f.Function == "runtime.panicmemAddr":
			panicking = true
		case panicking && !strings.HasPrefix(f.Function, "runtime."):
			return f.Function
		}
		if !more {
			return "an unknown function"
		}
	}
}

// viewFile runs fn in a guarded bbolt read transaction. The committer
// reads through it (it runs through Close); other readers use view.
func (db *DB) viewFile(fn func(*bbolt.Tx) error) error {
	if db.damage != nil {
		return db.damage
	}
	for {
		b := db.file.Load()
		err := db.guard("read", func() error { return b.View(fn) })
		if errors.Is(err, bbolterrors.ErrDatabaseNotOpen) && db.file.Load() != b {
			continue // a compaction swapped the file meanwhile
		}
		return err
	}
}

// update runs fn in a guarded bbolt write transaction.
func (db *DB) update(fn func(*bbolt.Tx) error) error {
	if db.damage != nil {
		return db.damage
	}
	for {
		b := db.file.Load()
		err := db.guard("write", func() error { return b.Update(fn) })
		if errors.Is(err, bbolterrors.ErrDatabaseNotOpen) && db.file.Load() != b {
			continue // a compaction swapped the file meanwhile
		}
		return err
	}
}

// openBolt opens the bbolt file, guarded: bbolt reads the meta pages and
// the freelist as it opens. Should it panic, the file it opened is closed,
// which releases its lock.
func (db *DB) openBolt(bo *bbolt.Options) (*bbolt.DB, error) {
	var file *os.File
	opts := *bo
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	var b *bbolt.DB
	err := db.guard("open", func() error {
		var err error
		b, err = bbolt.Open(db.path, 0o644, &opts)
		return err
	})
	var se *StructureError
	if errors.As(err, &se) && file != nil {
		file.Close()
	}
	return b, err
}

// fullCheckBytes is the size up to which opening checks a file in full
// even after a clean close. Both checks read the whole file; on an image
// of a million objects (196 MiB, page cache warm) the quick one takes
// about 25 ms, the full one about 40 ms, bbolt's own open a few: the quick
// check keeps opening it within the 50 ms bench store allows. What the
// quick check skips, leaf elements, cannot make bbolt loop or fault
// fatally; damage there shows as checksum errors or, an element lost to a
// damaged count or offset, as a record not found that Verify reports.
const fullCheckBytes = 64 << 20

// checkAtOpen runs the structural check before bbolt opens the file, and
// refuses a damaged file with a *StructureError — unless the options allow
// it (AllowDamaged, with ReadOnly): then the damage is remembered, every
// read through bbolt fails with it and Verify reports it. The check is
// full after an unclean shutdown or on a file up to fullCheckBytes, quick
// (leaf pages' headers, not their elements) otherwise.
func (db *DB) checkAtOpen() error {
	f, err := os.Open(db.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // bbolt creates it
	}
	if err != nil {
		return err
	}
	defer f.Close()
	pf, err := openPageFile(f)
	if err != nil {
		return fmt.Errorf("check page structure: %w", err)
	}
	if pf.size == 0 {
		return nil
	}
	var problems []store.Problem
	if pf.meta == nil {
		problems = metaProblems(pf)
	} else {
		c := newPageCheck(pf, *pf.meta, pf.size <= fullCheckBytes || !closedCleanly(db.path+".wal"))
		if err := c.run(); err != nil {
			return fmt.Errorf("check page structure: %w", err)
		}
		problems = c.problems
	}
	if len(problems) == 0 {
		return nil
	}
	se := &StructureError{Path: db.path, Op: "open", Problems: problems}
	if !db.opts.AllowDamaged || !db.opts.ReadOnly {
		return se
	}
	db.damage = &StructureError{Path: db.path, Op: "check", Problems: problems}
	return nil
}

// readCounters loads the counters at open, through bbolt, or from the
// pages themselves when the file is damaged.
func (db *DB) readCounters() error {
	if db.damage == nil {
		return db.guard("open", func() error { return db.file.Load().View(db.loadCounters) })
	}
	f, err := os.Open(db.path)
	if err != nil {
		return err
	}
	defer f.Close()
	pf, err := openPageFile(f)
	if err != nil || pf.meta == nil {
		return errors.Join(err, db.damage)
	}
	c := newPageCheck(pf, *pf.meta, false)
	if err := c.walkRoot(); err != nil {
		return err
	}
	db.nextOID.Store(uint64(store.RootOID))
	counter := func(name []byte, raise func(k, v []byte)) error {
		return c.walk(string(name), false, func(k, v []byte) error { raise(k, v); return nil })
	}
	err = counter(bucketMeta, func(k, v []byte) {
		switch {
		case string(k) == string(keyLastTID) && len(v) == 8:
			db.lastTID.Store(max(db.lastTID.Load(), beUint64(v)))
		case string(k) == string(keyMaxOID) && len(v) == 8:
			db.raiseNextOID(store.OID(beUint64(v)))
		}
	})
	if err == nil {
		err = counter(bucketTxns, func(k, _ []byte) {
			if len(k) == 8 {
				db.lastTID.Store(max(db.lastTID.Load(), beUint64(k)))
			}
		})
	}
	if err == nil {
		err = counter(bucketRevs, func(k, _ []byte) {
			if len(k) == 16 {
				db.raiseNextOID(store.OID(beUint64(k)))
			}
		})
	}
	return err
}

// CheckStructure runs the full structural check of the bbolt file as it
// is now and returns what it found, each a store.CorruptFile problem. It
// is Verify without the records, log entries and blobs. Safe for
// concurrent use.
func (db *DB) CheckStructure() ([]store.Problem, error) {
	var problems []store.Problem
	err := db.pinned(func(pf *pageFile, meta fileMeta) error {
		c := newPageCheck(pf, meta, true)
		if err := c.run(); err != nil {
			return err
		}
		problems = append(settledMetaProblems(pf), c.problems...)
		return nil
	})
	return problems, err
}

// pinned calls fn with the file's pages as of a bbolt read transaction it
// holds open meanwhile: bbolt reuses no page such a reader may see, so
// the tree fn walks with pread stays put while commits go on.
func (db *DB) pinned(fn func(pf *pageFile, meta fileMeta) error) error {
	f, err := os.Open(db.path)
	if err != nil {
		return err
	}
	defer f.Close()
	// Two commits after the transaction begins overwrite its meta page:
	// a few tries find it still there.
	for range 8 {
		var found bool
		err := db.guard("read", func() error {
			return db.file.Load().View(func(tx *bbolt.Tx) error {
				pf, err := openPageFile(f)
				if err != nil {
					return err
				}
				for _, m := range pf.metas {
					if m.invalid == nil && m.txid == uint64(tx.ID()) {
						found = true
						return fn(pf, m)
					}
				}
				return nil
			})
		})
		if errors.Is(err, bbolterrors.ErrDatabaseNotOpen) {
			return store.ErrClosed
		}
		if err != nil || found {
			return err
		}
	}
	return fmt.Errorf("check page structure: the file changed under every try")
}

// metaProblems reports meta pages that fail validation. bbolt reads the
// file by the other one; if it was the newer, the transaction it recorded
// is lost from the file.
func metaProblems(pf *pageFile) []store.Problem {
	var problems []store.Problem
	for _, m := range pf.metas {
		if m.invalid != nil {
			problems = append(problems, store.Problem{Kind: store.CorruptFile, Page: m.page, Detail: fmt.Sprintf("meta page %d is invalid: %v", m.page, m.invalid)})
		}
	}
	return problems
}

// settledMetaProblems reports the meta pages that failed validation when
// pf read them and still do: a commit running meanwhile rewrites the meta
// page not in use, and a read in the middle of that write would fail.
func settledMetaProblems(pf *pageFile) []store.Problem {
	again, err := openPageFile(pf.f)
	if err != nil {
		return metaProblems(pf)
	}
	var problems []store.Problem
	for _, p := range metaProblems(pf) {
		if again.metas[p.Page].invalid != nil {
			problems = append(problems, p)
		}
	}
	return problems
}
