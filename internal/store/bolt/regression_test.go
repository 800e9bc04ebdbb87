package bolt

// Regression tests for bugs found in review: each test is named for the
// failure it once showed and now guards against.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"batos/internal/store"
	"batos/internal/store/storetest"
)

func reviewOpen(t *testing.T, path string, o *Options) *DB {
	t.Helper()
	db, err := Open(path, o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func reviewCommit(t *testing.T, db *DB, writes ...store.Write) store.TID {
	t.Helper()
	tid, err := db.Commit(context.Background(), store.TxMeta{User: "review"}, writes)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	return tid
}

func reviewVerify(t *testing.T, db *DB) {
	t.Helper()
	rep, err := db.Verify(context.Background(), storetest.Refs)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, p := range rep.Problems {
		t.Errorf("verify: %s", p)
	}
}

// TestReviewRecoveryCrashBeforeSegmentRemoval: recover writes the replayed
// transactions into the file, creates segment N+1, then removes segment N.
// A crash between the last two steps leaves segment N (ending in the torn,
// never-acknowledged frame that was legitimately cut off) next to an empty
// segment N+1. Segment N is then no longer the newest, and readSegment
// refuses its torn tail: the image can never be opened again.
func TestReviewRecoveryCrashBeforeSegmentRemoval(t *testing.T) {
	path, last := emptyStore(t)
	good := frameFor(last+1, 3, "replayed")
	torn := frameFor(last+2, 4, "torn")
	torn = torn[:len(torn)-3]

	// First crash: segment 7 ends in a torn frame. Recovery works.
	writeSegment(t, path, 7, good, torn)
	db, err := Open(path, nil)
	if err != nil {
		t.Fatalf("first recovery: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Now the same recovery again, but crashing after createSegment(8)
	// and before os.Remove(segment 7): the file already holds the good
	// frame; on disk are segment 7 (good + torn) and an empty segment 8.
	writeSegment(t, path, 7, good, torn)
	writeSegment(t, path, 8)
	db, err = Open(path, nil)
	if err != nil {
		t.Fatalf("open after a crash during recovery: %v (want success: the torn frame was never acknowledged)", err)
	}
	defer db.Close()
	if rec, err := db.Load(context.Background(), 3); err != nil || string(rec.Data) != "replayed" {
		t.Errorf("replayed record: %+v %v", rec, err)
	}
}

// TestReviewRecoveryZeroTail: a crash can leave the end of the newest
// segment as zeros (the size reached the disk, the data did not). Eight
// zero bytes parse as a frame of length 0 whose CRC-32C (of nothing) is 0,
// so it "passes" the checksum, then fails to decode, and Open fails instead
// of cutting the unacknowledged tail off.
func TestReviewRecoveryZeroTail(t *testing.T) {
	path, last := emptyStore(t)
	writeSegment(t, path, 2, frameFor(last+1, 3, "replayed"), make([]byte, 4096))
	db, err := Open(path, nil)
	if err != nil {
		t.Fatalf("open with a zero-filled tail: %v (want the tail cut off like any torn frame)", err)
	}
	defer db.Close()
	if rec, err := db.Load(context.Background(), 3); err != nil || string(rec.Data) != "replayed" {
		t.Errorf("replayed record: %+v %v", rec, err)
	}
}

// TestReviewPackRescuedObjectLosesBlob: an object unreachable at the mark
// and re-linked by a commit after it is rescued by rescue(), but the blobs
// its kept revisions refer to were only added to p.blobs for objects live
// at the mark. sweepBlobs deletes them: the rescued object dangles.
func TestReviewPackRescuedObjectLosesBlob(t *testing.T) {
	ctx := context.Background()
	db := reviewOpen(t, filepath.Join(t.TempDir(), "img.db"), nil)
	blob, err := db.PutBlob(ctx, strings.NewReader("content of a rescued object"))
	if err != nil {
		t.Fatal(err)
	}
	o, _ := db.NewOIDs(ctx, 2)
	root, d := o[0], o[1]
	t1 := reviewCommit(t, db, store.Write{OID: root, Data: storetest.Rec("root", d)}, store.Write{OID: d, Data: storetest.RecBlobs("d", blob.Digest)})
	t2 := reviewCommit(t, db, store.Write{OID: root, Serial: t1, Data: storetest.Rec("root")}) // d unreachable
	time.Sleep(2 * time.Millisecond)
	_, err = db.Pack(ctx, store.PackOptions{Before: time.Now(), Root: root, Refs: storetest.Refs,
		// A writer that still held d from an older snapshot links it
		// again; this is the race rescue() exists for.
		BeforeSweep: func(ctx context.Context, marked store.TID) error {
			_, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: root, Serial: t2, Data: storetest.Rec("root", d)}})
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Load(ctx, d); err != nil {
		t.Fatalf("rescued object: %v", err)
	}
	if _, err := db.StatBlob(ctx, blob.Digest); err != nil {
		t.Errorf("blob of the rescued (reachable) object: %v", err)
	}
	reviewVerify(t, db)
}

// TestReviewPackUnpinsReputBlob: PutBlob of content that already exists
// (referenced once by a now-superseded revision) re-pins it and returns;
// the caller may now commit a reference. But pack sees the old superseded
// revision as proof that "its" transaction committed, unpins the new pin,
// and deletes the blob before the new commit lands.
func TestReviewPackUnpinsReputBlob(t *testing.T) {
	ctx := context.Background()
	db := reviewOpen(t, filepath.Join(t.TempDir(), "img.db"), nil)
	content := "same content twice"
	b1, err := db.PutBlob(ctx, strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	o, _ := db.NewOIDs(ctx, 2)
	root, a := o[0], o[1]
	t1 := reviewCommit(t, db, store.Write{OID: root, Data: storetest.Rec("root", a)}, store.Write{OID: a, Data: storetest.RecBlobs("a1", b1.Digest)})
	t2 := reviewCommit(t, db, store.Write{OID: a, Serial: t1, Data: storetest.Rec("a2")})
	// A new transaction puts the same content and is about to commit it.
	b2, err := db.PutBlob(ctx, strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	if _, err := db.Pack(ctx, store.PackOptions{Before: time.Now(), Root: root, Refs: storetest.Refs}); err != nil {
		t.Fatal(err)
	}
	reviewCommit(t, db, store.Write{OID: a, Serial: t2, Data: storetest.RecBlobs("a3", b2.Digest)})
	if _, err := db.StatBlob(ctx, b2.Digest); err != nil {
		t.Errorf("blob put (and pinned) before pack, committed after: %v", err)
	}
	reviewVerify(t, db)
}

// TestReviewPackDropsNewestTxn: pack drops the log entry of a transaction
// whose only revision was a deletion ("deleted and never revived"), even
// if it is the newest transaction. loadCounters takes LastTID from the
// newest log entry, so after reopening LastTID goes backwards, and with an
// injected clock the next commit reuses a TID that was already handed out
// (and is refused undo as "packed").
func TestReviewPackDropsNewestTxn(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "img.db")
	clock := time.Unix(1_000_000, 0)
	opts := &Options{Now: func() time.Time { return clock }}
	db, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := db.NewOIDs(ctx, 2)
	root, x := o[0], o[1]
	reviewCommit(t, db, store.Write{OID: root, Data: storetest.Rec("root")})
	t1 := reviewCommit(t, db, store.Write{OID: x, Data: storetest.Rec("x")})
	t2, err := db.Undo(ctx, t1, store.TxMeta{})
	if err != nil {
		t.Fatal(err)
	}
	// The cut is t2 itself, on the injected clock: t1 and t2 go.
	if _, err := db.Pack(ctx, store.PackOptions{Before: t2.Time(), Root: root, Refs: storetest.Refs}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = reviewOpen(t, path, opts)
	if got := db.LastTID(); got < t2 {
		t.Errorf("LastTID after reopen %s, want >= %s (the undo that was committed and acknowledged)", got, t2)
	}
	rec, err := db.Load(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	tid := reviewCommit(t, db, store.Write{OID: root, Serial: rec.Serial, Data: storetest.Rec("root2")})
	if tid <= t2 {
		t.Errorf("commit after reopen got %s, not after %s handed out before", tid, t2)
	}
	if _, err := db.Undo(ctx, tid, store.TxMeta{}); err != nil {
		t.Errorf("undo of a transaction committed after the pack: %v", err)
	}
}

// TestReviewCheckpointFailurePanics: after a background checkpoint fails
// (here bbolt's MaxSize stands in for a full disk), finishCheckpoint keeps
// the frozen generation in the overlay and sets db.failed, but
// maybeCheckpoint does not look at db.failed: the next idle checkpoint
// freezes again and overlay.freeze panics, killing the process. Run in a
// child process so the panic does not take the test binary down.
func TestReviewCheckpointFailurePanics(t *testing.T) {
	if dir := os.Getenv("BATOS_REVIEW_CKPT_CHILD"); dir != "" {
		reviewCheckpointChild(dir)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReviewCheckpointFailurePanics$")
	cmd.Env = append(os.Environ(), "BATOS_REVIEW_CKPT_CHILD="+t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil || !strings.Contains(out.String(), "child survived") {
		t.Errorf("child after a failed checkpoint: %v\n%s", err, firstLines(out.String(), 20))
	}
}

func reviewCheckpointChild(dir string) {
	ctx := context.Background()
	db, err := Open(filepath.Join(dir, "img.db"), nil)
	if err != nil {
		panic(err)
	}
	db.Bolt().MaxSize = 1 // every write needing a new page at the end fails: "disk full"
	big := bytes.Repeat([]byte("x"), 1<<20)
	if _, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: 2, Data: big}}); err != nil {
		panic(err) // the log takes it; only the checkpoint fails
	}
	time.Sleep(200 * time.Millisecond) // idle checkpoint runs and fails
	if _, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: 3, Data: []byte("small")}}); err != nil {
		panic(err)
	}
	time.Sleep(200 * time.Millisecond) // next idle checkpoint
	os.Stdout.WriteString("child survived\n")
	db.Close() // reports the checkpoint error; that is fine
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// TestReviewReadAfterClose: store.ErrClosed "is returned by operations on
// a closed store", but reads go straight to the closed bbolt handle and
// return bbolt's own error (checkOpen exists and is never called).
func TestReviewReadAfterClose(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "img.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	reviewCommit(t, db, store.Write{OID: 2, Data: []byte("x")})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Load(ctx, 2); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Load after Close: got %v, want ErrClosed", err)
	}
	if _, err := db.Log(ctx, store.LogQuery{}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Log after Close: got %v, want ErrClosed", err)
	}
}
