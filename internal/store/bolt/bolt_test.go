package bolt_test

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"batos/internal/store"
	"batos/internal/store/bolt"
	"batos/internal/store/storecopy/copytest"
	"batos/internal/store/storetest"
)

// opener opens stores under one temporary directory per test, so a name
// opened twice in a test is the same store.
func opener() storetest.Opener {
	var mu sync.Mutex
	dirs := map[string]string{}
	return func(t testing.TB, name string) store.Engine {
		t.Helper()
		mu.Lock()
		dir, ok := dirs[t.Name()]
		if !ok {
			dir = t.TempDir()
			dirs[t.Name()] = dir
		}
		mu.Unlock()
		db, err := bolt.Open(filepath.Join(dir, name+".db"), nil)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { mustCheck(t, db); db.Close() })
		return db
	}
}

// mustCheck runs the structural check of the file.
func mustCheck(t testing.TB, db *bolt.DB) {
	t.Helper()
	problems, err := db.CheckStructure()
	for _, p := range problems {
		t.Errorf("structural check: %s", p)
	}
	if err != nil && !errors.Is(err, store.ErrClosed) {
		t.Errorf("structural check: %v", err)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, opener())
}

// TestCopyConformance: an image copied from bolt into bolt, with its
// whole history, reads as the original.
func TestCopyConformance(t *testing.T) {
	copytest.Run(t, opener(), opener())
}
