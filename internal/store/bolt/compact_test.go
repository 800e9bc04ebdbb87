package bolt

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"batos/internal/store"
	"batos/internal/store/storetest"
)

// TestCompact: after a pack drops most of the history the file stays as
// big; Compact shrinks it while readers and writers go on, and nothing is
// lost.
func TestCompact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compact.db")
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const objects = 50
	serial := map[store.OID]store.TID{}
	want := map[store.OID]string{}
	write := func(round int) {
		for i := range objects {
			oid := store.OID(2 + i)
			var refs []store.OID
			if oid == store.RootOID+1 {
				for j := range objects - 1 {
					refs = append(refs, store.OID(3+j))
				}
			}
			data := storetest.Rec(fmt.Sprintf("round %d object %d %s", round, i, bytes.Repeat([]byte("z"), 2000)), refs...)
			tid, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: oid, Serial: serial[oid], Data: data}})
			if err != nil {
				t.Fatal(err)
			}
			serial[oid], want[oid] = tid, string(data)
		}
	}
	root := storetest.Rec("root", 2)
	if _, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: store.RootOID, Data: root}}); err != nil {
		t.Fatal(err)
	}
	for round := range 40 {
		write(round)
	}
	if _, err := db.Pack(ctx, store.PackOptions{Before: time.Now(), Root: store.RootOID, Refs: storetest.Refs}); err != nil {
		t.Fatal(err)
	}

	// Readers and a writer run through the compaction.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, readErrs atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.Load(ctx, store.RootOID); err != nil {
					readErrs.Add(1)
					t.Errorf("read during compaction: %v", err)
					return
				}
				reads.Add(1)
			}
		}()
	}
	extra := store.OID(1000)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: extra, Data: storetest.Rec("written during compaction")}}); err != nil {
			t.Errorf("commit during compaction: %v", err)
		}
	}()
	res, err := db.Compact(ctx)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("compact: %v", err)
	}
	if res.BytesAfter >= res.BytesBefore/2 {
		t.Errorf("compact: %d bytes before, %d after; want it at least halved", res.BytesBefore, res.BytesAfter)
	}
	t.Logf("compact: %d -> %d bytes; %d reads during it", res.BytesBefore, res.BytesAfter, reads.Load())

	write(99) // the compacted file takes new commits
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for oid, w := range want {
		if rec, err := db.Load(ctx, oid); err != nil || string(rec.Data) != w {
			t.Errorf("Load(%s) after compaction: %.30q, %v", oid, rec.Data, err)
		}
	}
	if rep, err := db.Verify(ctx, storetest.Refs); err != nil || !rep.OK() {
		t.Errorf("verify after compaction: %v %v", err, rep)
	}
}
