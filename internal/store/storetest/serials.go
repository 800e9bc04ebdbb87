package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"batos/internal/store"
)

// serialReader is s as a store.SerialReader; the test skips when the
// engine is none.
func serialReader(t *testing.T, s store.Engine) store.SerialReader {
	t.Helper()
	sr, ok := s.(store.SerialReader)
	if !ok {
		t.Skip("the engine is no store.SerialReader")
	}
	return sr
}

// agreesWithLoad checks that whatever SerialAt answers for oid as of at
// is what LoadAt finds, and that it answers nothing for an object
// LoadAt does not find.
func agreesWithLoad(s store.Engine, sr store.SerialReader, oid store.OID, at store.TID) error {
	serial, known := sr.SerialAt(oid, at)
	if !known {
		return nil
	}
	rec, err := s.LoadAt(ctx, oid, at)
	if err != nil {
		return fmt.Errorf("SerialAt(%s, %s) = %s, but LoadAt: %v", oid, at, serial, err)
	}
	if rec.Serial != serial {
		return fmt.Errorf("SerialAt(%s, %s) = %s, LoadAt found %s", oid, at, serial, rec.Serial)
	}
	return nil
}

// testSerialAt: SerialAt agrees with LoadAt after loads at every
// snapshot, commits, an undo that deletes, a pack that drops an object,
// and answers nothing once the store is closed.
func testSerialAt(t *testing.T, open Opener) {
	s := open(t, "db")
	sr := serialReader(t, s)
	o := oids(t, s, 3)
	root, a, c := o[0], o[1], o[2]
	t1 := commit(t, s, store.Write{OID: root, Data: Rec("root", a, c)}, store.Write{OID: a, Data: Rec("a1")}, store.Write{OID: c, Data: Rec("c1")})
	t2 := commit(t, s, store.Write{OID: a, Serial: t1, Data: Rec("a2")})
	check := func(when string) {
		t.Helper()
		for _, oid := range o {
			for _, at := range []store.TID{t1 - 1, t1, t2, s.LastTID(), store.MaxTID} {
				if err := agreesWithLoad(s, sr, oid, at); err != nil {
					t.Errorf("%s: %v", when, err)
				}
			}
		}
	}
	check("after commits")
	for _, oid := range o {
		for _, at := range []store.TID{t1, t2, store.MaxTID} {
			s.LoadAt(ctx, oid, at) // teaches what it may
		}
	}
	check("after loads")
	t3 := commit(t, s, store.Write{OID: root, Serial: t1, Data: Rec("root", a)}) // c is now garbage
	check("after a commit")
	u, err := s.Undo(ctx, t3, store.TxMeta{})
	if err != nil {
		t.Fatal(err)
	}
	check("after an undo")
	t4 := commit(t, s, store.Write{OID: root, Serial: u, Data: Rec("root", a)})
	d := oids(t, s, 1)[0]
	created := commit(t, s, store.Write{OID: d, Data: Rec("d")})
	load(t, s, d)
	if _, err := s.Undo(ctx, created, store.TxMeta{}); err != nil {
		t.Fatal(err)
	}
	if serial, ok := sr.SerialAt(d, s.LastTID()); ok {
		t.Errorf("after undoing its creation, SerialAt(%s) = %s, want nothing", d, serial)
	}
	s.LoadAt(ctx, c, t4)
	time.Sleep(2 * time.Millisecond)
	if _, err := s.Pack(ctx, store.PackOptions{Before: time.Now(), Root: root, Refs: Refs}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, c); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unreachable object survived pack: %v", err)
	}
	if serial, ok := sr.SerialAt(c, s.LastTID()); ok {
		t.Errorf("after a pack dropped it, SerialAt(%s) = %s, want nothing", c, serial)
	}
	check("after a pack")
	load(t, s, a)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if serial, ok := sr.SerialAt(a, store.MaxTID); ok {
		t.Errorf("after Close, SerialAt(%s) = %s, want nothing", a, serial)
	}
}

// testSerialAtWhileCommitting: readers at the newest snapshot, over and
// over, never get an answer from SerialAt that LoadAt at that snapshot
// contradicts, while writers commit to the objects they read.
func testSerialAtWhileCommitting(t *testing.T, open Opener) {
	s := open(t, "db")
	sr := serialReader(t, s)
	const writers, readers, rounds = 4, 4, 50
	o := oids(t, s, writers)
	serials := make([]store.TID, writers)
	for i, oid := range o {
		serials[i] = commit(t, s, store.Write{OID: oid, Data: Rec("0")})
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, writers+readers)
	for i := range writers {
		wg.Go(func() {
			for r := range rounds {
				tid, err := s.Commit(ctx, store.TxMeta{}, []store.Write{{OID: o[i], Serial: serials[i], Data: Rec(fmt.Sprint(r + 1))}})
				if err != nil {
					errs <- err
					return
				}
				serials[i] = tid
			}
		})
	}
	var rg sync.WaitGroup
	for range readers {
		rg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				at := s.LastTID()
				for _, oid := range o {
					if err := agreesWithLoad(s, sr, oid, at); err != nil {
						errs <- err
						return
					}
					s.LoadAt(ctx, oid, at)
				}
			}
		})
	}
	wg.Wait()
	close(done)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
