package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"batos/internal/store"
)

// TestSalvage: a leaf page wiped out and a branch page's header damaged;
// Salvage keeps every record and log entry still intact somewhere in the
// file, moves the damaged file aside, and the rebuilt image opens.
func TestSalvage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "salvage.db")
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := map[store.OID]string{}
	for i := range 600 {
		oid := store.OID(100 + i)
		data := fmt.Sprintf("object-%04d-%s", i, bytes.Repeat([]byte("p"), 200))
		if _, err := db.Commit(ctx, store.TxMeta{Description: fmt.Sprint("commit ", i)}, []store.Write{{OID: oid, Data: []byte(data)}}); err != nil {
			t.Fatal(err)
		}
		want[oid] = data
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Wipe the page holding object 300's record.
	i := bytes.Index(data, []byte("object-0300-"))
	if i < 0 {
		t.Fatal("record not found in the file")
	}
	page := i / 4096 * 4096
	copy(data[page:page+4096], make([]byte, 4096))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if need, why, err := NeedsSalvage(context.Background(), path); err != nil || !need {
		t.Errorf("NeedsSalvage of the damaged file: %v, %q, %v; want it rebuilt", need, why, err)
	}
	rep, err := Salvage(path)
	if err != nil {
		t.Fatalf("salvage: %v", err)
	}
	if _, err := os.Stat(rep.MovedAside); err != nil {
		t.Errorf("damaged file not kept: %v", err)
	}
	if need, why, err := NeedsSalvage(context.Background(), path); err != nil || need {
		t.Errorf("NeedsSalvage of the rebuilt file: %v, %q, %v; want it left alone", need, why, err)
	}
	if _, _, err := NeedsSalvage(context.Background(), filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Error("NeedsSalvage of no file: no error")
	}
	db, err = Open(path, nil)
	if err != nil {
		t.Fatalf("open the rebuilt file: %v", err)
	}
	defer db.Close()
	lost := 0
	for oid, w := range want {
		rec, err := db.Load(ctx, oid)
		switch {
		case errors.Is(err, store.ErrNotFound):
			lost++
		case err != nil || string(rec.Data) != w:
			t.Errorf("Load(%s) = %.20q, %v", oid, rec.Data, err)
		}
	}
	if lost == 0 || lost > 40 {
		t.Errorf("%d of %d objects lost; want those of the wiped page only", lost, len(want))
	}
	if rep.Revisions != len(want)-lost || rep.Transactions < len(want) {
		t.Errorf("report %+v with %d lost", rep, lost)
	}
	t.Logf("salvage: %+v, %d objects lost with the wiped page", rep, lost)
}
