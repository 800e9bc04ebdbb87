package pg_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"batos/internal/store"
	"batos/internal/store/bolt"
	"batos/internal/store/pg"
	"batos/internal/store/pg/pgtest"
	"batos/internal/store/storecopy/copytest"
	"batos/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var ctx = context.Background()

// opener gives each test its own databases: a name opened twice in one
// test is the same database, so Reopen sees what it committed.
func opener() storetest.Opener {
	var mu sync.Mutex
	urls := map[string]string{}
	return func(t testing.TB, name string) store.Engine {
		t.Helper()
		key := t.Name() + "\x00" + name
		mu.Lock()
		url, ok := urls[key]
		if !ok {
			url = pgtest.NewDatabase(t)
			urls[key] = url
		}
		mu.Unlock()
		return open(t, url)
	}
}

func open(t testing.TB, url string) *pg.DB {
	t.Helper()
	db, err := pg.Open(ctx, url, nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, opener())
}

// exec runs SQL straight on the database, as damage or another version
// of batos would.
func exec(t *testing.T, url, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	url := pgtest.NewDatabase(t)
	db := open(t, url)
	db.Close()
	exec(t, url, "UPDATE schema_version SET version = $1", pg.SchemaVersion+1)
	_, err := pg.Open(ctx, url, nil)
	if !errors.Is(err, pg.ErrSchemaTooNew) {
		t.Fatalf("open of a newer schema: got %v, want ErrSchemaTooNew", err)
	}
	want := fmt.Sprintf("schema version %d, this batos knows versions up to %d", pg.SchemaVersion+1, pg.SchemaVersion)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestCorruptBlobDetected(t *testing.T) {
	url := pgtest.NewDatabase(t)
	db := open(t, url)
	content := strings.Repeat("blob content ", 200_000) // > 2 chunks
	b, err := db.PutBlob(ctx, strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	// Flip one byte in the middle chunk.
	exec(t, url, `UPDATE blob_chunk SET data = set_byte(data, 10, get_byte(data, 10) # 1)
		WHERE chunk_num = 1 AND blob_id = (SELECT blob_id FROM blob WHERE digest = $1)`, b.Digest[:])
	rc, err := db.OpenBlob(ctx, b.Digest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	var cbe *store.CorruptBlobError
	if !errors.As(err, &cbe) || cbe.Digest != b.Digest {
		t.Fatalf("reading a damaged blob: got %v, want *CorruptBlobError for %s", err, b.Digest)
	}
	if len(got) != len(content) {
		t.Errorf("read %d bytes before the error, want all %d", len(got), len(content))
	}
	rep, err := db.Verify(ctx, storetest.Refs)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != store.CorruptBlob || rep.Problems[0].Digest != b.Digest {
		t.Errorf("verify: %v, want one corrupt-blob problem for %s", rep.Problems, b.Digest)
	}

	// A missing chunk is caught too.
	exec(t, url, `DELETE FROM blob_chunk WHERE chunk_num = 0 AND blob_id = (SELECT blob_id FROM blob WHERE digest = $1)`, b.Digest[:])
	rc, err = db.OpenBlob(ctx, b.Digest)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	if !errors.As(err, &cbe) || !strings.Contains(err.Error(), "chunk 0") {
		t.Errorf("reading a blob missing a chunk: got %v, want *CorruptBlobError naming chunk 0", err)
	}
}

func TestCorruptRecordDetected(t *testing.T) {
	url := pgtest.NewDatabase(t)
	db := open(t, url)
	o, err := db.NewOIDs(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	tid, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: o[0], Data: storetest.Rec("root", o[1])}, {OID: o[1], Data: storetest.Rec("leaf")}})
	if err != nil {
		t.Fatal(err)
	}
	exec(t, url, `UPDATE object_state SET data = set_byte(data, 3, get_byte(data, 3) # 4) WHERE oid = $1`, int64(o[1]))
	var ce *store.CorruptError
	if _, err := db.Load(ctx, o[1]); !errors.As(err, &ce) || ce.OID != o[1] || ce.TID != tid || !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("load of a damaged record: got %v, want *CorruptError for %s at %s", err, o[1], tid)
	}
	if _, err := db.LoadAt(ctx, o[1], tid); !errors.As(err, &ce) {
		t.Errorf("LoadAt of a damaged record: got %v, want *CorruptError", err)
	}
	if rec, err := db.Load(ctx, o[0]); err != nil || storetest.Payload(rec.Data) != "root" {
		t.Errorf("load of the intact record: %+v %v", rec, err)
	}
	rep, err := db.Verify(ctx, storetest.Refs)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) == 0 || rep.Problems[0].Kind != store.CorruptRecord || rep.Problems[0].OID != o[1] || rep.Problems[0].TID != tid {
		t.Errorf("verify: %v, want a corrupt-record problem for %s at %s first", rep.Problems, o[1], tid)
	}
	// A damaged record must never be dropped by pack as garbage.
	if _, err := db.Pack(ctx, store.PackOptions{Root: o[0], Refs: storetest.Refs}); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("pack over a damaged record: got %v, want ErrCorrupt", err)
	}

	// current_object naming a revision that is not there.
	exec(t, url, `UPDATE current_object SET tid = tid + 1 WHERE oid = $1`, int64(o[0]))
	if _, err := db.Load(ctx, o[0]); !errors.As(err, &ce) || ce.OID != o[0] {
		t.Errorf("load through a damaged current_object: got %v, want *CorruptError for %s", err, o[0])
	}
	rep, err = db.Verify(ctx, storetest.Refs)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range rep.Problems {
		found = found || (p.Kind == store.CorruptRecord && p.OID == o[0] && strings.Contains(p.Detail, "current_object"))
	}
	if !found {
		t.Errorf("verify: %v, want a problem with current_object for %s", rep.Problems, o[0])
	}

	// A damaged log entry.
	exec(t, url, `UPDATE transaction SET username = 'mallory' WHERE tid = $1`, int64(tid))
	if _, err := db.Transaction(ctx, tid); !errors.As(err, &ce) || ce.TID != tid || ce.OID != 0 {
		t.Errorf("transaction with a damaged log entry: got %v, want *CorruptError for %s", err, tid)
	}
	rep, err = db.Verify(ctx, storetest.Refs)
	if err != nil {
		t.Fatal(err)
	}
	found = false
	for _, p := range rep.Problems {
		found = found || (p.Kind == store.CorruptTransaction && p.TID == tid)
	}
	if !found {
		t.Errorf("verify: %v, want a corrupt-transaction problem for %s", rep.Problems, tid)
	}
}

