package bolt_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"batos/internal/store"
	"batos/internal/store/bolt"
	"batos/internal/store/storetest"
)

// The tests here damage the page structure of the bbolt file: the pages
// bbolt trusts blindly, where a damaged byte once crashed batos. Each
// damage is applied twice: to a closed image, which Open must refuse
// naming the page and bucket, and which an AllowDamaged read-only open
// must let Verify report; and, where bbolt cannot be made to loop by it,
// to the file under an open store, whose reads (through bbolt, past the
// open check) must report it as errors, never crash.

// knownImage is an image built with known commits, and what it holds.
type knownImage struct {
	path    string
	root    store.OID
	final   map[store.OID]string      // each object's newest payload
	history map[store.OID][]store.TID // each object's serials, newest first
	log     map[store.TID][]store.OID // what each transaction wrote
	blobs   map[store.Digest]bool
}

// buildKnownImage commits objects over txs transactions: creations of
// perCreate objects each first, then updates of 1-3 objects, a few of
// them referring to a new blob, and last a root referring to everything.
func buildKnownImage(t testing.TB, path string, objects, txs, perCreate int, seed uint64) *knownImage {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	db, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	k := &knownImage{path: path, final: map[store.OID]string{}, history: map[store.OID][]store.TID{}, log: map[store.TID][]store.OID{}, blobs: map[store.Digest]bool{}}
	var all []store.OID
	serial := map[store.OID]store.TID{}
	commit := func(writes []store.Write, payloads []string) {
		t.Helper()
		tid, err := db.Commit(t.Context(), store.TxMeta{User: "builder", Description: fmt.Sprintf("commit %d", len(k.log))}, writes)
		if err != nil {
			t.Fatalf("commit: %v", err)
		}
		for i, w := range writes {
			k.final[w.OID] = payloads[i]
			k.history[w.OID] = append([]store.TID{tid}, k.history[w.OID]...)
			k.log[tid] = append(k.log[tid], w.OID)
			serial[w.OID] = tid
		}
		slices.Sort(k.log[tid])
	}
	pad := strings.Repeat("x", 60)
	for done := 0; done < objects; done += perCreate {
		oids, err := db.NewOIDs(t.Context(), min(perCreate, objects-done))
		if err != nil {
			t.Fatal(err)
		}
		var writes []store.Write
		var payloads []string
		for _, oid := range oids {
			p := fmt.Sprintf("%s.v0.%s", oid, pad)
			writes = append(writes, store.Write{OID: oid, Data: storetest.Rec(p)})
			payloads = append(payloads, p)
		}
		commit(writes, payloads)
		all = append(all, oids...)
	}
	for i := 0; len(k.log) < txs-1; i++ {
		var writes []store.Write
		var payloads []string
		for _, j := range rng.Perm(len(all))[:1+rng.IntN(3)] {
			oid := all[j]
			p := fmt.Sprintf("%s.v%d.%s", oid, i+1, pad)
			data := storetest.Rec(p)
			if rng.IntN(100) == 0 || len(k.blobs) == 0 {
				b, err := db.PutBlob(t.Context(), strings.NewReader(fmt.Sprintf("blob %d of %s", i, oid)))
				if err != nil {
					t.Fatal(err)
				}
				k.blobs[b.Digest] = true
				data = storetest.RecBlobs(p, b.Digest)
			}
			writes = append(writes, store.Write{OID: oid, Serial: serial[oid], Data: data})
			payloads = append(payloads, p)
		}
		commit(writes, payloads)
	}
	roots, err := db.NewOIDs(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	k.root = roots[0]
	commit([]store.Write{{OID: k.root, Data: storetest.Rec("root", all...)}}, []string{"root"})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return k
}

// copyImage copies the image's files into dir, the bbolt file only with
// withFile, and returns its new path.
func (k *knownImage) copyImage(t testing.TB, dir string, withFile bool) string {
	t.Helper()
	path := filepath.Join(dir, filepath.Base(k.path))
	files, err := filepath.Glob(k.path + "*")
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range files {
		if src == k.path && !withFile {
			continue
		}
		err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			dst := filepath.Join(dir, strings.TrimPrefix(p, filepath.Dir(k.path)))
			if fi.IsDir() {
				return os.MkdirAll(dst, 0o755)
			}
			return copyFile(p, dst)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// writeAt overwrites bytes of the file at path.
func writeAt(t testing.TB, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// readAt reads n bytes of the file at path.
func readAt(t testing.TB, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

func u16(v uint16) []byte { b := make([]byte, 2); bolt.PutUint16(b, v); return b }
func u32(v uint32) []byte { b := make([]byte, 4); bolt.PutUint32(b, v); return b }
func u64(v uint64) []byte { b := make([]byte, 8); bolt.PutUint64(b, v); return b }

// damage is one kind of damage to the page structure.
type damage struct {
	name string
	// apply damages the file at path, laid out as l, and returns the page
	// and bucket the damage must be reported at, and the objects and
	// transactions whose reads it may fail.
	apply func(t *testing.T, path string, l *bolt.FileLayout) (page uint64, bucket string)
	// live: applied under an open store, bbolt reads it without looping
	// and the reads must report it; false where only the open check can
	// keep bbolt from looping or misreading.
	live bool
}

func branchOf(t *testing.T, l *bolt.FileLayout, bucket string) bolt.FilePage {
	t.Helper()
	p, ok := l.Find(bucket, func(p bolt.FilePage) bool { return p.Branch })
	if !ok {
		t.Fatalf("bucket %s has no branch page", bucket)
	}
	return p
}

func leafOf(t *testing.T, l *bolt.FileLayout, bucket string, n int) bolt.FilePage {
	t.Helper()
	for _, p := range l.Pages {
		if p.Bucket == bucket && !p.Branch && p.Parent != 0 {
			if n == 0 {
				return p
			}
			n--
		}
	}
	t.Fatalf("bucket %s has too few leaf pages", bucket)
	return bolt.FilePage{}
}

var damages = []damage{
	{name: "branch page header", live: true, apply: func(t *testing.T, path string, l *bolt.FileLayout) (uint64, string) {
		p := branchOf(t, l, "revs")
		writeAt(t, path, l.Offset(p.ID)+bolt.HeaderFlags, u16(0x10)) // now says freelist
		return p.ID, "revs"
	}},
	{name: "leaf page header", live: true, apply: func(t *testing.T, path string, l *bolt.FileLayout) (uint64, string) {
		p := leafOf(t, l, "revs", 3)
		writeAt(t, path, l.Offset(p.ID)+bolt.HeaderFlags, u16(0x20)) // no kind at all
		return p.ID, "revs"
	}},
	{name: "leaf element length", live: true, apply: func(t *testing.T, path string, l *bolt.FileLayout) (uint64, string) {
		// The value now runs past the page, and 64 KiB past the end of the
		// file, into bbolt's map but not the file: SIGBUS.
		p := leafOf(t, l, "revs", 5)
		e := readAt(t, path, l.ElementOffset(p.ID, 2), 16)
		start := l.ElementOffset(p.ID, 2) + int64(bolt.Uint32(e[4:])) + int64(bolt.Uint32(e[8:]))
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		writeAt(t, path, l.ElementOffset(p.ID, 2)+12, u32(uint32(fi.Size()-start+64<<10)))
		return p.ID, "revs"
	}},
	{name: "leaf element offset", apply: func(t *testing.T, path string, l *bolt.FileLayout) (uint64, string) {
		p := leafOf(t, l, "revs", 6)
		writeAt(t, path, l.ElementOffset(p.ID, 4)+4, u32(uint32(16*(p.Count-4)+3))) // pos
		return p.ID, "revs"
	}},
	{name: "last leaf element's key size", live: true, apply: func(t *testing.T, path string, l *bolt.FileLayout) (uint64, string) {
		// The last element's key grows into its value: still in order and
		// inside the page, but no longer 16 bytes, so lookups pass over it.
		p := leafOf(t, l, "revs", 7)
		writeAt(t, path, l.ElementOffset(p.ID, p.Count-1)+8, u32(16+4))
		return p.ID, "revs"
	}},
	{name: "page past the end of the file", live: true, apply: func(t *testing.T, path string, l *bolt.FileLayout) (uint64, string) {
		p := branchOf(t, l, "revs")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		writeAt(t, path, l.ElementOffset(p.ID, 1)+8, u64(uint64(fi.Size())/uint64(l.PageSize)+10))
		return p.ID, "revs"
	}},
	{name: "branch pointing at its ancestor", apply: func(t *testing.T, path string, l *bolt.FileLayout) (uint64, string) {
		// The deepest branch page's last child becomes the bucket's root.
		var deepest bolt.FilePage
		for _, p := range l.Pages {
			if p.Bucket == "revs" && p.Branch && p.Depth >= deepest.Depth {
				deepest = p
			}
		}
		root, _ := l.Find("revs", func(p bolt.FilePage) bool { return p.Parent == 0 })
		if deepest.Depth == 0 {
			t.Logf("bucket revs is two levels deep: its root branch points at itself")
		}
		writeAt(t, path, l.ElementOffset(deepest.ID, deepest.Count-1)+8, u64(root.ID))
		return deepest.ID, "revs"
	}},
	{name: "zeroed log leaf", live: true, apply: func(t *testing.T, path string, l *bolt.FileLayout) (uint64, string) {
		p := leafOf(t, l, "txns", 1)
		writeAt(t, path, l.Offset(p.ID), make([]byte, l.PageSize))
		return p.ID, "txns"
	}},
	{name: "freelist listing a page in use", live: true, apply: func(t *testing.T, path string, l *bolt.FileLayout) (uint64, string) {
		leaf := leafOf(t, l, "revs", 0)
		// One free page is replaced by a page in use (or, with none free,
		// the list grows by it).
		hdr := readAt(t, path, l.Offset(l.Freelist), 16)
		if count := hdr[bolt.HeaderCount]; count == 0 && hdr[bolt.HeaderCount+1] == 0 {
			writeAt(t, path, l.Offset(l.Freelist)+bolt.HeaderCount, u16(1))
		}
		writeAt(t, path, l.Offset(l.Freelist)+16, u64(leaf.ID))
		return leaf.ID, "revs"
	}},
	{name: "freelist page header", live: true, apply: func(t *testing.T, path string, l *bolt.FileLayout) (uint64, string) {
		writeAt(t, path, l.Offset(l.Freelist)+bolt.HeaderID, u64(12345))
		return l.Freelist, ""
	}},
}

// TestDamagedPages applies each damage to copies of one image.
func TestDamagedPages(t *testing.T) {
	k := buildKnownImage(t, filepath.Join(t.TempDir(), "img.db"), 6000, 400, 20, 1)
	l, err := bolt.Layout(k.path)
	if err != nil {
		t.Fatal(err)
	}
	depth := 0
	for _, p := range l.Pages {
		if p.Bucket == "revs" {
			depth = max(depth, p.Depth+1)
		}
	}
	t.Logf("image: %d pages of %d bytes, bucket revs %d levels deep", l.HWM, l.PageSize, depth)
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			t.Run("at rest", func(t *testing.T) { testDamageAtRest(t, k, l, d) })
			if d.live {
				t.Run("under an open store", func(t *testing.T) { testDamageLive(t, k, l, d) })
			} else {
				t.Run("verify under an open store", func(t *testing.T) { testDamageLiveVerify(t, k, l, d) })
			}
		})
	}
}

// testDamageAtRest damages a closed image: Open refuses it naming the
// page; read-only with AllowDamaged, Verify reports it and reads fail
// with it.
func testDamageAtRest(t *testing.T, k *knownImage, l *bolt.FileLayout, d damage) {
	path := k.copyImage(t, t.TempDir(), true)
	page, bucket := d.apply(t, path, l)
	db, err := bolt.Open(path, nil)
	if err == nil {
		db.Close()
		t.Fatalf("Open of the damaged image succeeded")
	}
	var se *bolt.StructureError
	if !errors.As(err, &se) || !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Open: got %v, want a *StructureError", err)
	}
	if !hasProblem(se.Problems, page, bucket) {
		t.Errorf("Open: got %v, want it to report page %d of bucket %q", err, page, bucket)
	}
	t.Logf("Open: %v", err)
	// What to do about it is the CLI's to say (cmd/batos explains ErrCorrupt).
	for _, s := range []string{fmt.Sprintf("page %d", page), "not opened"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Open: error %q does not say %q", err, s)
		}
	}

	db, err = bolt.Open(path, &bolt.Options{ReadOnly: true, AllowDamaged: true})
	if err != nil {
		t.Fatalf("Open with AllowDamaged: %v", err)
	}
	defer db.Close()
	rep, err := db.Verify(t.Context(), storetest.Refs)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !hasProblem(rep.Problems, page, bucket) {
		t.Errorf("Verify: page %d of bucket %q not reported; got:\n%s", page, bucket, problemList(rep.Problems))
	}
	t.Logf("Verify:\n%s", problemList(rep.Problems))
	ctx := t.Context()
	_, err = db.Load(ctx, k.root)
	checkStructureError(t, "Load", err, page)
	_, err = db.History(ctx, k.root, 0)
	checkStructureError(t, "History", err, page)
	_, err = db.Log(ctx, store.LogQuery{})
	checkStructureError(t, "Log", err, page)
	if _, err := db.Pack(ctx, store.PackOptions{Before: time.Now(), Root: k.root, Refs: storetest.Refs}); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("Pack read-only: got %v, want ErrReadOnly", err)
	}
}

