package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/store"
)

// Opener opens the store called name, creating it empty the first time.
// Opening a name again after closing it must show what was committed.
// The opener arranges for the store to be closed when the test ends.
type Opener func(t testing.TB, name string) store.Engine

// Run runs the conformance suite against an engine.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"CommitLoad", testCommitLoad},
		{"InvalidCommits", testInvalidCommits},
		{"ConflictNamesEveryObject", testConflict},
		{"CreateConflict", testCreateConflict},
		{"LoadAt", testLoadAt},
		{"History", testHistory},
		{"Log", testLog},
		{"Undo", testUndo},
		{"UndoCreation", testUndoCreation},
		{"Pack", testPack},
		{"PackBlobs", testPackBlobs},
		{"PackWhileCommitting", testPackWhileCommitting},
		{"Blobs", testBlobs},
		{"ConcurrentConflictingWriters", testConcurrentWriters},
		{"Reopen", testReopen},
		{"VerifyFindsDanglingReferences", testVerifyDangling},
		{"Closed", testClosed},
		{"SerialAt", testSerialAt},
		{"SerialAtWhileCommitting", testSerialAtWhileCommitting},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

var ctx = context.Background()

// MustVerify fails the test unless the store verifies cleanly.
func MustVerify(t testing.TB, s store.Engine) *store.Report {
	t.Helper()
	rep, err := s.Verify(ctx, Refs)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, p := range rep.Problems {
		t.Errorf("verify: %s", p)
	}
	return rep
}

func oids(t testing.TB, s store.Engine, n int) []store.OID {
	t.Helper()
	o, err := s.NewOIDs(ctx, n)
	if err != nil {
		t.Fatalf("NewOIDs: %v", err)
	}
	return o
}

// commit writes payloads to objects based on the given serials.
func commit(t testing.TB, s store.Engine, writes ...store.Write) store.TID {
	t.Helper()
	tid, err := s.Commit(ctx, store.TxMeta{User: "test"}, writes)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	return tid
}

func load(t testing.TB, s store.Engine, oid store.OID) store.Record {
	t.Helper()
	rec, err := s.Load(ctx, oid)
	if err != nil {
		t.Fatalf("load %s: %v", oid, err)
	}
	return rec
}

func testCommitLoad(t *testing.T, open Opener) {
	s := open(t, "db")
	o := oids(t, s, 2)
	if o[0] <= store.RootOID || o[1] == o[0] {
		t.Fatalf("NewOIDs gave %v", o)
	}
	before := s.LastTID()
	tid := commit(t, s, store.Write{OID: o[0], Data: Rec("a", o[1])}, store.Write{OID: o[1], Data: Rec("b")})
	if tid <= before || s.LastTID() != tid {
		t.Errorf("tid %s, LastTID %s, before %s", tid, s.LastTID(), before)
	}
	rec := load(t, s, o[0])
	if rec.Serial != tid || Payload(rec.Data) != "a" || rec.OID != o[0] {
		t.Errorf("got %+v, want serial %s payload a", rec, tid)
	}
	if _, err := s.Load(ctx, 999999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("load missing: got %v, want ErrNotFound", err)
	}
	last := tid
	for i := range 50 {
		rec := load(t, s, o[1])
		tid := commit(t, s, store.Write{OID: o[1], Serial: rec.Serial, Data: Rec(fmt.Sprint(i))})
		if tid <= last {
			t.Fatalf("tid %s after %s: not increasing", tid, last)
		}
		last = tid
	}
	MustVerify(t, s)
}