// TestTwoNodes runs two handles on one database, as two batos processes
// on two machines would: their commits interleave with strictly
// increasing TIDs, and each detects the other's conflicting writes.
func TestTwoNodes(t *testing.T) {
	// One node over the unix socket, the other over TCP, as from another
	// machine.
	c := pgtest.Start(t)
	name := c.CreateDatabase(t)
	nodes := []*pg.DB{open(t, c.URL(name)), open(t, c.TCPURL(name))}
	a, b := nodes[0], nodes[1]

	// A stale write on one node after the other's commit is refused.
	o, err := a.NewOIDs(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	t1, err := a.Commit(ctx, store.TxMeta{}, []store.Write{{OID: o[0], Data: storetest.Rec("0")}, {OID: o[1], Data: storetest.Rec("0")}})
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := b.Load(ctx, o[0]); err != nil || rec.Serial != t1 {
		t.Fatalf("node b loads %+v %v, want the revision node a wrote at %s", rec, err, t1)
	}
	t2, err := b.Commit(ctx, store.TxMeta{}, []store.Write{{OID: o[0], Serial: t1, Data: storetest.Rec("b")}, {OID: o[1], Serial: t1, Data: storetest.Rec("b")}})
	if err != nil || t2 <= t1 {
		t.Fatalf("node b commits %s %v after %s", t2, err, t1)
	}
	// Node a learns of node b's commit without committing itself.
	for deadline := time.Now().Add(10 * time.Second); a.LastTID() != t2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("node a's LastTID is %s 10 s after node b committed %s", a.LastTID(), t2)
		}
	}
	_, err = a.Commit(ctx, store.TxMeta{}, []store.Write{{OID: o[0], Serial: t1, Data: storetest.Rec("stale")}, {OID: o[1], Serial: t1, Data: storetest.Rec("stale")}})
	var ce *store.ConflictError
	if !errors.As(err, &ce) || len(ce.OIDs) != 2 || ce.OIDs[0] != o[0] || ce.OIDs[1] != o[1] {
		t.Fatalf("node a's stale commit: got %v, want a conflict on %s and %s", err, o[0], o[1])
	}
	if a.LastTID() != t2 {
		t.Errorf("node a's LastTID %s after seeing node b's %s", a.LastTID(), t2)
	}
	// OIDs from both nodes never collide.
	ob, err := b.NewOIDs(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ob {
		if x == o[0] || x == o[1] {
			t.Errorf("node b allocated %s, already allocated by node a", x)
		}
	}

	// Writers on both nodes increment the same counters, retrying on
	// conflict: every increment lands once, and the log's TIDs strictly
	// increase in commit order.
	const perNode, rounds = 3, 15
	var mu sync.Mutex
	var tids []store.TID
	conflicts := 0
	var wg sync.WaitGroup
	for n, node := range nodes {
		for w := range perNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					for {
						var writes []store.Write
						for _, oid := range o {
							rec, err := node.Load(ctx, oid)
							if err != nil {
								t.Error(err)
								return
							}
							var v int
							fmt.Sscan(storetest.Payload(rec.Data), &v)
							writes = append(writes, store.Write{OID: oid, Serial: rec.Serial, Data: storetest.Rec(fmt.Sprint(v + 1))})
						}
						tid, err := node.Commit(ctx, store.TxMeta{User: fmt.Sprintf("node%d/w%d", n, w)}, writes)
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
						tids = append(tids, tid)
						mu.Unlock()
						break
					}
				}
			}()
		}
	}
	wg.Wait()
	// b's commit set the counters to "b", which reads as 0.
	for _, oid := range o {
		rec, err := a.Load(ctx, oid)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := storetest.Payload(rec.Data), fmt.Sprint(2*perNode*rounds); got != want {
			t.Errorf("counter %s = %s, want %s", oid, got, want)
		}
	}
	if conflicts == 0 {
		t.Errorf("no conflicts among %d writers on two nodes: the check did not run", 2*perNode)
	}
	log, err := b.Log(ctx, store.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != len(tids)+2 {
		t.Errorf("log holds %d transactions, want %d", len(log), len(tids)+2)
	}
	seen := map[store.TID]bool{}
	for _, tid := range tids {
		if seen[tid] {
			t.Errorf("TID %s returned twice", tid)
		}
		seen[tid] = true
	}
	// Newest first, so strictly decreasing; and each writer's round
	// counter says it committed after the previous one.
	for i := 1; i < len(log); i++ {
		if log[i].TID >= log[i-1].TID {
			t.Errorf("log not strictly ordered: %s before %s", log[i-1].TID, log[i].TID)
		}
	}
	for i, info := range log[:len(log)-2] {
		rec, err := a.LoadAt(ctx, o[0], info.TID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := storetest.Payload(rec.Data), fmt.Sprint(len(tids)-i); got != want {
			t.Errorf("counter as of %s = %s, want %s: TIDs out of commit order", info.TID, got, want)
		}
	}
	t.Logf("%d commits across two nodes, %d conflicts retried", len(tids), conflicts)
	storetest.MustVerify(t, a)
}

// TestPackWhileAnotherNodeCommits packs on one node while another keeps
// committing new objects linked from the root: nothing committed may be
// lost, and nothing unreachable at the end survives a last pack.
func TestPackWhileAnotherNodeCommits(t *testing.T) {
	url := pgtest.NewDatabase(t)
	packer, writer := open(t, url), open(t, url)
	o, err := writer.NewOIDs(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	root, orphan := o[0], o[1]
	serial, err := writer.Commit(ctx, store.TxMeta{}, []store.Write{{OID: root, Data: storetest.Rec("root", orphan)}, {OID: orphan, Data: storetest.Rec("orphan")}})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	var linked []store.OID
	var commits atomic.Int64
	go func() {
		defer close(writerDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			n, err := writer.NewOIDs(ctx, 1)
			if err != nil {
				t.Error(err)
				return
			}
			refs := append(append([]store.OID(nil), linked...), n[0])
			tid, err := writer.Commit(ctx, store.TxMeta{}, []store.Write{{OID: n[0], Data: storetest.Rec(fmt.Sprint(i))}, {OID: root, Serial: serial, Data: storetest.Rec("root", refs...)}})
			if err != nil {
				t.Errorf("commit during another node's pack: %v", err)
				return
			}
			serial, linked = tid, refs
			commits.Add(1)
		}
	}()
	// At least 3 packs, and until 20 commits came in during them.
	packs := 0
	for deadline := time.Now().Add(10 * time.Second); packs < 3 || (commits.Load() < 20 && time.Now().Before(deadline)); packs++ {
		if _, err := packer.Pack(ctx, store.PackOptions{Before: time.Now(), Root: root, Refs: storetest.Refs}); err != nil {
			t.Errorf("pack: %v", err)
		}
	}
	close(stop)
	<-writerDone
	if len(linked) == 0 {
		t.Fatal("the writer committed nothing during the packs")
	}
	for _, oid := range linked {
		if _, err := packer.Load(ctx, oid); err != nil {
			t.Errorf("load %s, committed during the packs: %v", oid, err)
		}
	}
	// Once writes stop, a pack leaves only what is current and reachable.
	time.Sleep(2 * time.Millisecond)
	if _, err := packer.Pack(ctx, store.PackOptions{Before: time.Now(), Root: root, Refs: storetest.Refs}); err != nil {
		t.Fatalf("pack: %v", err)
	}
	if _, err := packer.Load(ctx, orphan); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("orphan after packs: got %v, want ErrNotFound", err)
	}
	if revs, err := packer.History(ctx, root, 0); err != nil || len(revs) != 1 || revs[0].Serial != serial {
		t.Errorf("root's history after packs: %+v %v, want only %s", revs, err, serial)
	}
	t.Logf("%d commits during %d packs", len(linked), packs)
	storetest.MustVerify(t, packer)
}

// TestLargeRecord commits a record of 4 MiB (staged before the commit
// lock) and reads it back, then undoes a change to it (staged under it).
func TestLargeRecord(t *testing.T) {
	db := open(t, pgtest.NewDatabase(t))
	o, err := db.NewOIDs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18)
	t1, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: o[0], Data: big}})
	if err != nil {
		t.Fatal(err)
	}
	t2, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: o[0], Serial: t1, Data: []byte("small")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Undo(ctx, t2, store.TxMeta{}); err != nil {
		t.Fatal(err)
	}
	rec, err := db.Load(ctx, o[0])
	if err != nil || !bytes.Equal(rec.Data, big) {
		t.Fatalf("load after undo: %d bytes %v, want the 4 MiB record back", len(rec.Data), err)
	}
	noRefs := func([]byte) ([]store.OID, []store.Digest, error) { return nil, nil, nil }
	if rep, err := db.Verify(ctx, noRefs); err != nil || !rep.OK() {
		t.Errorf("verify: %v %v", rep.Problems, err)
	}
}