// testDamageLive damages the file under an open store (past the check at
// open): every read either returns what was committed or an error
// wrapping ErrCorrupt, some read reports the damage, Pack refuses, and
// Verify reports the page.
func testDamageLive(t *testing.T, k *knownImage, l *bolt.FileLayout, d damage) {
	ctx := t.Context()
	path := k.copyImage(t, t.TempDir(), true)
	db, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	page, bucket := d.apply(t, path, l)
	failed := checkReads(t, db, k)
	if _, err := db.Log(ctx, store.LogQuery{}); err != nil {
		failed++
		if !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("Log: got %v, want success or ErrCorrupt", err)
		}
	}
	freelist := bucket == "" || strings.HasPrefix(d.name, "freelist")
	if failed == 0 && !freelist {
		t.Errorf("no read reported the damage")
	}
	rep, err := db.Verify(ctx, storetest.Refs)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !hasProblem(rep.Problems, page, bucket) {
		t.Errorf("Verify: page %d of bucket %q not reported; got:\n%s", page, bucket, problemList(rep.Problems))
	}
	if freelist {
		return // bbolt works from the freelist it read at open; pack would succeed
	}
	if _, err := db.Pack(ctx, store.PackOptions{Before: time.Now(), Root: k.root, Refs: storetest.Refs}); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("Pack: got %v, want an error wrapping ErrCorrupt", err)
	}
}

