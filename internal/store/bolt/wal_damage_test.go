package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"batos/internal/store"
)

// The tests here damage the write-ahead log and the newest meta page of a
// closed image: damage that loses acknowledged commits stops the open,
// naming the file, the offset and the commits at stake, and changes no
// file; OpenRecovering keeps what is intact and says what was lost.

// snapshotFiles reads every file of the image, to show an open that
// refused changed none.
func snapshotFiles(t *testing.T, path string) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, name := range names {
		if fi, err := os.Stat(name); err != nil || fi.IsDir() || strings.HasSuffix(name, ".lock") {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = data
	}
	return files
}

func checkUnchanged(t *testing.T, path string, before map[string][]byte) {
	t.Helper()
	after := snapshotFiles(t, path)
	for name, data := range before {
		if !bytes.Equal(after[name], data) {
			t.Errorf("%s changed by a refused open", filepath.Base(name))
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s created by a refused open", filepath.Base(name))
		}
	}
}

// threeFrames writes a segment of three frames, each committing one
// record, and returns their TIDs and where the middle frame starts.
func threeFrames(t *testing.T) (path string, tids [3]store.TID, middle int64) {
	path, last := emptyStore(t)
	a, b, c := frameFor(last+1, 3, "first"), frameFor(last+2, 4, "second"), frameFor(last+3, 5, "third")
	writeSegment(t, path, 9, a, b, c)
	return path, [3]store.TID{last + 1, last + 2, last + 3}, walHeaderSize + int64(len(a))
}

func mutateSegment(t *testing.T, path string, seq uint64, fn func([]byte)) {
	t.Helper()
	name := segmentName(path+".wal", seq)
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	fn(data)
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWALDamageMidSegment(t *testing.T) {
	tests := []struct {
		name   string
		offset int64 // within the middle frame
	}{
		{"magic", 1},
		{"length", 6},
		{"durable", 12},
		{"header checksum", 17},
		{"payload checksum", 21},
		{"payload", frameHeadSize + 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, tids, middle := threeFrames(t)
			mutateSegment(t, path, 9, func(b []byte) { b[middle+tt.offset] ^= 0x10 })
			before := snapshotFiles(t, path)
			_, err := Open(path, nil)
			var de *store.DamageError
			if !errors.As(err, &de) || !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("open: got %v, want a *store.DamageError", err)
			}
			if de.Path != segmentName(path+".wal", 9) || de.Offset != middle || de.After != tids[0] || de.Before != tids[2] {
				t.Errorf("damage: path %s offset %d after %s before %s; want %s, %d, %s, %s",
					de.Path, de.Offset, de.After, de.Before, segmentName(path+".wal", 9), middle, tids[0], tids[2])
			}
			for _, want := range []string{filepath.Base(de.Path), "offset", tids[0].String(), tids[2].String()} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
			checkUnchanged(t, path, before)

			// Recovery keeps the frames on both sides and moves the
			// segment aside.
			db, rep, err := OpenRecovering(path, nil)
			if err != nil {
				t.Fatalf("recover: %v", err)
			}
			defer db.Close()
			if len(rep.Damage) != 1 || rep.Damage[0].After != tids[0] || rep.Damage[0].Before != tids[2] || len(rep.MovedAside) != 1 || rep.Replayed != 2 {
				t.Errorf("recovery report %+v (damage %v)", rep, rep.Damage)
			}
			if _, err := os.Stat(rep.MovedAside[0]); err != nil {
				t.Errorf("damaged segment not kept aside: %v", err)
			}
			for oid, want := range map[store.OID]string{3: "first", 5: "third"} {
				if rec, err := db.Load(context.Background(), oid); err != nil || string(rec.Data) != want {
					t.Errorf("Load(%s) after recovery = %q, %v; want %q", oid, rec.Data, err, want)
				}
			}
			if _, err := db.Load(context.Background(), 4); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the damaged frame's record: got %v, want not found", err)
			}
		})
	}
}

// TestWALUnsyncedFramesAfterTornOne: frames written back to back before
// one fdatasync may reach the disk in any order. A bad frame followed by
// an intact one that was written before the bad one was durable is a torn
// tail: neither was acknowledged.
func TestWALUnsyncedFramesAfterTornOne(t *testing.T) {
	path, last := emptyStore(t)
	a, b, c := frameFor(last+1, 3, "first"), frameFor(last+2, 4, "second"), frameFor(last+3, 5, "third")
	seg := encodeHeader(segmentHeader{seq: 4})
	sealFrame(a, walHeaderSize)
	seg = append(seg, a...)
	sealFrame(b, int64(len(seg))) // a was durable when b was written
	middle := int64(len(seg))
	seg = append(seg, b...)
	sealFrame(c, middle) // c was written before b was synced
	seg = append(seg, c...)
	seg[middle+frameHeadSize+3] ^= 0x40
	if err := os.WriteFile(segmentName(path+".wal", 4), seg, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, nil)
	if err != nil {
		t.Fatalf("open: %v (want the unacknowledged tail cut off)", err)
	}
	defer db.Close()
	if rec, err := db.Load(context.Background(), 3); err != nil || string(rec.Data) != "first" {
		t.Errorf("Load(3) = %q, %v", rec.Data, err)
	}
	for _, oid := range []store.OID{4, 5} {
		if _, err := db.Load(context.Background(), oid); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Load(%s) of an unacknowledged frame: %v", oid, err)
		}
	}
}