// TestUndoRestoresAndDeletes undoes a transaction that changed one object
// and created the next: the first gets its revision back, the second is
// deleted (its row comes after one with a revision to restore).
func TestUndoRestoresAndDeletes(t *testing.T) {
	db := open(t, pgtest.NewDatabase(t))
	o, err := db.NewOIDs(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	t1, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: o[0], Data: storetest.Rec("a1")}})
	if err != nil {
		t.Fatal(err)
	}
	t2, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: o[0], Serial: t1, Data: storetest.Rec("a2", o[1])}, {OID: o[1], Data: storetest.Rec("b")}})
	if err != nil {
		t.Fatal(err)
	}
	u, err := db.Undo(ctx, t2, store.TxMeta{})
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := db.Load(ctx, o[0]); err != nil || storetest.Payload(rec.Data) != "a1" || rec.Serial != u {
		t.Errorf("%s after undo: %+v %v, want a1 at %s", o[0], rec, err, u)
	}
	if _, err := db.Load(ctx, o[1]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s after undoing its creation: got %v, want ErrNotFound", o[1], err)
	}
	if revs, err := db.History(ctx, o[1], 0); err != nil || len(revs) != 2 || !revs[0].Deleted || revs[0].Serial != u {
		t.Errorf("history of %s: %+v %v, want its deletion at %s first", o[1], revs, err, u)
	}
	storetest.MustVerify(t, db)
}

