package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"batos/internal/store"
)

// processLock is an exclusive advisory lock on PATH.lock holding the PID
// of the process that owns the image, so a second process can say who.
type processLock struct{ f *os.File }

// lockProcess takes the lock; readOnly takes it without rewriting the
// file, which a full disk might refuse.
func lockProcess(path string, readOnly bool) (*processLock, error) {
	lockPath := path + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", noSpace(err, lockPath, "lock file"))
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, holderError(path, f)
		}
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	if readOnly {
		return &processLock{f: f}, nil
	}
	// The PID is what a second process reports; without it the lock
	// would still hold, but the error naming the holder could not.
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("write the lock file: %w", noSpace(err, lockPath, "lock file"))
	}
	return &processLock{f: f}, nil
}

func holderError(path string, f *os.File) error {
	e := &store.InUseError{Path: path}
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n]))); err == nil && pid > 0 {
		e.PID = pid
		if cmd, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil {
			e.Command = strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
		}
	}
	return e
}

func (l *processLock) release() error {
	// The file stays: removing it would race with a process locking it.
	return l.f.Close()
}