func testInvalidCommits(t *testing.T, open Opener) {
	s := open(t, "db")
	o := oids(t, s, 1)[0]
	cases := map[string]struct {
		writes []store.Write
		want   error
	}{
		"empty":     {nil, store.ErrInvalid},
		"zero OID":  {[]store.Write{{OID: 0, Data: Rec("x")}}, store.ErrInvalid},
		"duplicate": {[]store.Write{{OID: o, Data: Rec("x")}, {OID: o, Data: Rec("y")}}, store.ErrInvalid},
		"oversized": {[]store.Write{{OID: o, Data: make([]byte, store.MaxRecordSize+1)}}, store.ErrTooLarge},
	}
	for name, c := range cases {
		if _, err := s.Commit(ctx, store.TxMeta{}, c.writes); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
	huge := store.TxMeta{Description: strings.Repeat("x", store.MaxMetaSize+1)}
	if _, err := s.Commit(ctx, huge, []store.Write{{OID: o, Data: Rec("x")}}); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("huge metadata: got %v, want ErrTooLarge", err)
	}
	if _, err := s.Load(ctx, o); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after refused commits, load: got %v, want ErrNotFound", err)
	}
}

func testConflict(t *testing.T, open Opener) {
	s := open(t, "db")
	o := oids(t, s, 3)
	t1 := commit(t, s, store.Write{OID: o[0], Data: Rec("a0")}, store.Write{OID: o[1], Data: Rec("b0")}, store.Write{OID: o[2], Data: Rec("c0")})
	t2 := commit(t, s, store.Write{OID: o[0], Serial: t1, Data: Rec("a1")}, store.Write{OID: o[2], Serial: t1, Data: Rec("c1")})
	_, err := s.Commit(ctx, store.TxMeta{}, []store.Write{
		{OID: o[0], Serial: t1, Data: Rec("stale")},
		{OID: o[1], Serial: t1, Data: Rec("fine")},
		{OID: o[2], Serial: t1, Data: Rec("stale")},
	})
	var ce *store.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, store.ErrConflict) {
		t.Fatalf("got %v, want *ConflictError", err)
	}
	if diff := cmp.Diff(ce.OIDs, []store.OID{o[0], o[2]}); diff != "" {
		t.Errorf("conflicting OIDs (-got +want):\n%s", diff)
	}
	if !strings.Contains(err.Error(), o[0].String()) || !strings.Contains(err.Error(), o[2].String()) {
		t.Errorf("error %q does not name both objects", err)
	}
	if rec := load(t, s, o[1]); Payload(rec.Data) != "b0" || rec.Serial != t1 {
		t.Errorf("refused commit changed %s: %+v", o[1], rec)
	}
	if s.LastTID() != t2 {
		t.Errorf("LastTID %s after refused commit, want %s", s.LastTID(), t2)
	}
}

func testCreateConflict(t *testing.T, open Opener) {
	s := open(t, "db")
	o := oids(t, s, 1)[0]
	commit(t, s, store.Write{OID: o, Data: Rec("first")})
	_, err := s.Commit(ctx, store.TxMeta{}, []store.Write{{OID: o, Data: Rec("second")}})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("creating an existing object: got %v, want conflict", err)
	}
	// A future serial is just as stale as a past one.
	_, err = s.Commit(ctx, store.TxMeta{}, []store.Write{{OID: o, Serial: store.MaxTID, Data: Rec("x")}})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("future serial: got %v, want conflict", err)
	}
}

func testLoadAt(t *testing.T, open Opener) {
	s := open(t, "db")
	o := oids(t, s, 2)
	t0 := commit(t, s, store.Write{OID: o[1], Data: Rec("other")})
	var tids []store.TID
	serial := store.TID(0)
	for i := range 3 {
		serial = commit(t, s, store.Write{OID: o[0], Serial: serial, Data: Rec(fmt.Sprint("v", i))})
		tids = append(tids, serial)
		commit(t, s, store.Write{OID: o[1], Serial: load(t, s, o[1]).Serial, Data: Rec(fmt.Sprint("o", i))})
	}
	for i, tid := range tids {
		for _, at := range []store.TID{tid, tid + 1} {
			rec, err := s.LoadAt(ctx, o[0], at)
			if err != nil || Payload(rec.Data) != fmt.Sprint("v", i) || rec.Serial != tid {
				t.Errorf("LoadAt(%s): got %+v %v, want v%d", at, rec, err, i)
			}
		}
	}
	if _, err := s.LoadAt(ctx, o[0], t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LoadAt before creation: got %v, want ErrNotFound", err)
	}
}