// testDamageLiveVerify: damage bbolt could loop on or misread under an
// open store is still reported by Verify, which never reads through bbolt.
func testDamageLiveVerify(t *testing.T, k *knownImage, l *bolt.FileLayout, d damage) {
	path := k.copyImage(t, t.TempDir(), true)
	db, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	page, bucket := d.apply(t, path, l)
	done := make(chan struct{})
	var rep *store.Report
	go func() {
		defer close(done)
		rep, err = db.Verify(t.Context(), storetest.Refs)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("Verify did not finish in a minute")
	}
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !hasProblem(rep.Problems, page, bucket) {
		t.Errorf("Verify: page %d of bucket %q not reported; got:\n%s", page, bucket, problemList(rep.Problems))
	}
}

// checkReads loads every object and its history: each read returns what
// was committed or an error wrapping ErrCorrupt that names the object.
// It returns how many reads failed.
func checkReads(t testing.TB, db *bolt.DB, k *knownImage) int {
	t.Helper()
	ctx := t.Context()
	failed := 0
	for oid, want := range k.final {
		rec, err := db.Load(ctx, oid)
		switch {
		case err != nil:
			if failed++; failed == 1 {
				t.Logf("first failed read: Load(%s): %v", oid, err)
			}
			checkNamed(t, "Load", err, oid)
		case storetest.Payload(rec.Data) != want || rec.Serial != k.history[oid][0]:
			t.Errorf("Load(%s) = %q at %s, want %q at %s", oid, storetest.Payload(rec.Data), rec.Serial, want, k.history[oid][0])
		}
		revs, err := db.History(ctx, oid, 0)
		if err != nil {
			failed++
			checkNamed(t, "History", err, oid)
			continue
		}
		var got []store.TID
		for _, r := range revs {
			got = append(got, r.Serial)
		}
		if !slices.Equal(got, k.history[oid]) {
			t.Errorf("History(%s) = %v, want %v", oid, got, k.history[oid])
		}
	}
	return failed
}

