package bolt_test

import (
	"path/filepath"
	"testing"

	"batos/internal/store"
	"batos/internal/store/bolt"
	"batos/internal/store/storetest"
)

// TestSerialAtLearns: the store knows the serial of what it committed
// and of what a load found newest, not of an older revision, and starts
// knowing nothing again when reopened. The conformance suite checks that
// what it knows is right; this, that it knows it, as the image's
// unread loads need.
func TestSerialAtLearns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openStore(t, path)
	oid := newOIDs(t, db, 1)[0]
	ctx := t.Context()
	t1, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: oid, Data: storetest.Rec("1")}})
	if err != nil {
		t.Fatal(err)
	}
	t2, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: oid, Serial: t1, Data: storetest.Rec("2")}})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := db.SerialAt(oid, db.LastTID()); !ok || got != t2 {
		t.Errorf("after commits: SerialAt = %s, %v; want %s, true", got, ok, t2)
	}
	if got, ok := db.SerialAt(oid, t1); ok {
		t.Errorf("SerialAt as of %s = %s, want nothing (a later revision is newest)", t1, got)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mustCheck(t, db); db.Close() })
	if got, ok := db.SerialAt(oid, db.LastTID()); ok {
		t.Errorf("reopened: SerialAt = %s before any load, want nothing", got)
	}
	if _, err := db.LoadAt(ctx, oid, t1); err != nil {
		t.Fatal(err)
	}
	if got, ok := db.SerialAt(oid, db.LastTID()); ok {
		t.Errorf("after loading an older revision: SerialAt = %s, want nothing", got)
	}
	if _, err := db.Load(ctx, oid); err != nil {
		t.Fatal(err)
	}
	if got, ok := db.SerialAt(oid, db.LastTID()); !ok || got != t2 {
		t.Errorf("after loading the newest: SerialAt = %s, %v; want %s, true", got, ok, t2)
	}
}