func testHistory(t *testing.T, open Opener) {
	s := open(t, "db")
	o := oids(t, s, 1)[0]
	var want []store.TID
	serial := store.TID(0)
	for i := range 5 {
		serial = commit(t, s, store.Write{OID: o, Serial: serial, Data: Rec(strings.Repeat("x", i))})
		want = append([]store.TID{serial}, want...)
	}
	revs, err := s.History(ctx, o, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []store.TID
	for _, r := range revs {
		got = append(got, r.Serial)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("history (-got +want):\n%s", diff)
	}
	if revs, _ := s.History(ctx, o, 2); len(revs) != 2 || revs[0].Serial != want[0] {
		t.Errorf("history limit 2: got %+v", revs)
	}
	if _, err := s.History(ctx, 424242, 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("history of missing object: got %v, want ErrNotFound", err)
	}
}

func testLog(t *testing.T, open Opener) {
	s := open(t, "db")
	o := oids(t, s, 3)
	meta := store.TxMeta{User: "alice", Description: "first", Extension: map[string]string{"k": "v", "cycle": "7"}}
	start := time.Now()
	t1, err := s.Commit(ctx, meta, []store.Write{{OID: o[2], Data: Rec("c")}, {OID: o[0], Data: Rec("a")}})
	if err != nil {
		t.Fatal(err)
	}
	t2 := commit(t, s, store.Write{OID: o[1], Data: Rec("b")})
	info, err := s.Transaction(ctx, t1)
	if err != nil {
		t.Fatal(err)
	}
	want := store.TxInfo{TID: t1, User: "alice", Description: "first", Extension: meta.Extension, OIDs: []store.OID{o[0], o[2]}}
	if diff := cmp.Diff(info, want, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Time" }, cmp.Ignore())); diff != "" {
		t.Errorf("transaction (-got +want):\n%s", diff)
	}
	if info.Time.Before(start.Add(-time.Minute)) || info.Time.After(time.Now().Add(time.Minute)) {
		t.Errorf("transaction time %v, committed around %v", info.Time, start)
	}
	log, err := s.Log(ctx, store.LogQuery{})
	if err != nil || len(log) != 2 || log[0].TID != t2 || log[1].TID != t1 {
		t.Fatalf("log: got %+v %v, want [%s %s]", log, err, t2, t1)
	}
	if log, _ := s.Log(ctx, store.LogQuery{Limit: 1}); len(log) != 1 || log[0].TID != t2 {
		t.Errorf("log limit 1: got %+v", log)
	}
	if log, _ := s.Log(ctx, store.LogQuery{Before: t2}); len(log) != 1 || log[0].TID != t1 {
		t.Errorf("log before %s: got %+v", t2, log)
	}
	if _, err := s.Transaction(ctx, t2+12345); !errors.Is(err, store.ErrNoTransaction) {
		t.Errorf("unknown transaction: got %v, want ErrNoTransaction", err)
	}
}

func testUndo(t *testing.T, open Opener) {
	s := open(t, "db")
	o := oids(t, s, 2)
	t1 := commit(t, s, store.Write{OID: o[0], Data: Rec("a1")}, store.Write{OID: o[1], Data: Rec("b1")})
	t2 := commit(t, s, store.Write{OID: o[0], Serial: t1, Data: Rec("a2")}, store.Write{OID: o[1], Serial: t1, Data: Rec("b2")})
	t3 := commit(t, s, store.Write{OID: o[1], Serial: t2, Data: Rec("b3")})

	_, err := s.Undo(ctx, t2, store.TxMeta{User: "test"})
	var ue *store.UndoError
	if !errors.As(err, &ue) || !errors.Is(err, store.ErrUndo) {
		t.Fatalf("undo %s after %s changed %s: got %v, want *UndoError", t2, t3, o[1], err)
	}
	if diff := cmp.Diff(ue.Changed, map[store.OID]store.TID{o[1]: t3}); diff != "" {
		t.Errorf("undo error objects (-got +want):\n%s", diff)
	}
	if !strings.Contains(err.Error(), o[1].String()) {
		t.Errorf("undo error %q does not name %s", err, o[1])
	}
	if Payload(load(t, s, o[0]).Data) != "a2" {
		t.Errorf("refused undo changed %s", o[0])
	}

	u, err := s.Undo(ctx, t3, store.TxMeta{User: "test"})
	if err != nil {
		t.Fatalf("undo %s: %v", t3, err)
	}
	if rec := load(t, s, o[1]); Payload(rec.Data) != "b2" || rec.Serial != u {
		t.Errorf("after undo: got %+v, want b2 at %s", rec, u)
	}
	info, err := s.Transaction(ctx, u)
	if err != nil || info.Extension["undo"] != t3.String() {
		t.Errorf("undo transaction: %+v %v, want extension undo=%s", info, err, t3)
	}
	if _, err := s.Undo(ctx, u, store.TxMeta{}); err != nil {
		t.Fatalf("undo the undo: %v", err)
	}
	if Payload(load(t, s, o[1]).Data) != "b3" {
		t.Errorf("undoing the undo did not restore b3")
	}
	if _, err := s.Undo(ctx, u+777, store.TxMeta{}); !errors.Is(err, store.ErrNoTransaction) {
		t.Errorf("undo unknown tid: got %v, want ErrNoTransaction", err)
	}
	MustVerify(t, s)
}

func testUndoCreation(t *testing.T, open Opener) {
	s := open(t, "db")
	o := oids(t, s, 1)[0]
	t1 := commit(t, s, store.Write{OID: o, Data: Rec("new")})
	u, err := s.Undo(ctx, t1, store.TxMeta{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, o); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("load after undoing creation: got %v, want ErrNotFound", err)
	}
	if rec, err := s.LoadAt(ctx, o, t1); err != nil || Payload(rec.Data) != "new" {
		t.Errorf("history lost: LoadAt(%s) = %+v %v", t1, rec, err)
	}
	// A deleted object counts as absent: it can be created again.
	commit(t, s, store.Write{OID: o, Data: Rec("again")})
	if _, err := s.Undo(ctx, u, store.TxMeta{}); !errors.Is(err, store.ErrUndo) {
		t.Errorf("undo of the deletion after re-creation: got %v, want ErrUndo", err)
	}
}

// chain commits root -> a -> b plus an orphan c, each with history.
func testPack(t *testing.T, open Opener) {
	s := open(t, "db")
	o := oids(t, s, 4)
	root, a, b, c := o[0], o[1], o[2], o[3]
	t1 := commit(t, s, store.Write{OID: root, Data: Rec("root", a, c)}, store.Write{OID: a, Data: Rec("a1", b)}, store.Write{OID: b, Data: Rec("b1")}, store.Write{OID: c, Data: Rec("c1")})
	t2 := commit(t, s, store.Write{OID: a, Serial: t1, Data: Rec("a2", b)})
	t3 := commit(t, s, store.Write{OID: root, Serial: t1, Data: Rec("root", a)}) // c is now garbage
	time.Sleep(2 * time.Millisecond)
	res, err := s.Pack(ctx, store.PackOptions{Before: time.Now(), Root: root, Refs: Refs})
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != 1 || res.Revisions != 2 {
		t.Errorf("pack removed %+v, want 1 object (c) and 2 revisions (a1, root@t1)", res)
	}
	if _, err := s.Load(ctx, c); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unreachable object survived pack: %v", err)
	}
	for oid, want := range map[store.OID]string{root: "root", a: "a2", b: "b1"} {
		if got := Payload(load(t, s, oid).Data); got != want {
			t.Errorf("%s after pack: %q, want %q", oid, got, want)
		}
	}
	if revs, _ := s.History(ctx, a, 0); len(revs) != 1 || revs[0].Serial != t2 {
		t.Errorf("history of a after pack: %+v, want only %s", revs, t2)
	}
	if _, err := s.Undo(ctx, t3, store.TxMeta{}); !errors.Is(err, store.ErrUndo) && !errors.Is(err, store.ErrNoTransaction) {
		t.Errorf("undo of packed-away history: got %v, want refusal", err)
	}
	// Packing a store whose root is missing deletes nothing.
	if _, err := s.Pack(ctx, store.PackOptions{Before: time.Now(), Root: 987654, Refs: Refs}); err == nil {
		t.Errorf("pack with a missing root succeeded")
	}
	MustVerify(t, s)
	commit(t, s, store.Write{OID: a, Serial: t2, Data: Rec("a3", b)})
	if got := Payload(load(t, s, a).Data); got != "a3" {
		t.Errorf("commit after pack: %q", got)
	}
}

