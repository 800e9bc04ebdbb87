package pg

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"batos/internal/store"
	"batos/internal/store/pg/pgtest"
	"batos/internal/store/storetest"
)

// TestHostileGroupEachMemberItsOwnOutcome: many callers commit at once on
// a few hot objects, some giving up at random. Every caller that got a
// TID finds its own commit (its description, its record) under that TID;
// every caller that got an error finds nothing of its own in the log.
func TestHostileGroupEachMemberItsOwnOutcome(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	db := openOn(t, url)
	oids, err := db.NewOIDs(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		desc string
		oid  store.OID
		tid  store.TID
		err  error
	}
	const callers = 48
	const each = 8
	var mu sync.Mutex
	var outs []outcome
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(c), 7))
			for i := range each {
				oid := oids[r.IntN(len(oids))]
				serial := store.TID(0)
				if rec, err := db.Load(ctx, oid); err == nil {
					serial = rec.Serial
				}
				desc := fmt.Sprintf("c%d-%d", c, i)
				cctx, cancel := context.WithCancel(ctx)
				if r.IntN(4) == 0 {
					go func() {
						time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond)
						cancel()
					}()
				}
				tid, err := db.Commit(cctx, store.TxMeta{Description: desc},
					[]store.Write{{OID: oid, Serial: serial, Data: storetest.Rec(desc)}})
				cancel()
				mu.Lock()
				outs = append(outs, outcome{desc, oid, tid, err})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	log, err := db.Log(ctx, store.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	byTID := map[store.TID]store.TxInfo{}
	byDesc := map[string]store.TxInfo{}
	for _, tx := range log {
		if _, dup := byTID[tx.TID]; dup {
			t.Errorf("TID %s twice in the log", tx.TID)
		}
		byTID[tx.TID] = tx
		byDesc[tx.Description] = tx
	}
	made, refused, cancelled := 0, 0, 0
	seen := map[store.TID]string{}
	for _, o := range outs {
		switch {
		case o.err == nil:
			made++
			if other, dup := seen[o.tid]; dup {
				t.Errorf("%s and %s were both given TID %s", other, o.desc, o.tid)
			}
			seen[o.tid] = o.desc
			tx, ok := byTID[o.tid]
			if !ok || tx.Description != o.desc {
				t.Errorf("%s was given TID %s, whose log entry is %q", o.desc, o.tid, tx.Description)
				continue
			}
			rec, err := db.LoadAt(ctx, o.oid, o.tid)
			if err != nil || string(rec.Data) != string(storetest.Rec(o.desc)) {
				t.Errorf("%s at %s: %q %v", o.desc, o.tid, rec.Data, err)
			}
		default:
			var conflict *store.ConflictError
			switch {
			case errors.As(o.err, &conflict):
				refused++
			case errors.Is(o.err, context.Canceled):
				cancelled++
			default:
				t.Errorf("%s: unexpected error %v", o.desc, o.err)
			}
			if tx, ok := byDesc[o.desc]; ok {
				t.Errorf("%s was refused (%v), yet the log holds it as %s", o.desc, o.err, tx.TID)
			}
		}
	}
	if made != len(log) {
		t.Errorf("%d commits acknowledged, %d in the log", made, len(log))
	}
	t.Logf("%d made, %d conflicts, %d cancelled", made, refused, cancelled)
	storetest.MustVerify(t, db)
}

// TestHostileGroupCancelledWaiterReturns: a caller that gives up while
// its commit is still queued behind another caller's commit (one waiting
// for the commit lock, held here by another session as a stuck node
// would) should get its context's error when it gives up, not when the
// other commit finally goes through.
func TestHostileGroupCancelledWaiterReturns(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	db := openOn(t, url)
	oids, err := db.NewOIDs(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", commitLockKey); err != nil {
		t.Fatal(err)
	}
	const stuck = 4 * time.Second
	unlocked := make(chan struct{})
	go func() {
		defer close(unlocked)
		time.Sleep(stuck)
		conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", commitLockKey)
	}()
	defer func() { <-unlocked }()

	first := make(chan error, 1)
	go func() {
		_, err := db.Commit(ctx, store.TxMeta{Description: "patient"}, []store.Write{{OID: oids[0], Data: storetest.Rec("a")}})
		first <- err
	}()
	time.Sleep(300 * time.Millisecond) // the patient one is the group waiting for the lock

	impatient, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	tid, err := db.Commit(impatient, store.TxMeta{Description: "impatient"}, []store.Write{{OID: oids[1], Data: storetest.Rec("b")}})
	took := time.Since(start)
	t.Logf("impatient commit: %s %v after %s", tid, err, took)
	if err == nil {
		t.Errorf("a caller that gave up after 300ms had its commit made (%s)", tid)
	}
	if took > 2*time.Second {
		t.Errorf("a caller whose context ended after 300ms waited %s for another caller's commit (stuck on the commit lock)", took.Round(time.Millisecond))
	}
	if err := <-first; err != nil {
		t.Errorf("the patient commit: %v", err)
	}
}

