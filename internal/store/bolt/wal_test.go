package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"batos/internal/store"
)

// frameFor encodes a group committing one record, as the committer would.
func frameFor(tid store.TID, oid store.OID, payload string) []byte {
	info := &store.TxInfo{TID: tid, Time: time.Unix(0, int64(tid)), User: "wal-test", OIDs: []store.OID{oid}}
	f := encodeGroup([]walTx{{
		tid:    tid,
		entry:  encodeTxn(tidKey(tid), info),
		writes: []walWrite{{oid: oid, record: encodeRecord(revKey(oid, tid), 0, []byte(payload))}},
	}})
	sealFrame(f, walHeaderSize)
	return f
}

// writeSegment leaves a log segment as a crash would: written, never
// checkpointed. Each frame is sealed as if every frame before it was
// durable when it was written; a frame shorter than its header is left as
// it is (a torn end).
func writeSegment(t *testing.T, path string, seq uint64, frames ...[]byte) {
	t.Helper()
	b := encodeHeader(segmentHeader{seq: seq})
	for _, f := range frames {
		if len(f) >= frameHeadSize && binary.BigEndian.Uint32(f) == frameMagic {
			sealFrame(f[:frameHeadSize+int(binary.BigEndian.Uint32(f[4:]))], int64(len(b)))
		}
		b = append(b, f...)
	}
	if err := os.WriteFile(segmentName(path+".wal", seq), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeLegacySegment writes a segment as batos wrote them before the log
// had headers: length(4) crc32c(4) payload per frame.
func writeLegacySegment(t *testing.T, path string, seq uint64, frames ...[]byte) {
	t.Helper()
	var b []byte
	for _, f := range frames {
		payload := f[frameHeadSize:]
		h := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
		sum := crc32.Update(crc32.Checksum(h, castagnoli), castagnoli, payload)
		b = append(b, append(binary.BigEndian.AppendUint32(h, sum), payload...)...)
	}
	if err := os.WriteFile(segmentName(path+".wal", seq), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func emptyStore(t *testing.T) (string, store.TID) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wal.db")
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	tid, err := db.Commit(context.Background(), store.TxMeta{}, []store.Write{{OID: 2, Data: []byte("base")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path, tid
}

// TestRecoveryCutsTornFrame: the newest segment's intact frames are
// replayed, a torn frame after them is dropped, and the log is gone.
func TestRecoveryCutsTornFrame(t *testing.T) {
	path, last := emptyStore(t)
	good := frameFor(last+1, 3, "replayed")
	torn := frameFor(last+2, 4, "torn")
	writeSegment(t, path, 7, good, torn[:len(torn)-3])
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec, err := db.Load(context.Background(), 3)
	if err != nil || string(rec.Data) != "replayed" || rec.Serial != last+1 {
		t.Errorf("replayed record: %+v %v", rec, err)
	}
	if _, err := db.Load(context.Background(), 4); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("torn frame's record: got %v, want ErrNotFound", err)
	}
	if db.LastTID() != last+1 {
		t.Errorf("LastTID %s, want %s", db.LastTID(), last+1)
	}
	if _, err := os.Stat(segmentName(path+".wal", 7)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("replayed segment still there: %v", err)
	}
	// Frames already in the file are skipped, not applied twice.
	tid, err := db.Commit(context.Background(), store.TxMeta{}, []store.Write{{OID: 3, Serial: last + 1, Data: []byte("next")}})
	if err != nil || tid <= last+1 {
		t.Errorf("commit after recovery: %s %v", tid, err)
	}
}

// TestRecoveryRefusesDamagedOlderSegment: damage anywhere but the end of
// the newest segment would lose acknowledged commits; opening says so.
func TestRecoveryRefusesDamagedOlderSegment(t *testing.T) {
	path, last := emptyStore(t)
	bad := frameFor(last+1, 3, "x")
	bad[len(bad)-1] ^= 0xff
	writeSegment(t, path, 1, bad, frameFor(last+2, 4, "y"))
	writeSegment(t, path, 2, frameFor(last+3, 5, "z"))
	_, err := Open(path, nil)
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("open with a damaged older segment: got %v, want ErrCorrupt", err)
	}
	if _, err := os.Stat(segmentName(path+".wal", 1)); err != nil {
		t.Errorf("damaged segment removed: %v", err)
	}
}

// TestRecoverySkipsCheckpointedFrames: a crash between a checkpoint and
// the removal of its segment leaves frames already in the file.
func TestRecoverySkipsCheckpointedFrames(t *testing.T) {
	path, last := emptyStore(t)
	writeSegment(t, path, 3, frameFor(last, 2, "stale copy"))
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if rec, err := db.Load(context.Background(), 2); err != nil || string(rec.Data) != "base" {
		t.Errorf("record: %+v %v, want base", rec, err)
	}
}

// TestNoBackgroundCheckpoint: with Options.NoBackgroundCheckpoint a commit
// stays in the write-ahead log however long commits pause, and Close
// writes it into the file.
func TestNoBackgroundCheckpoint(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wal.db")
	db, err := Open(path, &Options{NoBackgroundCheckpoint: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tid, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: 2, Data: []byte("kept in the log")}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * checkpointIdle) // a pause that checkpoints without the option
	inFile := func(db *DB) bool {
		var found bool
		err := db.Bolt().View(func(tx *bbolt.Tx) error {
			found = tx.Bucket(bucketRevs).Get(revKey(2, tid)) != nil
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	if inFile(db) {
		t.Errorf("the commit was checkpointed into the file")
	}
	segs, _ := filepath.Glob(path + ".wal.*")
	var size int64
	for _, seg := range segs {
		if fi, err := os.Stat(seg); err == nil {
			size += fi.Size()
		}
	}
	if size == 0 {
		t.Errorf("the write-ahead log is empty, want the commit in it")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if !inFile(db) {
		t.Errorf("the commit is not in the file after Close")
	}
}
