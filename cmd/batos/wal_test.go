package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"batos/internal/image"
	"batos/internal/store/bolt"
)

// TestHostileVerifyWithWAL: an image left by a process that died after
// committing (the commits only in the write-ahead log) verifies clean and
// shows the commits. The child keeps its commit in the log by turning the
// store's background checkpoints off, so no checkpoint can win a race
// with its death and take the commit into the file.
func TestHostileVerifyWithWAL(t *testing.T) {
	if path := os.Getenv("HOSTILE_WAL_IMAGE"); path != "" {
		walChild(t, path)
		return
	}
	img := filepath.Join(t.TempDir(), "live_image.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHostileVerifyWithWAL$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HOSTILE_WAL_IMAGE="+img)
	out, _ := cmd.CombinedOutput() // killed: a non-zero exit is expected
	var tid string
	var clean int64
	if _, after, ok := strings.Cut(string(out), "\nCOMMITTED "); !ok {
		t.Fatalf("child did not commit:\n%s", out)
	} else if _, err := fmt.Sscan(after, &tid, &clean); err != nil {
		t.Fatalf("child's report %q: %v", after, err)
	}
	if got := walSize(img); got <= clean {
		t.Fatalf("the write-ahead log holds %d bytes, no more than before the commit (%d): the commit is not in it", got, clean)
	}
	code, vout, verr := batos(t, "-image", img, "verify")
	if code != 0 || !strings.HasSuffix(vout, "ok\n") {
		t.Errorf("verify with the WAL present: exit %d\n%s%s", code, vout, verr)
	}
	if out := mustRun(t, "-image", img, "log", "-n", "1"); !strings.HasPrefix(out, tid) || !strings.Contains(out, "before the crash") {
		t.Errorf("log after recovery: %q, want %s first", out, tid)
	}
	if out := mustRun(t, "-image", img, "verify"); !strings.HasSuffix(out, "ok\n") {
		t.Errorf("second verify: %q", out)
	}
}

// walChild opens the image at path, initialises it and closes it, so that
// Init is in the file; reopens it with no background checkpoint, commits,
// reports the commit's TID and the log's size before the commit, and dies
// without closing the store.
func walChild(t *testing.T, path string) {
	ctx := context.Background()
	s, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := image.New(s, nil).Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = bolt.Open(path, &bolt.Options{NoBackgroundCheckpoint: true})
	if err != nil {
		t.Fatal(err)
	}
	clean := walSize(path)
	tid, err := image.New(s, nil).UpdateTID(ctx, func(tx *image.Tx) error {
		tx.Note("before the crash")
		o, err := tx.New(image.Slot{Name: "survivor", Value: image.String("yes")})
		if err != nil {
			return err
		}
		root, err := tx.Root()
		if err != nil {
			return err
		}
		return root.Set("survivor", o.Ref())
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("\nCOMMITTED %s %d\n", tid, clean)
	syscall.Kill(os.Getpid(), syscall.SIGKILL) // die like a crash: no cleanup at all
	select {}
}

// walSize is how many bytes the write-ahead log segments of the image at
// path hold together.
func walSize(path string) int64 {
	segs, _ := filepath.Glob(path + ".wal.*")
	var n int64
	for _, seg := range segs {
		if fi, err := os.Stat(seg); err == nil {
			n += fi.Size()
		}
	}
	return n
}