// TestHostileGroupCloseWhileQueued: Close while many commits are queued
// and a group waits for the commit lock. Every caller returns; each
// commit acknowledged is in the database, each refused one (ErrClosed)
// is not; the committer goroutine is gone.
func TestHostileGroupCloseWhileQueued(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	before := runtime.NumGoroutine()
	db, err := Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	oids, err := db.NewOIDs(ctx, 64)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", commitLockKey); err != nil {
		t.Fatal(err)
	}
	type res struct {
		desc string
		tid  store.TID
		err  error
	}
	results := make(chan res, len(oids))
	for i, oid := range oids {
		go func() {
			desc := fmt.Sprintf("q%d", i)
			tid, err := db.Commit(ctx, store.TxMeta{Description: desc}, []store.Write{{OID: oid, Data: storetest.Rec(desc)}})
			results <- res{desc, tid, err}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	time.Sleep(200 * time.Millisecond)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", commitLockKey); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Close did not return")
	}
	made := map[string]store.TID{}
	for range oids {
		r := <-results
		switch {
		case r.err == nil:
			made[r.desc] = r.tid
		case errors.Is(r.err, store.ErrClosed):
		default:
			t.Errorf("%s: %v", r.desc, r.err)
		}
	}
	db2 := openOn(t, url)
	log, err := db2.Log(ctx, store.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != len(made) {
		t.Errorf("%d acknowledged, %d in the log", len(made), len(log))
	}
	for _, tx := range log {
		if made[tx.Description] != tx.TID {
			t.Errorf("log %s %q, acknowledged as %s", tx.TID, tx.Description, made[tx.Description])
		}
	}
	db2.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestHostileGroupHuge: many callers at once, some with records near
// the group's byte bound, some with many writes: every commit is made
// once, in groups within the bounds.
func TestHostileGroupHuge(t *testing.T) {
	ctx := context.Background()
	db := openOn(t, pgtest.NewDatabase(t))
	const callers = 60
	oids, err := db.NewOIDs(ctx, callers*20)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	tids := make(chan store.TID, callers)
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ws []store.Write
			switch c % 3 {
			case 0: // one big record
				ws = []store.Write{{OID: oids[c*20], Data: storetest.Rec(strings.Repeat("x", 2<<20+c))}}
			case 1: // many small ones
				for i := range 20 {
					ws = append(ws, store.Write{OID: oids[c*20+i], Data: storetest.Rec(fmt.Sprint(c, i))})
				}
			default: // a small one
				ws = []store.Write{{OID: oids[c*20], Data: storetest.Rec("")}}
			}
			tid, err := db.Commit(ctx, store.TxMeta{Description: fmt.Sprint(c)}, ws)
			errs <- err
			tids <- tid
		}()
	}
	wg.Wait()
	close(errs)
	close(tids)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	seen := map[store.TID]bool{}
	for tid := range tids {
		if seen[tid] {
			t.Errorf("TID %s given twice", tid)
		}
		seen[tid] = true
	}
	storetest.MustVerify(t, db)
}