// TestWALDamagedSegmentHeader: a header is synced before any frame, so a
// header that fails its checksum is damage; so is one whose magic is
// damaged (it must not pass for a segment of the old format), with frames
// behind it or without.
func TestWALDamagedSegmentHeader(t *testing.T) {
	for _, at := range []int{0, 7, 9, 22, 30} {
		t.Run(fmt.Sprintf("frames behind, byte %d", at), func(t *testing.T) {
			path, _, _ := threeFrames(t)
			mutateSegment(t, path, 9, func(b []byte) { b[at] ^= 1 })
			before := snapshotFiles(t, path)
			_, err := Open(path, nil)
			var de *store.DamageError
			if !errors.As(err, &de) || de.Offset != 0 || !strings.Contains(err.Error(), "header") {
				t.Fatalf("open: got %v, want damage at offset 0 naming the header", err)
			}
			checkUnchanged(t, path, before)
		})
	}
	t.Run("clean segment, magic", func(t *testing.T) {
		path, _ := emptyStore(t)
		segs := globSegments(t, path)
		if len(segs) != 1 {
			t.Fatalf("segments %v", segs)
		}
		data, err := os.ReadFile(segs[0])
		if err != nil {
			t.Fatal(err)
		}
		data[0] ^= 1
		if err := os.WriteFile(segs[0], data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path, nil); !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "header") {
			t.Fatalf("open: got %v, want the damaged header reported", err)
		}
	})
}

// TestWALLegacySegment: a segment written before the log had headers is
// still replayed.
func TestWALLegacySegment(t *testing.T) {
	path, last := emptyStore(t)
	for _, name := range globSegments(t, path) {
		os.Remove(name)
	}
	writeLegacySegment(t, path, 3, frameFor(last+1, 3, "old format"), frameFor(last+2, 4, "old too"))
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if rec, err := db.Load(context.Background(), 4); err != nil || string(rec.Data) != "old too" {
		t.Errorf("Load(4) = %q, %v", rec.Data, err)
	}
}

