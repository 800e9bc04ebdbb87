// Package copytest is the conformance suite of store.Importer and of
// storecopy, which every engine that imports runs.
package copytest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"batos/internal/store"
	"batos/internal/store/storecopy"
	"batos/internal/store/storetest"
)

var ctx = context.Background()

// Opener opens the store called name, as storetest's does.
type Opener = storetest.Opener

// Rec, RecBlobs, Refs and MustVerify are storetest's record format and
// checks.
var (
	Rec        = storetest.Rec
	RecBlobs   = storetest.RecBlobs
	Refs       = storetest.Refs
	MustVerify = storetest.MustVerify
)

func oids(t testing.TB, s store.Engine, n int) []store.OID {
	t.Helper()
	o, err := s.NewOIDs(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func commit(t testing.TB, s store.Engine, writes ...store.Write) store.TID {
	t.Helper()
	tid, err := s.Commit(ctx, store.TxMeta{User: "tester", Description: "copytest"}, writes)
	if err != nil {
		t.Fatal(err)
	}
	return tid
}

func load(t testing.TB, s store.Engine, oid store.OID) store.Record {
	t.Helper()
	r, err := s.Load(ctx, oid)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Run is the conformance suite of store.Importer: an image copied
// with storecopy into an engine opened by dst (from one opened by src)
// reads as the original, log and histories alike, verifies clean, and
// goes on from where the original was. Engines that import run it with
// themselves on both sides, and with every other engine.
func Run(t *testing.T, src, dst Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener, Opener)
	}{
		{"WholeHistory", testCopyWholeHistory},
		{"PackedSource", testCopyPackedSource},
		{"Refusals", testCopyRefusals},
		{"PackCutCarried", testCopyPackCut},
		{"LiveSource", testCopyLiveSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, src, dst) })
	}
}

// fillHistory writes a history with what a copy must carry: creations,
// updates, metadata and extensions, an undone update, an undone creation
// (a deletion), and blobs shared between revisions. It answers the root.
func fillHistory(t *testing.T, s store.Engine) store.OID {
	t.Helper()
	o := oids(t, s, 4)
	root, a, b, gone := o[0], o[1], o[2], o[3]
	blob1, err := s.PutBlob(ctx, strings.NewReader("the first blob"))
	if err != nil {
		t.Fatal(err)
	}
	blob2, err := s.PutBlob(ctx, bytes.NewReader(bytes.Repeat([]byte{0, 1, 2, 255}, 300_000)))
	if err != nil {
		t.Fatal(err)
	}
	t1 := commit(t, s, store.Write{OID: root, Data: Rec("root", a, b)}, store.Write{OID: a, Data: Rec("a1")}, store.Write{OID: b, Data: RecBlobs("b1", blob1.Digest)})
	t2, err := s.Commit(ctx, store.TxMeta{User: "alice", Description: "a second a", Extension: map[string]string{"topic": "commit.eval", "note": "é"}},
		[]store.Write{{OID: a, Serial: t1, Data: Rec("a2")}})
	if err != nil {
		t.Fatal(err)
	}
	t3 := commit(t, s, store.Write{OID: b, Serial: t1, Data: RecBlobs("b2", blob1.Digest, blob2.Digest)})
	t4 := commit(t, s, store.Write{OID: a, Serial: t2, Data: Rec("a3")})
	if _, err := s.Undo(ctx, t4, store.TxMeta{User: "bob", Description: "undo a3"}); err != nil {
		t.Fatal(err)
	}
	t5 := commit(t, s, store.Write{OID: gone, Data: Rec("short-lived")})
	if _, err := s.Undo(ctx, t5, store.TxMeta{Description: "undo creation"}); err != nil {
		t.Fatal(err)
	}
	_ = t3
	return root
}

func copyAndCompare(t *testing.T, src, dst store.Engine) storecopy.Result {
	t.Helper()
	var calls, last, total int
	res, err := storecopy.Copy(ctx, src, dst, storecopy.Options{Refs: Refs, Progress: func(done, all int) {
		calls++
		if done <= last || all < done {
			t.Errorf("progress went from %d to %d of %d", last, done, all)
		}
		last, total = done, all
	}})
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if calls == 0 || last != total {
		t.Errorf("progress: %d calls, ended at %d of %d", calls, last, total)
	}
	if err := storecopy.Compare(ctx, src, dst, 0); err != nil {
		t.Fatalf("the copy differs: %v", err)
	}
	MustVerify(t, dst)
	// (A pack may have moved the source's last TID past its newest
	// transaction: the copy's is that transaction's.)
	if newest := mustLog(t, src)[0].TID; dst.LastTID() != newest {
		t.Errorf("the copy's last TID is %s, the source's newest transaction %s", dst.LastTID(), newest)
	}
	return res
}