// TestHostileGroupUndoAmongCommits: undos queued among commits each
// commit alone, and their outcome is their own.
func TestHostileGroupUndoAmongCommits(t *testing.T) {
	ctx := context.Background()
	db := openOn(t, pgtest.NewDatabase(t))
	oids, err := db.NewOIDs(ctx, 40)
	if err != nil {
		t.Fatal(err)
	}
	var first []store.TID
	for i, oid := range oids[:20] {
		tid, err := db.Commit(ctx, store.TxMeta{Description: fmt.Sprint("v1 ", i)}, []store.Write{{OID: oid, Data: storetest.Rec("v1")}})
		if err != nil {
			t.Fatal(err)
		}
		first = append(first, tid)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := db.Undo(ctx, first[i], store.TxMeta{}); err != nil {
				t.Errorf("undo %s: %v", first[i], err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: oids[20+i], Data: storetest.Rec("x")}}); err != nil {
				t.Errorf("commit: %v", err)
			}
		}()
	}
	wg.Wait()
	for _, oid := range oids[:20] {
		if _, err := db.Load(ctx, oid); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s after its creation was undone: %v", oid, err)
		}
	}
	storetest.MustVerify(t, db)
}

// TestHostileGroupOddMemberAlone: a member whose data the database may
// refuse (an OID beyond a bigint's range) is in a group with an ordinary
// one: whatever becomes of it, the ordinary member's outcome is what it
// would have been alone.
func TestHostileGroupOddMemberAlone(t *testing.T) {
	ctx := context.Background()
	db := openOn(t, pgtest.NewDatabase(t))
	oids, err := db.NewOIDs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	odd := &member{ctx: ctx, meta: store.TxMeta{Description: "odd"}, done: make(chan struct{}),
		writes: []write{{Write: store.Write{OID: store.OID(1<<63 + 5), Data: storetest.Rec("odd")}}}}
	plain := &member{ctx: ctx, meta: store.TxMeta{Description: "plain"}, done: make(chan struct{}),
		writes: []write{{Write: store.Write{OID: oids[0], Data: storetest.Rec("plain")}}}}
	db.commitGroup([]*member{odd, plain})
	t.Logf("odd: %s %v; plain: %s %v", odd.tid, odd.refused, plain.tid, plain.refused)
	if plain.refused != nil {
		t.Errorf("an ordinary member failed with its odd group-mate: %v", plain.refused)
	}
}

// TestHostileGroupWatchedInOrder: commits made in groups on one node
// reach another node's watcher each once, in TID order, with their own
// notices.
func TestHostileGroupWatchedInOrder(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	a, b := openOn(t, url), openOn(t, url)
	var mu sync.Mutex
	var got []store.TID
	notices := map[store.TID]string{}
	stop := b.WatchCommits(func(info store.TxInfo, notice []byte) {
		mu.Lock()
		got = append(got, info.TID)
		notices[info.TID] = string(notice)
		mu.Unlock()
	})
	defer stop()
	// Commits made before b's listener listens reach it from the log,
	// without their notices: wait until one arrives with its notice.
	warm, err := a.NewOIDs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for serial, deadline := store.TID(0), time.Now().Add(10*time.Second); ; {
		tid, err := a.Commit(ctx, store.TxMeta{Notice: []byte("warm")}, []store.Write{{OID: warm[0], Serial: serial, Data: storetest.Rec("warm")}})
		if err != nil {
			t.Fatal(err)
		}
		serial = tid
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		heard := notices[tid] == "warm"
		mu.Unlock()
		if heard {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b's listener never heard a commit's notice")
		}
	}
	mu.Lock()
	got, notices = nil, map[store.TID]string{}
	mu.Unlock()
	const n = 200
	oids, err := a.NewOIDs(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	made := make(chan [2]string, n)
	var wg sync.WaitGroup
	for i, oid := range oids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			notice := fmt.Sprintf("n%d", i)
			tid, err := a.Commit(ctx, store.TxMeta{Notice: []byte(notice)}, []store.Write{{OID: oid, Data: storetest.Rec(notice)}})
			if err != nil {
				t.Error(err)
				return
			}
			made <- [2]string{tid.String(), notice}
		}()
	}
	wg.Wait()
	close(made)
	want := map[string]string{}
	for m := range made {
		want[m[0]] = m[1]
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		t.Fatalf("watcher saw %d commits, want %d", len(got), n)
	}
	for i, tid := range got {
		if i > 0 && tid <= got[i-1] {
			t.Errorf("watched out of order: %s after %s", tid, got[i-1])
		}
		if want[tid.String()] != notices[tid] {
			t.Errorf("%s: notice %q, committed with %q", tid, notices[tid], want[tid.String()])
		}
	}
}
