package bolt_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"batos/internal/store"
	"batos/internal/store/bolt"
	"batos/internal/store/storetest"
)

// The tests here damage the files under a closed store and check that the
// damage is reported, naming what it hit, by Verify and by every read that
// touches it, while everything else stays readable.

// TestCorruptRecord flips one byte of a record envelope inside the bbolt
// file: in the payload, the checksum or the flags.
func TestCorruptRecord(t *testing.T) {
	const marker = "corrupt-record-marker-5c1f"
	// A record is flags(1) crc32c(4) payload, and storetest.Rec's payload
	// starts with {"p":" before the marker.
	payloadStart := -len(`{"p":"`)
	tests := []struct {
		name   string
		offset int // from the marker's first byte
	}{
		{"payload", 4},
		{"checksum", payloadStart - 2},
		{"flags", payloadStart - 5}, // 0 becomes flagDeleted: a checksum failure, not a deletion
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "img.db")
			db := openStore(t, path)
			o := newOIDs(t, db, 3)
			victim, neighbour, other := o[0], o[1], o[2]
			t1 := mustCommit(t, db, store.TxMeta{},
				store.Write{OID: victim, Data: storetest.Rec("first")},
				store.Write{OID: neighbour, Data: storetest.Rec("neighbour", victim)},
				store.Write{OID: other, Data: storetest.Rec("other")})
			t2 := mustCommit(t, db, store.TxMeta{}, store.Write{OID: victim, Serial: t1, Data: storetest.Rec(marker)})
			db.Close()
			flipAt(t, path, marker, tt.offset)
			db = openStore(t, path)

			_, err := db.Load(ctx, victim)
			checkCorruptError(t, "Load", err, victim, t2)
			_, err = db.History(ctx, victim, 0)
			checkCorruptError(t, "History", err, victim, t2)
			if rec, err := db.LoadAt(ctx, victim, t1); err != nil || storetest.Payload(rec.Data) != "first" {
				t.Errorf("LoadAt(%s, %s) = %q, %v; want the intact older revision", victim, t1, storetest.Payload(rec.Data), err)
			}
			for oid, want := range map[store.OID]string{neighbour: "neighbour", other: "other"} {
				if rec, err := db.Load(ctx, oid); err != nil || storetest.Payload(rec.Data) != want {
					t.Errorf("Load(%s) = %q, %v; want %q", oid, storetest.Payload(rec.Data), err, want)
				}
			}
			checkProblems(t, db, store.Problem{Kind: store.CorruptRecord, OID: victim, TID: t2})

			// Pack must not decide anything on the strength of corrupt data.
			_, err = db.Pack(ctx, store.PackOptions{Before: time.Now(), Root: neighbour, Refs: storetest.Refs})
			if !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("Pack: got %v, want an error wrapping ErrCorrupt", err)
			}
			if rec, err := db.LoadAt(ctx, victim, t1); err != nil || rec.Serial != t1 {
				t.Errorf("after refused pack, LoadAt(%s, %s) = %+v, %v", victim, t1, rec, err)
			}
		})
	}
}

// TestCorruptTransaction flips a byte of a log entry's description.
func TestCorruptTransaction(t *testing.T) {
	const marker = "corrupt-log-marker-9e2d"
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "img.db")
	db := openStore(t, path)
	o := newOIDs(t, db, 3)
	t1 := mustCommit(t, db, store.TxMeta{User: "u"}, store.Write{OID: o[0], Data: storetest.Rec("a")})
	t2 := mustCommit(t, db, store.TxMeta{User: "u", Description: "before " + marker + " after"}, store.Write{OID: o[1], Data: storetest.Rec("b")})
	t3 := mustCommit(t, db, store.TxMeta{User: "u"}, store.Write{OID: o[2], Data: storetest.Rec("c")})
	db.Close()
	flipAt(t, path, marker, 3)
	db = openStore(t, path)

	_, err := db.Transaction(ctx, t2)
	checkCorruptError(t, "Transaction", err, 0, t2)
	for _, tid := range []store.TID{t1, t3} {
		if info, err := db.Transaction(ctx, tid); err != nil || info.TID != tid {
			t.Errorf("Transaction(%s) = %+v, %v", tid, info, err)
		}
	}
	if _, err := db.Log(ctx, store.LogQuery{}); err != nil && !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("Log: got %v, want success or an error wrapping ErrCorrupt", err)
	}
	if rec, err := db.Load(ctx, o[1]); err != nil || rec.Serial != t2 || storetest.Payload(rec.Data) != "b" {
		t.Errorf("Load(%s) = %+v, %v; want its record of %s, which is intact", o[1], rec, err, t2)
	}
	if _, err := db.Undo(ctx, t2, store.TxMeta{}); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("Undo(%s): got %v, want an error wrapping ErrCorrupt", t2, err)
	}
	checkProblems(t, db, store.Problem{Kind: store.CorruptTransaction, TID: t2})
}