// checkNamed checks that err reports damage and names oid, or the page or
// record (of another object) the damage is in.
func checkNamed(t testing.TB, op string, err error, oid store.OID) {
	t.Helper()
	if !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("%s(%s): got %v, want an error wrapping ErrCorrupt", op, oid, err)
		return
	}
	var ce *store.CorruptError
	var se *bolt.StructureError
	switch {
	case errors.As(err, &se):
		if len(se.Problems) == 0 || se.Problems[0].OID != oid {
			t.Errorf("%s(%s): %v does not name the object", op, oid, err)
		}
	case errors.As(err, &ce):
		// The record read is named; it may be a neighbour's, read to make
		// sure none of oid's revisions hides under a damaged key.
	default:
		t.Errorf("%s(%s): %v names neither object nor page", op, oid, err)
	}
}

// checkStructureError checks that err is the damage found at open.
func checkStructureError(t *testing.T, op string, err error, page uint64) {
	t.Helper()
	var se *bolt.StructureError
	if !errors.As(err, &se) || !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("%s: got %v, want the *StructureError found at open", op, err)
		return
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("page %d", page)) {
		t.Errorf("%s: %v does not name page %d", op, err, page)
	}
}

func hasProblem(problems []store.Problem, page uint64, bucket string) bool {
	return slices.ContainsFunc(problems, func(p store.Problem) bool {
		return p.Kind == store.CorruptFile && p.Page == page && p.Bucket == bucket && p.Detail != ""
	})
}

func problemList(problems []store.Problem) string {
	var b strings.Builder
	for i, p := range problems {
		if i == 20 {
			fmt.Fprintf(&b, "  ... %d more\n", len(problems)-i)
			break
		}
		fmt.Fprintf(&b, "  %s\n", p)
	}
	return b.String()
}
