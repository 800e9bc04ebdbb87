package bolt_test

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"batos/internal/store"
	"batos/internal/store/bolt"
	"batos/internal/store/storetest"
)

// TestVerifyLogMismatch checks Verify's cross-check of the revisions
// against the transaction log: every revision has its log entry, every
// object a log entry names has its revision from that transaction, except
// what pack removed.
func TestVerifyLogMismatch(t *testing.T) {
	ctx := t.Context()
	// The commits: t1 creates root -> a, c and a -> b, b, c; t2 rewrites
	// a; t3 drops c from root; then comes the cut of the packs; t4
	// rewrites b and c.
	type image struct {
		path           string
		root, a, b, c  store.OID
		t1, t2, t3, t4 store.TID
	}
	build := func(t *testing.T, pack bool) *image {
		t.Helper()
		im := &image{path: filepath.Join(t.TempDir(), "img.db")}
		db := openStore(t, im.path)
		o := newOIDs(t, db, 4)
		im.root, im.a, im.b, im.c = o[0], o[1], o[2], o[3]
		im.t1 = mustCommit(t, db, store.TxMeta{},
			store.Write{OID: im.root, Data: storetest.Rec("root", im.a, im.c)},
			store.Write{OID: im.a, Data: storetest.Rec("a1", im.b)},
			store.Write{OID: im.b, Data: storetest.Rec("b1")},
			store.Write{OID: im.c, Data: storetest.Rec("c1")})
		im.t2 = mustCommit(t, db, store.TxMeta{}, store.Write{OID: im.a, Serial: im.t1, Data: storetest.Rec("a2", im.b)})
		im.t3 = mustCommit(t, db, store.TxMeta{}, store.Write{OID: im.root, Serial: im.t1, Data: storetest.Rec("root", im.a)})
		time.Sleep(2 * time.Millisecond)
		cutAt := time.Now()
		time.Sleep(2 * time.Millisecond)
		im.t4 = mustCommit(t, db, store.TxMeta{},
			store.Write{OID: im.b, Serial: im.t1, Data: storetest.Rec("b2")},
			store.Write{OID: im.c, Serial: im.t1, Data: storetest.Rec("c2")})
		if pack {
			// Gone: the revisions of root and a superseded before the cut,
			// and c, unreachable, with its revision of t4 past the cut.
			res, err := db.Pack(ctx, store.PackOptions{Before: cutAt, Root: im.root, Refs: storetest.Refs})
			if err != nil {
				t.Fatal(err)
			}
			if res.Objects != 1 || res.Revisions != 2 {
				t.Fatalf("pack removed %+v, want object c and 2 revisions", res)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		return im
	}
	// edit changes the closed image's file through bbolt itself, so its
	// structure stays intact.
	edit := func(t *testing.T, path string, fn func(revs, txns *bbolt.Bucket) error) {
		t.Helper()
		b, err := bbolt.Open(path, 0o644, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		err = b.Update(func(tx *bbolt.Tx) error { return fn(tx.Bucket([]byte("revs")), tx.Bucket([]byte("txns"))) })
		if err != nil {
			t.Fatal(err)
		}
	}
	// verify checks that Verify reports exactly want, details aside.
	verify := func(t *testing.T, path string, want ...store.Problem) {
		t.Helper()
		db, err := bolt.Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rep, err := db.Verify(ctx, storetest.Refs)
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Clone(rep.Problems)
		for i := range got {
			got[i].Detail = ""
		}
		order := func(a, b store.Problem) int {
			return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.OID, b.OID), cmp.Compare(a.TID, b.TID), cmp.Compare(a.Target, b.Target))
		}
		slices.SortFunc(got, order)
		slices.SortFunc(want, order)
		if !slices.Equal(got, want) {
			t.Errorf("Verify reports\n%s\nwant\n%s", problemList(got), problemList(want))
		}
	}
	t.Run("intact", func(t *testing.T) {
		verify(t, build(t, false).path)
	})
	t.Run("packed", func(t *testing.T) {
		// t1's log entry names the revisions of root and a pack removed
		// before the cut, and c's; t4's names c's, removed past the cut
		// because c was gone altogether.
		verify(t, build(t, true).path)
	})
	t.Run("log entries deleted", func(t *testing.T) {
		im := build(t, false)
		edit(t, im.path, func(_, txns *bbolt.Bucket) error {
			if err := txns.Delete(u64be(im.t1)); err != nil {
				return err
			}
			return txns.Delete(u64be(im.t4))
		})
		var want []store.Problem
		for _, oid := range []store.OID{im.root, im.a, im.b, im.c} {
			want = append(want, store.Problem{Kind: store.LogMismatch, OID: oid, TID: im.t1})
		}
		want = append(want, store.Problem{Kind: store.LogMismatch, OID: im.b, TID: im.t4}, store.Problem{Kind: store.LogMismatch, OID: im.c, TID: im.t4})
		verify(t, im.path, want...)
	})
	t.Run("log entry emptied", func(t *testing.T) {
		// A log entry that fails its checksum is reported as such, not
		// again for each of its revisions.
		im := build(t, false)
		edit(t, im.path, func(_, txns *bbolt.Bucket) error { return txns.Put(u64be(im.t2), make([]byte, 8)) })
		verify(t, im.path, store.Problem{Kind: store.CorruptTransaction, TID: im.t2})
	})
	t.Run("revision deleted", func(t *testing.T) {
		im := build(t, false)
		edit(t, im.path, func(revs, _ *bbolt.Bucket) error { return revs.Delete(revKeyOf(im.b, im.t4)) })
		verify(t, im.path, store.Problem{Kind: store.LogMismatch, OID: im.b, TID: im.t4})
	})
	t.Run("revision deleted after a pack", func(t *testing.T) {
		// Past the cut, only an object gone altogether was pack's doing.
		im := build(t, true)
		edit(t, im.path, func(revs, _ *bbolt.Bucket) error { return revs.Delete(revKeyOf(im.b, im.t4)) })
		verify(t, im.path, store.Problem{Kind: store.LogMismatch, OID: im.b, TID: im.t4})
	})
	t.Run("object deleted", func(t *testing.T) {
		// Without a pack, no object goes altogether.
		im := build(t, false)
		edit(t, im.path, func(revs, _ *bbolt.Bucket) error {
			for _, tid := range []store.TID{im.t1, im.t4} {
				if err := revs.Delete(revKeyOf(im.b, tid)); err != nil {
					return err
				}
			}
			return nil
		})
		verify(t, im.path,
			store.Problem{Kind: store.LogMismatch, OID: im.b, TID: im.t1},
			store.Problem{Kind: store.LogMismatch, OID: im.b, TID: im.t4},
			store.Problem{Kind: store.DanglingReference, OID: im.a, TID: im.t1, Target: im.b},
			store.Problem{Kind: store.DanglingReference, OID: im.a, TID: im.t2, Target: im.b})
	})
}

func u64be(tid store.TID) []byte {
	b := make([]byte, 8)
	for i := range 8 {
		b[i] = byte(uint64(tid) >> (56 - 8*i))
	}
	return b
}

func revKeyOf(oid store.OID, tid store.TID) []byte {
	return slices.Concat(u64be(store.TID(oid)), u64be(tid))
}

// TestVerifyWhileCommitting runs Verify again and again while commits and
// their checkpoints go on: the pages it reads with pread stay put under
// its bbolt read transaction, so it finds nothing wrong.
func TestVerifyWhileCommitting(t *testing.T) {
	db := openStore(t, filepath.Join(t.TempDir(), "img.db"))
	oids := newOIDs(t, db, 50)
	serials := make([]store.TID, len(oids))
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			j := i % len(oids)
			tid, err := db.Commit(t.Context(), store.TxMeta{}, []store.Write{{OID: oids[j], Serial: serials[j], Data: storetest.Rec(fmt.Sprint("v", i))}})
			if err != nil {
				done <- err
				return
			}
			serials[j] = tid
			if i%20 == 0 {
				time.Sleep(30 * time.Millisecond) // the committer checkpoints when idle
			}
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	runs := 0
	for ; time.Now().Before(deadline); runs++ {
		rep, err := db.Verify(t.Context(), storetest.Refs)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		for _, p := range rep.Problems {
			t.Errorf("Verify run %d: %s", runs, p)
		}
		if t.Failed() {
			break
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("commit: %v", err)
	}
	t.Logf("%d verifies", runs)
}