// TestCorruptBlob flips a byte of one referenced blob file and deletes
// another.
func TestCorruptBlob(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "img.db")
	db := openStore(t, path)
	bad := putBlob(t, db, strings.Repeat("a blob to corrupt. ", 1000))
	gone := putBlob(t, db, "a blob to delete")
	good := putBlob(t, db, "a blob that stays")
	o := newOIDs(t, db, 3)
	tid := mustCommit(t, db, store.TxMeta{},
		store.Write{OID: o[0], Data: storetest.RecBlobs("bad", bad.Digest)},
		store.Write{OID: o[1], Data: storetest.RecBlobs("gone", gone.Digest)},
		store.Write{OID: o[2], Data: storetest.RecBlobs("good", good.Digest)})
	badPath := blobPath(path, bad.Digest)
	content, err := os.ReadFile(badPath)
	if err != nil {
		t.Fatalf("blob %s is not at %s: %v", bad.Digest, badPath, err)
	}
	content[len(content)/2] ^= 0x20
	if err := os.WriteFile(badPath, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(blobPath(path, gone.Digest)); err != nil {
		t.Fatalf("blob %s: %v", gone.Digest, err)
	}

	err = readBlob(ctx, db, bad.Digest)
	var cbe *store.CorruptBlobError
	if !errors.Is(err, store.ErrCorrupt) || !errors.As(err, &cbe) {
		t.Errorf("reading the damaged blob: got %v, want a *CorruptBlobError", err)
	} else if cbe.Digest != bad.Digest || !strings.Contains(err.Error(), bad.Digest.String()) {
		t.Errorf("reading the damaged blob: got %v, want it to name %s", err, bad.Digest)
	}
	if _, err := db.OpenBlob(ctx, gone.Digest); !errors.Is(err, store.ErrBlobNotFound) {
		t.Errorf("OpenBlob of the deleted blob: got %v, want ErrBlobNotFound", err)
	}
	if err := readBlob(ctx, db, good.Digest); err != nil {
		t.Errorf("intact blob: %v", err)
	}
	if rec, err := db.Load(ctx, o[0]); err != nil || storetest.Payload(rec.Data) != "bad" {
		t.Errorf("Load(%s) = %+v, %v; its record is intact", o[0], rec, err)
	}
	checkProblems(t, db,
		store.Problem{Kind: store.MissingBlob, OID: o[1], TID: tid, Digest: gone.Digest},
		store.Problem{Kind: store.CorruptBlob, Digest: bad.Digest})
}

// openStore opens the store at path and closes it when the test ends,
// after bbolt's consistency check.
func openStore(t *testing.T, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { mustCheck(t, db); db.Close() })
	return db
}

func newOIDs(t *testing.T, db *bolt.DB, n int) []store.OID {
	t.Helper()
	oids, err := db.NewOIDs(t.Context(), n)
	if err != nil {
		t.Fatalf("NewOIDs: %v", err)
	}
	return oids
}

func mustCommit(t *testing.T, db *bolt.DB, meta store.TxMeta, writes ...store.Write) store.TID {
	t.Helper()
	tid, err := db.Commit(t.Context(), meta, writes)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	return tid
}

func putBlob(t *testing.T, db *bolt.DB, content string) store.Blob {
	t.Helper()
	b, err := db.PutBlob(t.Context(), strings.NewReader(content))
	if err != nil {
		t.Fatalf("PutBlob: %v", err)
	}
	return b
}

// blobPath is where the store keeps a blob: PATH.blobs/ab/abcd....
func blobPath(dbPath string, d store.Digest) string {
	return filepath.Join(dbPath+".blobs", d.Hex()[:2], d.Hex())
}

// flipAt flips a bit of the byte at offset from each occurrence of marker
// in the file: bbolt writes a record as is into its page, and an older copy
// of the page may linger in free space.
func flipAt(t *testing.T, path, marker string, offset int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte(marker))
		if j < 0 {
			break
		}
		data[i+j+offset] ^= 0x01
		i += j + len(marker)
		n++
	}
	if n == 0 {
		t.Fatalf("%q not found in %s", marker, path)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkCorruptError checks that err reports the record of oid written by
// tid (or, with oid 0, tid's log entry) as corrupt, and names it.
func checkCorruptError(t *testing.T, op string, err error, oid store.OID, tid store.TID) {
	t.Helper()
	var ce *store.CorruptError
	if !errors.Is(err, store.ErrCorrupt) || !errors.As(err, &ce) {
		t.Errorf("%s: got %v, want a *CorruptError", op, err)
		return
	}
	if ce.OID != oid || ce.TID != tid {
		t.Errorf("%s: got %v, want it about %s at %s", op, err, oid, tid)
	}
	names := []string{tid.String()}
	if oid != 0 {
		names = append(names, oid.String())
	}
	for _, name := range names {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %q does not name %s", op, err, name)
		}
	}
}

// checkProblems checks that Verify reports exactly want, details aside.
func checkProblems(t *testing.T, db *bolt.DB, want ...store.Problem) {
	t.Helper()
	rep, err := db.Verify(t.Context(), storetest.Refs)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	got := slices.Clone(rep.Problems)
	for _, p := range got {
		if p.Detail == "" && p.Kind != store.MissingBlob {
			t.Errorf("verify: problem %s has no detail", p)
		}
	}
	byKind := func(a, b store.Problem) int { return int(a.Kind) - int(b.Kind) }
	slices.SortFunc(got, byKind)
	slices.SortFunc(want, byKind)
	if diff := cmp.Diff(got, want, cmpopts.IgnoreFields(store.Problem{}, "Detail"), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("verify problems (-got +want):\n%s", diff)
	}
}