// TestBlobPinExpires: an uploaded blob nothing refers to survives a pack
// while pinned, and goes once its pin has expired; uploading it again
// renews the pin.
func TestBlobPinExpires(t *testing.T) {
	db, err := pg.Open(ctx, pgtest.NewDatabase(t), &pg.Options{BlobPinTime: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	root, err := db.NewOIDs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: root[0], Data: storetest.Rec("root")}}); err != nil {
		t.Fatal(err)
	}
	b, err := db.PutBlob(ctx, strings.NewReader("never referred to"))
	if err != nil {
		t.Fatal(err)
	}
	pack := func() store.PackResult {
		t.Helper()
		res, err := db.Pack(ctx, store.PackOptions{Before: time.Now(), Root: root[0], Refs: storetest.Refs})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := pack(); res.Blobs != 0 {
		t.Fatalf("pack removed %d blobs while the upload was pinned", res.Blobs)
	}
	time.Sleep(400 * time.Millisecond)
	if _, err := db.PutBlob(ctx, strings.NewReader("never referred to")); err != nil {
		t.Fatal(err)
	}
	if res := pack(); res.Blobs != 0 {
		t.Fatalf("pack removed %d blobs after the upload renewed its pin", res.Blobs)
	}
	time.Sleep(400 * time.Millisecond)
	if res := pack(); res.Blobs != 1 || res.BlobBytes != b.Size {
		t.Errorf("pack after the pin expired removed %+v, want the blob of %d bytes", res, b.Size)
	}
	if _, err := db.StatBlob(ctx, b.Digest); !errors.Is(err, store.ErrBlobNotFound) {
		t.Errorf("blob after its pin expired: got %v, want ErrBlobNotFound", err)
	}
}

