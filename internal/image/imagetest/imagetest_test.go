package imagetest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
	"batos/internal/store/bolt"
)

// recorder is a testing.TB whose cleanups run when the test says and whose
// errors are recorded, not reported.
type recorder struct {
	testing.TB
	cleanups []func()
	errors   []string
}

func (r *recorder) Cleanup(fn func()) { r.cleanups = append(r.cleanups, fn) }
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestOpenVerifiesAtCleanup(t *testing.T) {
	ctx := context.Background()
	r := &recorder{TB: t}
	db := imagetest.Open(r, &imagetest.Options{Name: "damaged.db"})
	path := imagetest.Bolt(db).Path()
	if filepath.Base(path) != "damaged.db" {
		t.Errorf("path %s, want a file damaged.db", path)
	}
	// A reference to an object that does not exist, past the image's checks.
	rec, err := db.Store().Load(ctx, image.RootOID)
	if err != nil {
		t.Fatal(err)
	}
	data, err := image.EncodeState([]image.Slot{{Name: "ghost", Value: image.Ref(1 << 40)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Store().Commit(ctx, store.TxMeta{User: "vandal"}, []store.Write{{OID: image.RootOID, Serial: rec.Serial, Data: data}}); err != nil {
		t.Fatal(err)
	}
	r.end()
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], "dangling") {
		t.Errorf("cleanup reported %q, want one verify error naming the dangling reference", r.errors)
	}
	// The cleanup closed the store: it opens again.
	s, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatalf("reopen after cleanup: %v", err)
	}
	s.Close()
}

func TestOpenRaw(t *testing.T) {
	r := &recorder{TB: t}
	db := imagetest.Open(r, &imagetest.Options{Raw: true})
	if last := db.Store().LastTID(); last != 0 {
		t.Errorf("a raw image has transaction %s, want none", last)
	}
	r.end()
	if len(r.errors) != 0 {
		t.Errorf("cleanup of a raw, empty image reported %q", r.errors)
	}
}