func testCopyWholeHistory(t *testing.T, openSrc, openDst Opener) {
	src := openSrc(t, "src")
	root := fillHistory(t, src)
	dst := openDst(t, "dst")
	res := copyAndCompare(t, src, dst)
	if res.Transactions != 7 || res.Blobs != 2 || res.Missing != 0 {
		t.Errorf("copied %+v, want 7 transactions and 2 blobs, none missing", res)
	}
	// The deletion came across as a deletion.
	var deleted int
	for _, tx := range mustLog(t, dst) {
		for _, oid := range tx.OIDs {
			revs, _ := dst.History(ctx, oid, 0)
			for _, r := range revs {
				if r.Serial == tx.TID && r.Deleted {
					deleted++
				}
			}
		}
	}
	if deleted != 1 {
		t.Errorf("%d deletions in the copy, want the one undone creation", deleted)
	}
	// The copy goes on from there: new OIDs are fresh, a commit based on
	// a copied serial succeeds and comes after every copied TID, and a
	// stale one conflicts.
	fresh := oids(t, dst, 1)[0]
	for _, tx := range mustLog(t, dst) {
		for _, oid := range tx.OIDs {
			if fresh <= oid {
				t.Fatalf("the copy allocates %s, not beyond the copied %s", fresh, oid)
			}
		}
	}
	cur := load(t, dst, root)
	tid := commit(t, dst, store.Write{OID: root, Serial: cur.Serial, Data: Rec("root again")})
	if tid <= src.LastTID() {
		t.Errorf("a commit after the copy got %s, not after %s", tid, src.LastTID())
	}
	if _, err := dst.Commit(ctx, store.TxMeta{}, []store.Write{{OID: root, Serial: cur.Serial, Data: Rec("stale")}}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a stale commit after the copy: %v, want a conflict", err)
	}
	// The blobs read back whole.
	for _, tx := range mustLog(t, src) {
		for _, oid := range tx.OIDs {
			rec, err := src.LoadAt(ctx, oid, tx.TID)
			if err != nil {
				continue
			}
			_, blobs, _ := Refs(rec.Data)
			for _, d := range blobs {
				want := readBlob(t, src, d)
				if got := readBlob(t, dst, d); !bytes.Equal(got, want) {
					t.Errorf("blob %s reads %d bytes in the copy, %d in the source", d, len(got), len(want))
				}
			}
		}
	}
}

func testCopyPackedSource(t *testing.T, openSrc, openDst Opener) {
	src := openSrc(t, "src")
	root := fillHistory(t, src)
	time.Sleep(2 * time.Millisecond)
	if _, err := src.Pack(ctx, store.PackOptions{Before: time.Now(), Root: root, Refs: Refs}); err != nil {
		t.Fatal(err)
	}
	dst := openDst(t, "dst")
	res := copyAndCompare(t, src, dst)
	if res.Missing == 0 {
		t.Errorf("copied %+v: the pack dropped revisions the log still names, and none was missing", res)
	}
	// What was copied, the log entries without revisions and the pack
	// mark included, is there when the copy is opened again.
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	again := openDst(t, "dst")
	if err := storecopy.Compare(ctx, src, again, 0); err != nil {
		t.Errorf("the copy reopened differs: %v", err)
	}
	MustVerify(t, again)
}

func testCopyRefusals(t *testing.T, openSrc, openDst Opener) {
	src := openSrc(t, "src")
	fillHistory(t, src)
	dst := openDst(t, "dst")
	o := oids(t, dst, 1)[0]
	commit(t, dst, store.Write{OID: o, Data: Rec("already here")})
	if _, err := storecopy.Copy(ctx, src, dst, storecopy.Options{Refs: Refs}); !errors.Is(err, storecopy.ErrNotEmpty) {
		t.Errorf("a copy into a store with transactions: %v, want ErrNotEmpty", err)
	}
	im, ok := dst.(store.Importer)
	if !ok {
		t.Fatalf("%T does not import", dst)
	}
	last := dst.LastTID()
	now := time.Now()
	for name, tc := range map[string]struct {
		info    store.TxInfo
		records []store.ImportRecord
	}{
		"a TID not after the store's": {store.TxInfo{Time: now, TID: last, OIDs: []store.OID{o}}, []store.ImportRecord{{OID: o, Data: Rec("x")}}},
		"a log entry naming nothing":  {store.TxInfo{Time: now, TID: last + 1000}, nil},
		"a record the log does not name": {store.TxInfo{Time: now, TID: last + 1000, OIDs: []store.OID{o}},
			[]store.ImportRecord{{OID: o + 1, Data: Rec("x")}}},
		"records out of order": {store.TxInfo{Time: now, TID: last + 1000, OIDs: []store.OID{o, o + 1}},
			[]store.ImportRecord{{OID: o + 1, Data: Rec("x")}, {OID: o, Data: Rec("y")}}},
		"a deletion with data": {store.TxInfo{Time: now, TID: last + 1000, OIDs: []store.OID{o}}, []store.ImportRecord{{OID: o, Data: Rec("x"), Deleted: true}}},
		"the zero TID":         {store.TxInfo{Time: now, OIDs: []store.OID{o}}, []store.ImportRecord{{OID: o, Data: Rec("x")}}},
		"a zero time":          {store.TxInfo{TID: last + 1000, OIDs: []store.OID{o}}, []store.ImportRecord{{OID: o, Data: Rec("x")}}},
	} {
		if err := im.Import(ctx, tc.info, tc.records); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("import with %s: %v, want ErrInvalid", name, err)
		}
	}
	if dst.LastTID() != last {
		t.Errorf("refused imports moved the store from %s to %s", last, dst.LastTID())
	}
}