// TestStatsAndChosenOIDs: OIDs a writer chose itself push allocation past
// them, on every node; Stats counts what the store holds.
func TestStatsAndChosenOIDs(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := open(t, url), open(t, url)
	const chosen = store.OID(10_000)
	tid, err := a.Commit(ctx, store.TxMeta{}, []store.Write{{OID: chosen, Data: storetest.Rec("x")}, {OID: chosen - 5, Data: storetest.Rec("y")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, node := range []*pg.DB{a, b} {
		o, err := node.NewOIDs(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if o[0] <= chosen || o[1] <= chosen {
			t.Errorf("NewOIDs after a commit wrote %s: %v", chosen, o)
		}
	}
	if _, err := a.PutBlob(ctx, strings.NewReader("12345")); err != nil {
		t.Fatal(err)
	}
	st, err := b.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Objects != 2 || st.Revisions != 2 || st.Transactions != 1 || st.Blobs != 1 || st.BlobBytes != 5 || st.LastTID != tid || st.FileBytes <= 0 {
		t.Errorf("stats %+v, want 2 objects and revisions, 1 transaction, 1 blob of 5 bytes, LastTID %s", st, tid)
	}
}

// TestCopyConformance: images copied from pg into pg, from bolt into pg
// and from pg into bolt, with their whole history, read as the original.
func TestCopyConformance(t *testing.T) {
	t.Run("pg to pg", func(t *testing.T) { copytest.Run(t, opener(), opener()) })
	t.Run("bolt to pg", func(t *testing.T) { copytest.Run(t, boltOpener(), opener()) })
	t.Run("pg to bolt", func(t *testing.T) { copytest.Run(t, opener(), boltOpener()) })
}

// boltOpener opens bolt stores in the test's directory.
func boltOpener() storetest.Opener {
	var mu sync.Mutex
	dirs := map[string]string{}
	return func(t testing.TB, name string) store.Engine {
		t.Helper()
		mu.Lock()
		dir, ok := dirs[t.Name()]
		if !ok {
			dir = t.TempDir()
			dirs[t.Name()] = dir
		}
		mu.Unlock()
		db, err := bolt.Open(filepath.Join(dir, name+".db"), nil)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
}

// TestLatestTIDAsksTheDatabase: a node's LatestTID is another node's
// commit at once, before any notice of it arrives; a closed handle
// refuses.
func TestLatestTIDAsksTheDatabase(t *testing.T) {
	c := pgtest.Start(t)
	name := c.CreateDatabase(t)
	a, b := open(t, c.URL(name)), open(t, c.URL(name))
	o, err := a.NewOIDs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var serial store.TID // 0: the first commit creates the object
	for i := range 20 {
		tid, err := a.Commit(ctx, store.TxMeta{}, []store.Write{{OID: o[0], Serial: serial, Data: storetest.Rec(fmt.Sprint(i))}})
		if err != nil {
			t.Fatal(err)
		}
		serial = tid
		if got, err := b.LatestTID(ctx); err != nil || got != tid {
			t.Fatalf("node b's LatestTID right after node a committed %s: %s %v", tid, got, err)
		}
		if b.LastTID() < tid {
			t.Fatalf("LatestTID left LastTID at %s, behind %s", b.LastTID(), tid)
		}
	}
	b.Close()
	if _, err := b.LatestTID(ctx); !errors.Is(err, store.ErrClosed) {
		t.Errorf("LatestTID on a closed handle: %v, want ErrClosed", err)
	}
}

// TestWatchCommits: a node's watcher is handed every commit other nodes
// make, in order, once, with the notice each was committed with; never
// its own node's; and, after its listening connection was cut, the
// commits made meanwhile, from the log, without their notices.
func TestWatchCommits(t *testing.T) {
	c := pgtest.Start(t)
	name := c.CreateDatabase(t)
	a, b := open(t, c.URL(name)), open(t, c.URL(name))
	type seen struct {
		tid    store.TID
		notice string
	}
	got := make(chan seen, 100)
	stop := b.WatchCommits(func(info store.TxInfo, notice []byte) { got <- seen{info.TID, string(notice)} })
	defer stop()
	o, err := a.NewOIDs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var serial store.TID
	commitOn := func(db *pg.DB, notice string) store.TID {
		t.Helper()
		tid, err := db.Commit(ctx, store.TxMeta{Notice: []byte(notice)}, []store.Write{{OID: o[0], Serial: serial, Data: storetest.Rec(notice)}})
		if err != nil {
			t.Fatal(err)
		}
		serial = tid
		return tid
	}
	next := func() seen {
		t.Helper()
		select {
		case s := <-got:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("no commit handed to the watcher")
		}
		return seen{}
	}
	// Once b listens (its first hand-over shows it), a commit comes with
	// its notice.
	warm := commitOn(a, "warm-up")
	if s := next(); s.tid != warm {
		t.Fatalf("warm-up handed as %+v, want %s", s, warm)
	}
	t1 := commitOn(a, `{"topic":"commit.one"}`)
	commitOn(b, "its own") // never handed to b's watcher
	t3 := commitOn(a, strings.Repeat("x", store.MaxNotice+1))
	if s := next(); s != (seen{t1, `{"topic":"commit.one"}`}) {
		t.Errorf("first: %+v, want %s with its notice", s, t1)
	}
	if s := next(); s != (seen{t3, ""}) {
		t.Errorf("second: %+v, want %s without its notice (too long), and not b's own commit", s, t3)
	}

	// Cut b's listening connection; commits made while it reconnects are
	// found in the log.
	admin, err := pgx.Connect(ctx, c.URL(name))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"); err != nil {
		t.Fatal(err)
	}
	var during []store.TID
	for i := range 3 {
		during = append(during, commitOn(a, fmt.Sprintf(`{"topic":"commit.n%d"}`, i)))
	}
	for i, tid := range during {
		s := next()
		if s.tid != tid {
			t.Fatalf("after the cut, commit %d handed as %+v, want %s", i, s, tid)
		}
	}
	stop()
	commitOn(a, "after stop")
	select {
	case s := <-got:
		t.Errorf("handed %+v after stop", s)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestStrayNotificationMovesNothing: a NOTIFY on batos's channel that no
// commit sent (any role that connects can send one) names a TID from the
// future: the handle neither jumps its LastTID there nor skips the next
// real commit it hands its watchers.
func TestStrayNotificationMovesNothing(t *testing.T) {
	c := pgtest.Start(t)
	name := c.CreateDatabase(t)
	a, b := open(t, c.URL(name)), open(t, c.URL(name))
	got := make(chan store.TID, 10)
	defer b.WatchCommits(func(info store.TxInfo, _ []byte) { got <- info.TID })()
	o, err := a.NewOIDs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	warm, err := a.Commit(ctx, store.TxMeta{}, []store.Write{{OID: o[0], Data: storetest.Rec("warm")}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case tid := <-got:
		if tid != warm {
			t.Fatalf("warm-up handed as %s, want %s", tid, warm)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the warm-up commit was not handed on")
	}
	admin, err := pgx.Connect(ctx, c.URL(name))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// The channel as the engine names it: a hash of the schema.
	var schema string
	if err := admin.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(schema))
	channel := "batos_commit_" + hex.EncodeToString(sum[:16])
	if _, err := admin.Exec(ctx, "SELECT pg_notify($1, $2)", channel, "9000000000000000000 {\"topic\":\"commit.fake\"}"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if b.LastTID() > warm {
		t.Errorf("a stray notification moved LastTID to %s", b.LastTID())
	}
	next, err := a.Commit(ctx, store.TxMeta{}, []store.Write{{OID: o[0], Serial: warm, Data: storetest.Rec("next")}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case tid := <-got:
		if tid != next {
			t.Errorf("after the stray notification, handed %s, want %s", tid, next)
		}
	case <-time.After(10 * time.Second):
		t.Error("the commit after a stray notification was never handed on")
	}
	if latest, err := b.LatestTID(ctx); err != nil || latest != next {
		t.Errorf("LatestTID %s %v, want %s", latest, err, next)
	}
}

// TestExistingRefusesAnEmptyDatabase: opened for an image that must
// exist, an empty database is refused, and left empty.
func TestExistingRefusesAnEmptyDatabase(t *testing.T) {
	url := pgtest.NewDatabase(t)
	if db, err := pg.Open(ctx, url, &pg.Options{Existing: true}); !errors.Is(err, pg.ErrNoImage) {
		if db != nil {
			db.Close()
		}
		t.Fatalf("open of an empty database as existing: %v, want ErrNoImage", err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var created bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('schema_version') IS NOT NULL").Scan(&created); err != nil || created {
		t.Errorf("the refused open created the schema (%v)", err)
	}
	open(t, url).Close() // created by an open that may create
	db, err := pg.Open(ctx, url, &pg.Options{Existing: true})
	if err != nil {
		t.Fatalf("open of a database holding an image, as existing: %v", err)
	}
	db.Close()
}
