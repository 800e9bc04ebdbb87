package pg_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"batos/internal/store"
	"batos/internal/store/pg"
	"batos/internal/store/pg/pgtest"
	"batos/internal/store/storetest"
)

// TestLeases: a lease has one holder at a time, by the database's clock;
// it passes to another only once expired or released, each time with a
// greater generation, and the former holder can no longer renew it.
func TestLeases(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := open(t, url), open(t, url)
	const ttl = 400 * time.Millisecond

	la, ok, err := a.AcquireLease(ctx, "cycle/1", "node-a", ttl)
	if err != nil || !ok {
		t.Fatalf("first acquire: %v %v", ok, err)
	}
	if _, ok, err := b.AcquireLease(ctx, "cycle/1", "node-b", ttl); err != nil || ok {
		t.Fatalf("a held lease was granted to another: %v %v", ok, err)
	}
	// Another name is another lease.
	if _, ok, err := b.AcquireLease(ctx, "cycle/2", "node-b", ttl); err != nil || !ok {
		t.Fatalf("a free lease refused: %v %v", ok, err)
	}
	// The holder acquiring again renews: same generation.
	again, ok, err := a.AcquireLease(ctx, "cycle/1", "node-a", ttl)
	if err != nil || !ok || again != la {
		t.Fatalf("re-acquire by the holder: %v %v %v, want %v", again, ok, err, la)
	}
	// Renewed past the first expiry, it still holds.
	for range 3 {
		time.Sleep(ttl / 2)
		if ok, err := a.RenewLease(ctx, la, ttl); err != nil || !ok {
			t.Fatalf("renew: %v %v", ok, err)
		}
	}
	if _, ok, _ := b.AcquireLease(ctx, "cycle/1", "node-b", ttl); ok {
		t.Fatal("a renewed lease was taken")
	}
	// Left to expire, it passes on with a new generation, and the former
	// holder cannot renew it.
	time.Sleep(ttl + 100*time.Millisecond)
	lb, ok, err := b.AcquireLease(ctx, "cycle/1", "node-b", ttl)
	if err != nil || !ok || lb.Generation != la.Generation+1 {
		t.Fatalf("acquire after expiry: %v %v %v (was %v)", lb, ok, err, la)
	}
	if ok, err := a.RenewLease(ctx, la, ttl); err != nil || ok {
		t.Fatalf("the former holder renewed a lease it lost: %v %v", ok, err)
	}
	// Released, it is free at once.
	if err := b.ReleaseLease(ctx, lb); err != nil {
		t.Fatal(err)
	}
	if err := b.ReleaseLease(ctx, lb); err != nil {
		t.Fatalf("a second release: %v", err)
	}
	if ok, err := b.RenewLease(ctx, lb, ttl); err != nil || ok {
		t.Fatalf("a released lease renewed: %v %v", ok, err)
	}
	lc, ok, err := a.AcquireLease(ctx, "cycle/1", "node-a", ttl)
	if err != nil || !ok || lc.Generation != lb.Generation+1 {
		t.Fatalf("acquire after release: %v %v %v", lc, ok, err)
	}
	// Releasing a lease one no longer holds leaves the holder's alone.
	if err := b.ReleaseLease(ctx, lb); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.RenewLease(ctx, lc, ttl); err != nil || !ok {
		t.Fatalf("a stale release took the lease from its holder: %v %v", ok, err)
	}
}

// TestLeaseRace: nodes asking for one free lease at once: exactly one is
// granted.
func TestLeaseRace(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var dbs []*pg.DB
	for range 4 {
		dbs = append(dbs, open(t, url))
	}
	for round := range 5 {
		name := "race/" + string(rune('a'+round))
		var wg sync.WaitGroup
		var mu sync.Mutex
		var granted []store.Lease
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, ok, err := dbs[i%len(dbs)].AcquireLease(ctx, name, "node-"+string(rune('0'+i)), time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					granted = append(granted, l)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(granted) != 1 {
			t.Fatalf("round %d: %d holders of one lease: %v", round, len(granted), granted)
		}
	}
}

// TestLeaseRefusesBadArguments: names and holders are keys of a bounded
// size; a time to live must be positive.
func TestLeaseRefusesBadArguments(t *testing.T) {
	db := open(t, pgtest.NewDatabase(t))
	for _, c := range []struct {
		name, holder string
		ttl          time.Duration
		want         string
	}{
		{"", "n", time.Second, "lease name"},
		{strings.Repeat("x", 300), "n", time.Second, "lease name"},
		{"l", "", time.Second, "lease holder"},
		{"l", "n", 0, "too short"},
		{"l", "n", -time.Second, "too short"},
	} {
		if _, ok, err := db.AcquireLease(ctx, c.name, c.holder, c.ttl); err == nil || ok || !strings.Contains(err.Error(), c.want) {
			t.Errorf("acquire(%.20q, %q, %s): %v %v, want an error about %s", c.name, c.holder, c.ttl, ok, err, c.want)
		}
	}
}

// TestMigrationAddsLeases: a database at schema version 1 (before
// leases) is brought to the current version when opened, keeping its
// image.
func TestMigrationAddsLeases(t *testing.T) {
	url := pgtest.NewDatabase(t)
	db := open(t, url)
	oids, err := db.NewOIDs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	tid, err := db.Commit(ctx, store.TxMeta{Description: "before the migration"}, []store.Write{{OID: oids[0], Data: storetest.Rec("kept")}})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	exec(t, url, "DROP TABLE lease")
	exec(t, url, "UPDATE schema_version SET version = 1")

	db = open(t, url)
	if _, ok, err := db.AcquireLease(ctx, "heartbeat", "node-a", time.Second); err != nil || !ok {
		t.Fatalf("a lease after the migration: %v %v", ok, err)
	}
	if db.LastTID() != tid {
		t.Fatalf("last TID after the migration: %s, want %s", db.LastTID(), tid)
	}
	if rec, err := db.Load(ctx, oids[0]); err != nil || string(rec.Data) != string(storetest.Rec("kept")) {
		t.Fatalf("the image after the migration: %q %v", rec.Data, err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, "SELECT version FROM schema_version").Scan(&v); err != nil || v != pg.SchemaVersion {
		t.Fatalf("schema version %d (%v), want %d", v, err, pg.SchemaVersion)
	}
}
