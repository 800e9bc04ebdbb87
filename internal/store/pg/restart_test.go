package pg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"batos/internal/store"
	"batos/internal/store/pg/pgtest"
	"batos/internal/store/storetest"
)

// openOn opens a handle on url, closed when the test ends.
func openOn(t *testing.T, url string) *DB {
	t.Helper()
	db, err := Open(context.Background(), url, nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// sqlOn runs statements straight on the database, as an administrator
// would.
func sqlOn(t *testing.T, url string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// waitForWait waits until a session of the database waits on event
// (pg_stat_activity's wait_event): a commit is then where the test wants
// it when the server goes down.
func waitForWait(t *testing.T, url, event string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = $1", event).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
	}
	rows, _ := conn.Query(ctx, "SELECT pid, coalesce(state, ''), coalesce(wait_event, ''), coalesce(query, '') FROM pg_stat_activity")
	var b strings.Builder
	for rows.Next() {
		var pid int
		var state, wait, query string
		rows.Scan(&pid, &state, &wait, &query)
		fmt.Fprintf(&b, "\n%d %s %s %.80s", pid, state, wait, query)
	}
	t.Fatalf("no session waits on %s:%s", event, b.String())
}

// waitForSyncRep waits until the server has read the synchronous standby
// the test asked for: pg_reload_conf only signals, and a session that
// commits before the server has reloaded would not wait for it. The
// server signals every session as it reloads, before a new one sees the
// setting.
func waitForSyncRep(t *testing.T, url string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		var v string
		err = conn.QueryRow(context.Background(), "SHOW synchronous_standby_names").Scan(&v)
		conn.Close(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if v == "nobody" {
			return
		}
	}
	t.Fatal("the server did not reload its configuration")
}

// TestCommitInFlightAtRestart: the server goes down while COMMIT is under
// way, at each point that matters. A commit the server made is reported
// made, with its TID; one it did not make is reported not made, as
// database unavailable; one the database cannot be asked about in time is
// reported as such, saying it may or may not have been made.
func TestCommitInFlightAtRestart(t *testing.T) {
	c := pgtest.StartOwn(t)
	ctx := context.Background()
	// commitDuringRestart starts a commit on a fresh database, waits until
	// its COMMIT waits on event, restarts the server (down for down), and
	// returns the commit's result and a handle to check it with.
	commitDuringRestart := func(t *testing.T, setup []string, event string, restart func(testing.TB, time.Duration), down time.Duration) (store.OID, store.TID, error, *DB) {
		t.Helper()
		url := c.URL(c.CreateDatabase(t))
		db := openOn(t, url)
		oids, err := db.NewOIDs(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		sqlOn(t, url, setup...)
		if event == "SyncRep" {
			waitForSyncRep(t, url)
		}
		// Should the test fail first, the commit is let go.
		t.Cleanup(func() { sqlOn(t, url, "ALTER SYSTEM RESET synchronous_standby_names", "SELECT pg_reload_conf()") })
		type result struct {
			tid store.TID
			err error
		}
		done := make(chan result, 1)
		go func() {
			tid, err := db.Commit(ctx, store.TxMeta{Description: "in flight"}, []store.Write{{OID: oids[0], Data: storetest.Rec("in flight")}})
			done <- result{tid, err}
		}()
		waitForWait(t, url, event)
		// The restart ends the waiting session: undo the setup for the
		// server that comes back (ALTER SYSTEM is read at start).
		sqlOn(t, url, "ALTER SYSTEM RESET synchronous_standby_names")
		restart(t, down)
		r := <-done
		return oids[0], r.tid, r.err, db
	}
	// With a synchronous standby required and none there, COMMIT waits
	// after the commit is durable here: a crash then ends the session
	// with the commit made. (A fast shutdown would too, but PostgreSQL 15
	// leaves such a session hanging instead of ending it.)
	syncRep := []string{"ALTER SYSTEM SET synchronous_standby_names = 'nobody'", "SELECT pg_reload_conf()"}

	t.Run("made", func(t *testing.T) {
		oid, tid, err, db := commitDuringRestart(t, syncRep, "SyncRep", c.CrashRestart, 0)
		if err != nil || tid == 0 {
			t.Fatalf("a commit the server made: %s, %v; want its TID", tid, err)
		}
		rec, err := db.Load(ctx, oid)
		if err != nil || rec.Serial != tid {
			t.Errorf("the commit reported made: %v %v, want the revision of %s", rec.Serial, err, tid)
		}
		if latest, err := db.LatestTID(ctx); err != nil || latest != tid || db.LastTID() != tid {
			t.Errorf("after the restart LatestTID is %s (%v), LastTID %s; want %s", latest, err, db.LastTID(), tid)
		}
	})

	t.Run("not made", func(t *testing.T) {
		// A deferred trigger runs within COMMIT, before anything is made.
		slow := []string{
			"CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(60); RETURN NULL; END $$",
			"CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON transaction DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()",
		}
		oid, tid, err, db := commitDuringRestart(t, slow, "PgSleep", c.Restart, 0)
		if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrOutcomeUnknown) || tid != 0 {
			t.Fatalf("a commit the server did not make: %s, %v; want store.ErrUnavailable", tid, err)
		}
		if !strings.Contains(err.Error(), "not made") {
			t.Errorf("the error does not say the commit was not made: %v", err)
		}
		if _, err := db.Load(ctx, oid); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the object of a commit reported not made: %v, want ErrNotFound", err)
		}
	})

	t.Run("unknown", func(t *testing.T) {
		saved := outcomeWait
		outcomeWait = 300 * time.Millisecond
		t.Cleanup(func() { outcomeWait = saved })
		oid, tid, err, db := commitDuringRestart(t, syncRep, "SyncRep", c.CrashRestart, time.Second)
		if !errors.Is(err, store.ErrOutcomeUnknown) || errors.Is(err, store.ErrUnavailable) || tid != 0 {
			t.Fatalf("a commit the database could not be asked about: %s, %v; want store.ErrOutcomeUnknown", tid, err)
		}
		if !strings.Contains(err.Error(), "may or may not have been made") {
			t.Errorf("the error does not say the commit may have been made: %v", err)
		}
		// It was made (the server made it before waiting).
		if rec, err := db.Load(ctx, oid); err != nil || rec.Serial == 0 {
			t.Errorf("the commit made before the restart: %v %v", rec, err)
		}
	})
}

// TestCommitsAcrossARestart: writers commit in a loop on one handle while
// the server restarts. Every commit reported made is there afterwards,
// every one reported not made is not; reads, NewOIDs and LatestTID work
// again; the other handle's watcher is handed every commit made, once,
// and its LastTID catches up.
func TestCommitsAcrossARestart(t *testing.T) {
	c := pgtest.StartOwn(t)
	url := c.URL(c.CreateDatabase(t))
	ctx := context.Background()
	a, b := openOn(t, url), openOn(t, url)
	var watchMu sync.Mutex
	handed := map[store.TID]int{}
	stopWatch := b.WatchCommits(func(info store.TxInfo, _ []byte) {
		watchMu.Lock()
		defer watchMu.Unlock()
		handed[info.TID]++
	})
	defer stopWatch()

	const writers, perWriter = 4, 5000
	type outcome struct {
		oid store.OID
		tid store.TID
		err error
	}
	results := make([][]outcome, writers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		// A fresh object each time: a commit's outcome is then its
		// object's presence, whatever became of the others.
		oids, err := a.NewOIDs(ctx, perWriter)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, oid := range oids {
				select {
				case <-stop:
					return
				default:
				}
				tid, err := a.Commit(ctx, store.TxMeta{Description: fmt.Sprint(oid)}, []store.Write{{OID: oid, Data: storetest.Rec(fmt.Sprint(oid))}})
				results[w] = append(results[w], outcome{oid, tid, err})
				if err != nil {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	// NewOIDs and LatestTID under load too: refused as unavailable while
	// the server is down, never otherwise.
	var otherErrs []error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if _, err := a.NewOIDs(ctx, 1); err != nil {
				otherErrs = append(otherErrs, err)
			}
			if _, err := a.LatestTID(ctx); err != nil {
				otherErrs = append(otherErrs, err)
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	c.Restart(t, 300*time.Millisecond)
	restarted := time.Now()
	time.Sleep(700 * time.Millisecond)
	close(stop)
	wg.Wait()
	for _, err := range otherErrs {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("NewOIDs or LatestTID across the restart: %v, want store.ErrUnavailable", err)
		}
	}

	var made, notMade, unknown, madeAfter int
	var last store.TID
	for _, rs := range results {
		for _, r := range rs {
			switch {
			case r.err == nil:
				made++
				last = max(last, r.tid)
				if rec, err := b.Load(ctx, r.oid); err != nil || rec.Serial != r.tid {
					t.Errorf("commit %s reported made: %s holds %v (%v)", r.tid, r.oid, rec.Serial, err)
				}
				if store.TID(r.tid).Time().After(restarted) {
					madeAfter++
				}
			case errors.Is(r.err, store.ErrOutcomeUnknown):
				unknown++
				t.Logf("outcome unknown: %v", r.err)
			default:
				if notMade++; notMade == 1 {
					t.Logf("a commit refused: %v", r.err)
				}
				if !errors.Is(r.err, store.ErrUnavailable) {
					t.Errorf("a commit failed by the restart: %v, want store.ErrUnavailable", r.err)
				}
				if _, err := b.Load(ctx, r.oid); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("%s, of a commit reported not made (%v), is there: %v", r.oid, r.err, err)
				}
			}
		}
	}
	t.Logf("%d commits made (%d after the restart), %d not made, %d unknown; %d NewOIDs or LatestTID refused", made, madeAfter, notMade, unknown, len(otherErrs))
	if madeAfter == 0 || notMade == 0 {
		t.Fatalf("the restart was not under load: %d commits made after it, %d refused during it", madeAfter, notMade)
	}
	if unknown > 0 {
		t.Errorf("%d commits of unknown outcome with the server back within %s", unknown, outcomeWait)
	}

	// Both handles serve the newest state.
	for name, db := range map[string]*DB{"a": a, "b": b} {
		if got, err := db.LatestTID(ctx); err != nil || got != last {
			t.Errorf("%s: LatestTID %s (%v), want %s", name, got, err, last)
		}
	}
	// b's listener is back: it was handed every commit a made, once, and
	// hears the next one at once.
	after, err := a.NewOIDs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	tid, err := a.Commit(ctx, store.TxMeta{}, []store.Write{{OID: after[0], Data: storetest.Rec("after")}})
	if err != nil {
		t.Fatal(err)
	}
	// Handed in TID order: once the last is, every one before it is.
	handedLast := func() bool {
		watchMu.Lock()
		defer watchMu.Unlock()
		return handed[tid] > 0
	}
	for deadline := time.Now().Add(10 * time.Second); !handedLast() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if b.LastTID() != tid {
		t.Errorf("b's LastTID is %s, want %s: its listener did not come back", b.LastTID(), tid)
	}
	watchMu.Lock()
	defer watchMu.Unlock()
	for _, rs := range results {
		for _, r := range rs {
			if r.err == nil && handed[r.tid] != 1 {
				t.Errorf("commit %s (%s after the restart) handed to b's watcher %d times, want once", r.tid, r.tid.Time().Sub(restarted), handed[r.tid])
			}
		}
	}
	if handed[tid] != 1 {
		t.Errorf("the commit after the restart handed to b's watcher %d times, want once", handed[tid])
	}
}