func mustLog(t *testing.T, s store.Engine) []store.TxInfo {
	t.Helper()
	txs, err := s.Log(ctx, store.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return txs
}

func readBlob(t *testing.T, s store.Engine, d store.Digest) []byte {
	t.Helper()
	rc, err := s.OpenBlob(ctx, d)
	if err != nil {
		t.Fatalf("open blob %s: %v", d, err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rc); err != nil {
		t.Fatalf("read blob %s: %v", d, err)
	}
	return buf.Bytes()
}

// testCopyPackCut: a transaction whose revisions all survive a pack, but
// which the pack's cut covers, is refused by the copy's undo as by the
// source's: the revision before it is gone, so an undo would delete the
// object, not restore it.
func testCopyPackCut(t *testing.T, openSrc, openDst Opener) {
	src := openSrc(t, "src")
	o := oids(t, src, 2)
	root, a := o[0], o[1]
	t1 := commit(t, src, store.Write{OID: root, Data: Rec("root", a)}, store.Write{OID: a, Data: Rec("a1")})
	t2 := commit(t, src, store.Write{OID: a, Serial: t1, Data: Rec("a2")})
	time.Sleep(2 * time.Millisecond)
	if _, err := src.Pack(ctx, store.PackOptions{Before: time.Now(), Root: root, Refs: Refs}); err != nil {
		t.Fatal(err)
	}
	var ue *store.UndoError
	if _, err := src.Undo(ctx, t2, store.TxMeta{}); !errors.As(err, &ue) || ue.Reason == "" {
		t.Fatalf("the source undoes %s after its pack: %v", t2, err)
	}
	dst := openDst(t, "dst")
	copyAndCompare(t, src, dst)
	if _, err := dst.Undo(ctx, t2, store.TxMeta{}); !errors.As(err, &ue) || ue.Reason == "" {
		t.Errorf("the copy undoes %s, which its source refuses for its pack: %v", t2, err)
	}
	if got := load(t, dst, a); string(got.Data) != string(Rec("a2")) {
		t.Errorf("a in the copy: %s", got.Data)
	}
	MustVerify(t, dst)
}

// testCopyLiveSource: a source that goes on committing while it is
// copied (another node of a database) is copied as it was when the copy
// began, and compares equal up to there; compared as it reads now, it
// differs.
func testCopyLiveSource(t *testing.T, srcOpen, dstOpen Opener) {
	src := srcOpen(t, "src")
	root := fillHistory(t, src)
	hot := oids(t, src, 1)[0]
	serial := commit(t, src, store.Write{OID: hot, Data: Rec("0")})
	for i := range 50 {
		serial = commit(t, src, store.Write{OID: hot, Serial: serial, Data: Rec(string(rune('a' + i%26)))})
	}
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		defer func() { done <- n }()
		s := serial
		for {
			select {
			case <-stop:
				return
			default:
			}
			tid, err := src.Commit(ctx, store.TxMeta{Description: "live"}, []store.Write{{OID: hot, Serial: s, Data: Rec("live")}})
			if err != nil {
				t.Errorf("a commit beside the copy: %v", err)
				return
			}
			s, n = tid, n+1
		}
	}()
	dst := dstOpen(t, "dst")
	res, err := storecopy.Copy(ctx, src, dst, storecopy.Options{Refs: Refs})
	if err != nil {
		close(stop)
		<-done
		t.Fatalf("copy of a live source: %v", err)
	}
	// Commits go on until the copy is compared.
	for deadline := time.Now().Add(5 * time.Second); src.LastTID() <= res.Through && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if err := storecopy.Compare(ctx, src, dst, res.Through); err != nil {
		t.Errorf("the copy differs from the source as it was: %v", err)
	}
	close(stop)
	if n := <-done; n == 0 {
		t.Fatal("nothing was committed beside the copy")
	}
	if src.LastTID() > res.Through {
		if err := storecopy.Compare(ctx, src, dst, 0); err == nil {
			t.Error("compared with the source as it reads now, the copy of an older state does not differ")
		}
	}
	if dst.LastTID() != res.Through {
		t.Errorf("the copy ends at %s, the copy says through %s", dst.LastTID(), res.Through)
	}
	MustVerify(t, dst)
	if got := load(t, dst, root); !bytes.Equal(got.Data, load(t, src, root).Data) {
		t.Error("the root reads differently")
	}
}
