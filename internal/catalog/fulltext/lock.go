package fulltext

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// panicked holds the directories (absolute paths) where bleve panicked
// while opening an index. The panic can leave the snapshot file open and
// locked by this process, for good: nothing can close it. Create may then
// replace such an index, and Open reports it damaged rather than in use.
var panicked struct {
	sync.Mutex
	dirs map[string]bool
}

func notePanic(dir string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	panicked.Lock()
	defer panicked.Unlock()
	if panicked.dirs == nil {
		panicked.dirs = map[string]bool{}
	}
	panicked.dirs[abs] = true
}

// forgetPanic is called when dir holds a new index: its lock is a live
// index's.
func forgetPanic(dir string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	panicked.Lock()
	defer panicked.Unlock()
	delete(panicked.dirs, abs)
}

// lockedByPanic reports whether dir is locked by a panic of this process
// (see panicked) rather than by a live index.
func lockedByPanic(dir string) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	panicked.Lock()
	defer panicked.Unlock()
	return panicked.dirs[abs]
}

// inUse reports whether an open index holds dir. bleve's bbolt takes an
// exclusive flock on store/root.bolt for as long as the index is open;
// asking for a shared one without waiting tells whether it is held.
func inUse(dir string) (bool, error) {
	f, err := os.Open(filepath.Join(dir, "store", "root.bolt"))
	if err != nil {
		// No snapshot file (or dir is a file): nothing to hold.
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return false, nil
		}
		return false, err
	}
	defer f.Close() // closing drops the lock
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	return false, err
}