func testPackBlobs(t *testing.T, open Opener) {
	s := open(t, "db")
	kept, err := s.PutBlob(ctx, strings.NewReader("kept blob"))
	if err != nil {
		t.Fatal(err)
	}
	dropped, err := s.PutBlob(ctx, strings.NewReader("dropped blob"))
	if err != nil {
		t.Fatal(err)
	}
	pending, err := s.PutBlob(ctx, strings.NewReader("not committed yet"))
	if err != nil {
		t.Fatal(err)
	}
	o := oids(t, s, 2)
	t1 := commit(t, s, store.Write{OID: o[0], Data: Rec("root", o[1])}, store.Write{OID: o[1], Data: RecBlobs("x", kept.Digest, dropped.Digest)})
	commit(t, s, store.Write{OID: o[1], Serial: t1, Data: RecBlobs("x", kept.Digest)})
	time.Sleep(2 * time.Millisecond)
	res, err := s.Pack(ctx, store.PackOptions{Before: time.Now(), Root: o[0], Refs: Refs})
	if err != nil {
		t.Fatal(err)
	}
	if res.Blobs != 1 {
		t.Errorf("pack removed %d blobs, want 1", res.Blobs)
	}
	if _, err := s.StatBlob(ctx, dropped.Digest); !errors.Is(err, store.ErrBlobNotFound) {
		t.Errorf("unreferenced blob survived: %v", err)
	}
	for _, b := range []store.Blob{kept, pending} {
		if _, err := s.StatBlob(ctx, b.Digest); err != nil {
			t.Errorf("blob %s removed by pack: %v", b.Digest, err)
		}
	}
	MustVerify(t, s)
}

