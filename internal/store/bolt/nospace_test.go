package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"batos/internal/store"
	"batos/internal/store/storetest"
)

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDiskFull: on a full disk a commit fails with a *store.NoSpaceError
// naming the path, the failure is logged when it happens, nothing
// acknowledged is lost, commits resume without a restart once space is
// freed, and a read-only open verifies the image on the full disk.
func TestDiskFull(t *testing.T) {
	mnt := storetest.MountSmallFS(t, "16m")
	path := filepath.Join(mnt, "img.db")
	logs := &logBuffer{}
	opts := &Options{Logger: slog.New(slog.NewTextHandler(logs, nil))}
	db, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	acked := map[store.OID]string{}
	var serials = map[store.OID]store.TID{}
	commit := func(oid store.OID, data string) error {
		tid, err := db.Commit(ctx, store.TxMeta{Description: "full-disk test"}, []store.Write{{OID: oid, Serial: serials[oid], Data: []byte(data)}})
		if err == nil {
			acked[oid], serials[oid] = data, tid
		}
		return err
	}
	for i := range 20 {
		if err := commit(store.OID(10+i%5), fmt.Sprintf("before-full-%d", i)); err != nil {
			t.Fatal(err)
		}
	}

	filler := storetest.FillDisk(t, mnt)
	var full error
	for i := 0; i < 5000 && full == nil; i++ {
		full = commit(store.OID(10+i%5), fmt.Sprintf("while-full-%d-%s", i, strings.Repeat("x", 3000)))
	}
	var nse *store.NoSpaceError
	if !errors.Is(full, store.ErrNoSpace) || !errors.As(full, &nse) || !strings.HasPrefix(nse.Path, mnt) {
		t.Fatalf("commit on a full disk: got %v, want a *store.NoSpaceError naming a path under %s", full, mnt)
	}
	// Cutting the log back freed the refused frame's bytes; a commit that
	// needs more than that is refused again.
	if err := commit(99, strings.Repeat("still full", 2000)); !errors.Is(err, store.ErrNoSpace) {
		t.Errorf("second commit on a full disk: got %v, want ErrNoSpace", err)
	}
	if _, err := db.PutBlob(ctx, bytes.NewReader(bytes.Repeat([]byte("b"), 64<<10))); !errors.Is(err, store.ErrNoSpace) {
		t.Errorf("blob on a full disk: got %v, want ErrNoSpace", err)
	}
	for range 20 {
		commit(98, strings.Repeat("refused again", 2000))
	}
	if n, m := strings.Count(logs.String(), "write-ahead log failed"), strings.Count(logs.String(), "writable again"); n != 1 || m != 0 {
		t.Errorf("while full: %d failure and %d recovery lines logged, want 1 and 0; log:\n%s", n, m, logs)
	}

	// Space comes back: the same handle commits again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := commit(11, "after-space-freed"); err != nil {
		t.Fatalf("commit once space is freed: %v", err)
	}
	if n := strings.Count(logs.String(), "writable again"); n != 1 {
		t.Errorf("the recovery logged %d times, want once; log:\n%s", n, logs)
	}
	checkAcked(t, db, acked)

	// Full again, then closed: the close may fail to checkpoint, and a
	// read-only open still reads and verifies everything.
	filler = storetest.FillDisk(t, mnt)
	closeErr := db.Close()
	t.Logf("close on a full disk: %v", closeErr)
	ro, err := Open(path, &Options{ReadOnly: true, Logger: opts.Logger})
	if err != nil {
		t.Fatalf("read-only open on a full disk: %v", err)
	}
	checkAcked(t, ro, acked)
	rep, err := ro.Verify(ctx, nil)
	if err != nil || !rep.OK() {
		t.Errorf("verify on a full disk: %v %+v", err, rep)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}

	os.Remove(filler)
	db, err = Open(path, opts)
	if err != nil {
		t.Fatalf("reopen once space is freed: %v", err)
	}
	defer db.Close()
	checkAcked(t, db, acked)
	if rep, err := db.Verify(ctx, nil); err != nil || !rep.OK() {
		t.Errorf("verify after reopening: %v %+v", err, rep)
	}
}

func checkAcked(t *testing.T, db *DB, acked map[store.OID]string) {
	t.Helper()
	for oid, want := range acked {
		rec, err := db.Load(context.Background(), oid)
		if err != nil || string(rec.Data) != want {
			t.Errorf("Load(%s) = %.40q, %v; want the acknowledged %.40q", oid, rec.Data, err, want)
		}
	}
}