func globSegments(t *testing.T, path string) []string {
	t.Helper()
	names, err := filepath.Glob(path + ".wal.*")
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestCleanCloseLeavesHeader: a clean close leaves one empty segment
// flagged clean, recording the newest TID; a crash leaves frames.
func TestCleanCloseLeavesHeader(t *testing.T) {
	path, last := emptyStore(t)
	segs := globSegments(t, path)
	if len(segs) != 1 {
		t.Fatalf("after a clean close: segments %v, want one", segs)
	}
	s, err := scanSegment(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	if s.header == nil || s.header.flags&walFlagClean == 0 || s.header.base != last || len(s.txs) != 0 || s.torn() {
		t.Errorf("clean segment: header %+v, %d transactions, torn %v; want clean, base %s, empty", s.header, len(s.txs), s.torn(), last)
	}
	if !closedCleanly(path + ".wal") {
		t.Error("after a clean close: not seen as clean")
	}
	writeSegment(t, path, 50, frameFor(last+1, 3, "after a crash"))
	if closedCleanly(path + ".wal") {
		t.Error("a log holding frames seen as clean")
	}
}

// newestMetaOffset returns the offset of the txid field's checksum in
// the bbolt meta page with the higher txid.
func newestMetaChecksum(t *testing.T, path string) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A meta page: page header (16), magic, version, page size, flags
	// (4 each), root bucket (16), freelist, pgid, txid, checksum (8 each).
	pageSize := int64(binary.LittleEndian.Uint32(data[16+8:]))
	txid := func(page int64) uint64 { return binary.LittleEndian.Uint64(data[page*pageSize+16+48:]) }
	newest := int64(0)
	if txid(1) > txid(0) {
		newest = 1
	}
	return newest*pageSize + 16 + 56
}

// TestDamagedNewestMetaPage: bbolt falls back to the older meta page when
// the newest fails its checksum, silently rolling back the last
// checkpoint. The clean-close segment's header says what was
// acknowledged, so opening refuses, naming the gap.
func TestDamagedNewestMetaPage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := db.Commit(context.Background(), store.TxMeta{}, []store.Write{{OID: 2, Data: []byte("checkpointed")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	newest, err := db.Commit(context.Background(), store.TxMeta{}, []store.Write{{OID: 3, Data: []byte("in the last checkpoint")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[newestMetaChecksum(t, path)] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshotFiles(t, path)
	_, err = Open(path, nil)
	var de *store.DamageError
	if !errors.As(err, &de) || de.Path != path || de.After != first {
		t.Fatalf("open: got %v, want a *store.DamageError on %s after %s", err, path, first)
	}
	if !strings.Contains(err.Error(), newest.String()) {
		t.Errorf("error %q does not name the newest acknowledged commit %s", err, newest)
	}
	checkUnchanged(t, path, before)

	// Recovery accepts the older state and says what is gone.
	db, rep, err := OpenRecovering(path, nil)
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	defer db.Close()
	if len(rep.Damage) != 1 || rep.Damage[0].Path != path {
		t.Errorf("recovery report: %+v", rep.Damage)
	}
	if rec, err := db.Load(context.Background(), 2); err != nil || string(rec.Data) != "checkpointed" {
		t.Errorf("Load(2) = %q, %v", rec.Data, err)
	}
}

// TestReadOnlyOpen: a read-only open replays the log into memory, writes
// nothing, and refuses writes.
func TestReadOnlyOpen(t *testing.T) {
	path, last := emptyStore(t)
	writeSegment(t, path, 60, frameFor(last+1, 3, "in the log only"))
	before := snapshotFiles(t, path)
	db, err := Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if rec, err := db.Load(ctx, 3); err != nil || string(rec.Data) != "in the log only" {
		t.Errorf("Load(3) = %q, %v", rec.Data, err)
	}
	if log, err := db.Log(ctx, store.LogQuery{Limit: 1}); err != nil || len(log) != 1 || log[0].TID != last+1 {
		t.Errorf("Log = %v, %v", log, err)
	}
	if _, err := db.Verify(ctx, nil); err != nil {
		t.Errorf("verify: %v", err)
	}
	if st, err := db.Stats(ctx); err != nil || st.Transactions != 2 || st.Objects != 2 || st.Revisions != 2 || st.LastTID != last+1 {
		t.Errorf("stats: %+v, %v; want the log's transaction counted (2 transactions, objects and revisions, last %s)", st, err, last+1)
	}
	if _, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: 9, Data: []byte("x")}}); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("commit: got %v, want ErrReadOnly", err)
	}
	if _, err := db.PutBlob(ctx, strings.NewReader("x")); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("put blob: got %v, want ErrReadOnly", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	checkUnchanged(t, path, before)
}

// TestWALRandomFlips flips random bytes of a log segment holding ten
// frames, as left by a crash. The only damage that may pass for a torn
// tail is damage to every frame from some frame on: no intact frame
// after it proves it was durable. Otherwise opening refuses with a
// *store.DamageError, or replays every frame, each exactly as written.
func TestWALRandomFlips(t *testing.T) {
	const frames = 10
	path, last := emptyStore(t)
	base, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	payload := func(i int) string { return fmt.Sprintf("frame %d %s", i, strings.Repeat("w", i*37)) }
	var fs [][]byte
	starts := make([]int64, frames+1)
	starts[0] = walHeaderSize
	for i := range frames {
		fs = append(fs, frameFor(last+store.TID(i+1), store.OID(10+i), payload(i)))
		starts[i+1] = starts[i] + int64(len(fs[i]))
	}
	writeSegment(t, path, 3, fs...)
	segment, err := os.ReadFile(segmentName(path+".wal", 3))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for trial := range 300 {
		seed := rng.Uint64()
		r := rand.New(rand.NewPCG(seed, 1))
		damaged := bytes.Clone(segment)
		hit := make([]bool, frames) // frames with a flipped byte
		header := false
		for range 1 + r.IntN(3) {
			at := r.Int64N(int64(len(damaged)))
			damaged[at] ^= byte(1 + r.IntN(255))
			header = header || at < walHeaderSize
			for i := range frames {
				hit[i] = hit[i] || (at >= starts[i] && at < starts[i+1])
			}
		}
		firstHit := slices.Index(hit, true)
		tornTail := !header && firstHit >= 0 && !slices.Contains(hit[firstHit:], false)

		if err := os.WriteFile(path, base, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, name := range globSegments(t, path) {
			os.Remove(name)
		}
		if err := os.WriteFile(segmentName(path+".wal", 3), damaged, 0o644); err != nil {
			t.Fatal(err)
		}
		db, err := Open(path, nil)
		var de *store.DamageError
		switch {
		case err != nil && !errors.As(err, &de):
			t.Fatalf("trial %d (seed %d): open: %v, want a *store.DamageError", trial, seed, err)
		case err != nil && tornTail:
			t.Errorf("trial %d (seed %d): damage to every frame from %d on refused as %v; it cannot be told from a torn tail", trial, seed, firstHit, err)
		case err != nil:
			continue
		case !tornTail && (header || firstHit >= 0):
			t.Errorf("trial %d (seed %d): frames %v (header %v) damaged, an intact frame after them, and the open succeeded", trial, seed, hit, header)
		}
		if err != nil {
			continue
		}
		for i := range frames {
			rec, err := db.Load(context.Background(), store.OID(10+i))
			switch {
			case err == nil && string(rec.Data) != payload(i):
				t.Errorf("trial %d (seed %d): frame %d replayed wrong: %q", trial, seed, i, rec.Data)
			case err != nil && (firstHit < 0 || i < firstHit):
				t.Errorf("trial %d (seed %d): intact frame %d before the damage lost: %v", trial, seed, i, err)
			}
		}
		db.Close()
	}
}
