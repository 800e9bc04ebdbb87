package bolt_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/store"
	"batos/internal/store/bolt"
	"batos/internal/store/storetest"
)

// TestHostileSerialAtAtPastSnapshots: while writers commit, undo
// transactions (some undoing creations), and checkpoints, compactions and
// packs run, SerialAt at any snapshot a reader may hold (a committed
// TID, one just before it, the newest) never contradicts LoadAt at that
// snapshot, and a load at a past snapshot teaches nothing wrong.
func TestHostileSerialAtAtPastSnapshots(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openStore(t, path)
	ctx := t.Context()
	const objects = 8
	oids := newOIDs(t, db, objects+1)
	root, objs := oids[0], oids[1:]
	var writes []store.Write
	for _, oid := range objs {
		writes = append(writes, store.Write{OID: oid, Data: storetest.Rec("0")})
	}
	writes = append(writes, store.Write{OID: root, Data: storetest.Rec("root", objs...)})
	first := mustCommit(t, db, store.TxMeta{}, writes...)

	var mu sync.Mutex
	tids := []store.TID{first}
	serial := map[store.OID]store.TID{}
	for _, oid := range objs {
		serial[oid] = first
	}
	stop := make(chan struct{})
	errs := make(chan error, 16)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				oid := objs[r.IntN(objects)]
				mu.Lock()
				base := serial[oid]
				mu.Unlock()
				tid, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: oid, Serial: base, Data: storetest.Rec(fmt.Sprint(w, i))}})
				if errors.Is(err, store.ErrConflict) {
					// Learn the current serial and go on.
					if rec, err := db.Load(ctx, oid); err == nil {
						mu.Lock()
						serial[oid] = max(serial[oid], rec.Serial)
						mu.Unlock()
					}
					continue
				}
				if err != nil {
					report(err)
					return
				}
				mu.Lock()
				serial[oid] = max(serial[oid], tid)
				tids = append(tids, tid)
				mu.Unlock()
				if i%5 == 4 {
					// Undo this very commit: restores the older bytes under a
					// new TID (or conflicts with a later writer).
					u, err := db.Undo(ctx, tid, store.TxMeta{})
					if err == nil {
						mu.Lock()
						serial[oid] = max(serial[oid], u)
						tids = append(tids, u)
						mu.Unlock()
					}
				}
				if i%17 == 0 {
					// An object created, read, and deleted by undoing its
					// creation.
					d := newOIDs(t, db, 1)[0]
					c, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: d, Data: storetest.Rec("d")}})
					if err != nil {
						report(err)
						return
					}
					db.Load(ctx, d)
					u, err := db.Undo(ctx, c, store.TxMeta{})
					if err != nil {
						report(fmt.Errorf("undo creation: %w", err))
						return
					}
					if s, ok := db.SerialAt(d, u); ok {
						report(fmt.Errorf("SerialAt(%s, %s) = %s after undoing its creation", d, u, s))
					}
					if s, ok := db.SerialAt(d, db.LastTID()); ok {
						report(fmt.Errorf("SerialAt(%s, last) = %s after undoing its creation", d, s))
					}
				}
			}
		})
	}
	var checks int
	var cmu sync.Mutex
	for rd := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(rd), 2))
			n := 0
			defer func() { cmu.Lock(); checks += n; cmu.Unlock() }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				at := tids[r.IntN(len(tids))]
				mu.Unlock()
				switch r.IntN(3) {
				case 0:
					at--
				case 1:
					at = db.LastTID()
				}
				if at < first {
					at = first
				}
				for _, oid := range objs {
					// Teach, then check.
					db.LoadAt(ctx, oid, at)
					s, ok := db.SerialAt(oid, at)
					if !ok {
						continue
					}
					rec, err := db.LoadAt(ctx, oid, at)
					if err != nil {
						report(fmt.Errorf("SerialAt(%s, %s) = %s, LoadAt: %v", oid, at, s, err))
						return
					}
					if rec.Serial != s {
						report(fmt.Errorf("SerialAt(%s, %s) = %s, LoadAt finds %s", oid, at, s, rec.Serial))
						return
					}
					n++
				}
			}
		})
	}
	for i := range 6 {
		time.Sleep(150 * time.Millisecond)
		if i%2 == 0 {
			if _, err := db.Compact(ctx); err != nil {
				t.Error(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d SerialAt answers checked", checks)
	if checks < 1000 {
		t.Errorf("only %d SerialAt answers checked", checks)
	}
	// Pack, then every known serial still agrees.
	if _, err := db.Pack(ctx, store.PackOptions{Before: time.Now(), Root: root, Refs: storetest.Refs}); err != nil {
		t.Fatal(err)
	}
	last := db.LastTID()
	for _, oid := range objs {
		db.Load(ctx, oid)
		s, ok := db.SerialAt(oid, last)
		rec, err := db.LoadAt(ctx, oid, last)
		if err != nil || (ok && rec.Serial != s) {
			t.Errorf("after pack: SerialAt %s %v, LoadAt %v %v", s, ok, rec.Serial, err)
		}
	}
}

// TestHostileSerialAtReadOnlyReopen: a read-only open serves the log's
// commits from memory; SerialAt must agree with LoadAt for them and for
// what the file holds.
func TestHostileSerialAtReadOnlyReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db, err := bolt.Open(path, &bolt.Options{NoBackgroundCheckpoint: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	oids := newOIDs(t, db, 2)
	t1 := mustCommit(t, db, store.TxMeta{}, store.Write{OID: oids[0], Data: storetest.Rec("a1")}, store.Write{OID: oids[1], Data: storetest.Rec("b1")})
	t2 := mustCommit(t, db, store.TxMeta{}, store.Write{OID: oids[0], Serial: t1, Data: storetest.Rec("a2")})
	u, err := db.Undo(ctx, t2, store.TxMeta{})
	if err != nil {
		t.Fatal(err)
	}
	// Crash-like: with no background checkpoint the commits are only in
	// the log; copy the files as a crash would leave them (Close would
	// checkpoint), then open the copy read-only: the log's commits are
	// served from the overlay.
	crashed := filepath.Join(t.TempDir(), "db")
	copyFiles(t, filepath.Dir(path), filepath.Dir(crashed))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := bolt.Open(crashed, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	for _, at := range []store.TID{t1, t2, u, ro.LastTID()} {
		for _, oid := range oids {
			for range 2 {
				rec, lerr := ro.LoadAt(ctx, oid, at)
				s, ok := ro.SerialAt(oid, at)
				if ok && (lerr != nil || rec.Serial != s) {
					t.Errorf("read-only: SerialAt(%s, %s) = %s, LoadAt %s %v", oid, at, s, rec.Serial, lerr)
				}
			}
		}
	}
	// The same crash opened writable: recovery writes the log into the
	// file; a commit after it is known at once.
	crashed2 := filepath.Join(t.TempDir(), "db")
	copyFiles(t, filepath.Dir(crashed), filepath.Dir(crashed2))
	rw, err := bolt.Open(crashed2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := rw.Load(ctx, oids[0]); err != nil || rec.Serial != u {
		t.Errorf("writable reopen: %s is at %s (%v), want %s", oids[0], rec.Serial, err, u)
	}
	t3, err := rw.Commit(ctx, store.TxMeta{}, []store.Write{{OID: oids[0], Serial: u, Data: storetest.Rec("a3")}})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := rw.SerialAt(oids[0], rw.LastTID()); !ok || s != t3 {
		t.Errorf("writable reopen: SerialAt after a commit = %s, %v; want %s", s, ok, t3)
	}
	if s, ok := rw.SerialAt(oids[0], u); ok {
		t.Errorf("writable reopen: SerialAt as of %s = %s, want nothing", u, s)
	}
	rw.Close()
	if ro.LastTID() != u {
		t.Fatalf("read-only copy is at %s, want %s (the log's commits lost?)", ro.LastTID(), u)
	}
	if s, _ := ro.SerialAt(oids[0], ro.LastTID()); s != 0 && s != u {
		t.Errorf("read-only: newest of %s is %s, want the undo %s", oids[0], s, u)
	}
}

// copyFiles copies every regular file of dir (not the lock) into to.
func copyFiles(t *testing.T, dir, to string) {
	t.Helper()
	var walk func(from, to string)
	walk = func(from, to string) {
		entries, err := os.ReadDir(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(to, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".lock") {
				continue
			}
			if e.IsDir() {
				walk(filepath.Join(from, e.Name()), filepath.Join(to, e.Name()))
				continue
			}
			b, err := os.ReadFile(filepath.Join(from, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	walk(dir, to)
}