// testPackWhileCommitting keeps committing new objects linked from the
// root while packs run; nothing committed may be lost.
func testPackWhileCommitting(t *testing.T, open Opener) {
	s := open(t, "db")
	root := oids(t, s, 1)[0]
	serial := commit(t, s, store.Write{OID: root, Data: Rec("root")})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var linked []store.OID
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			o := oids(t, s, 1)[0]
			refs := append(slices.Clone(linked), o)
			tid, err := s.Commit(ctx, store.TxMeta{}, []store.Write{{OID: o, Data: Rec(fmt.Sprint(i))}, {OID: root, Serial: serial, Data: Rec("root", refs...)}})
			if err != nil {
				t.Errorf("commit during pack: %v", err)
				return
			}
			serial, linked = tid, refs
		}
	}()
	for range 5 {
		if _, err := s.Pack(ctx, store.PackOptions{Before: time.Now(), Root: root, Refs: Refs}); err != nil {
			t.Errorf("pack: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	for _, o := range linked {
		load(t, s, o)
	}
	MustVerify(t, s)
}

func testBlobs(t *testing.T, open Opener) {
	s := open(t, "db")
	content := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // ~4.8 MB, several read chunks
	b, err := s.PutBlob(ctx, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if b.Size != int64(len(content)) || b.Digest.String()[:7] != "sha256:" {
		t.Errorf("PutBlob = %+v", b)
	}
	again, err := s.PutBlob(ctx, bytes.NewReader(content))
	if err != nil || again != b {
		t.Errorf("second PutBlob of same content = %+v %v, want %+v", again, err, b)
	}
	rc, err := s.OpenBlob(ctx, b.Digest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("blob round trip: %d bytes, err %v", len(got), err)
	}
	if st, err := s.StatBlob(ctx, b.Digest); err != nil || st != b {
		t.Errorf("StatBlob = %+v %v", st, err)
	}
	var missing store.Digest
	if _, err := s.OpenBlob(ctx, missing); !errors.Is(err, store.ErrBlobNotFound) {
		t.Errorf("open missing blob: got %v, want ErrBlobNotFound", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.PutBlob(cctx, bytes.NewReader(content)); !errors.Is(err, context.Canceled) {
		t.Errorf("PutBlob with cancelled context: got %v", err)
	}
}

// testConcurrentWriters runs writers that all increment the same counters,
// retrying on conflict: every increment must land exactly once.
func testConcurrentWriters(t *testing.T, open Opener) {
	s := open(t, "db")
	const writers, rounds = 8, 40
	ctr := oids(t, s, 2)
	commit(t, s, store.Write{OID: ctr[0], Data: Rec("0")}, store.Write{OID: ctr[1], Data: Rec("0")})
	var mu sync.Mutex
	seen := map[store.TID]bool{}
	conflicts := 0
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				for {
					var writes []store.Write
					for _, o := range ctr {
						rec, err := s.Load(ctx, o)
						if err != nil {
							t.Error(err)
							return
						}
						var n int
						fmt.Sscan(Payload(rec.Data), &n)
						writes = append(writes, store.Write{OID: o, Serial: rec.Serial, Data: Rec(fmt.Sprint(n + 1))})
					}
					tid, err := s.Commit(ctx, store.TxMeta{User: fmt.Sprint("w", w)}, writes)
					if errors.Is(err, store.ErrConflict) {
						mu.Lock()
						conflicts++
						mu.Unlock()
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if seen[tid] {
						t.Errorf("tid %s returned twice", tid)
					}
					seen[tid] = true
					mu.Unlock()
					break
				}
			}
		}()
	}
	wg.Wait()
	for _, o := range ctr {
		if got := Payload(load(t, s, o).Data); got != fmt.Sprint(writers*rounds) {
			t.Errorf("counter %s = %s, want %d", o, got, writers*rounds)
		}
	}
	t.Logf("%d commits, %d conflicts retried", len(seen), conflicts)
	MustVerify(t, s)
}

func testReopen(t *testing.T, open Opener) {
	s := open(t, "reopen")
	o := oids(t, s, 1)[0]
	tid := commit(t, s, store.Write{OID: o, Data: Rec("persisted")})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, "reopen")
	if rec := load(t, s, o); Payload(rec.Data) != "persisted" || rec.Serial != tid {
		t.Errorf("after reopen: %+v", rec)
	}
	if s.LastTID() != tid {
		t.Errorf("LastTID after reopen %s, want %s", s.LastTID(), tid)
	}
	if n := oids(t, s, 1)[0]; n <= o {
		t.Errorf("NewOIDs after reopen gave %s, not after %s", n, o)
	}
	if next := commit(t, s, store.Write{OID: o, Serial: tid, Data: Rec("x")}); next <= tid {
		t.Errorf("tid after reopen %s not after %s", next, tid)
	}
}

func testVerifyDangling(t *testing.T, open Opener) {
	s := open(t, "db")
	o := oids(t, s, 1)[0]
	var ghost store.Digest
	ghost[0] = 0xab
	commit(t, s, store.Write{OID: o, Data: Rec("root", 777777)})
	commit(t, s, store.Write{OID: o + 1, Data: RecBlobs("b", ghost)})
	rep, err := s.Verify(ctx, Refs)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, p := range rep.Problems {
		kinds = append(kinds, p.String())
	}
	want := []string{
		fmt.Sprintf("dangling-reference: %s at", o),
		fmt.Sprintf("missing-blob: %s at", o+1),
	}
	if len(kinds) != len(want) {
		t.Fatalf("problems %q, want %d", kinds, len(want))
	}
	slices.Sort(kinds)
	for i := range want {
		if !strings.HasPrefix(kinds[i], want[i]) {
			t.Errorf("problem %q, want prefix %q", kinds[i], want[i])
		}
	}
}

func testClosed(t *testing.T, open Opener) {
	s := open(t, "db")
	o := oids(t, s, 1)[0]
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Commit(ctx, store.TxMeta{}, []store.Write{{OID: o, Data: Rec("x")}}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("commit after close: got %v, want ErrClosed", err)
	}
}
