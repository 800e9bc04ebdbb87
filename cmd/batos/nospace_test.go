package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"batos/internal/store/storetest"
)

// TestFullDiskWhileServing: batos run on a small file system that fills
// up. Sends fail with kind no_space naming the path, batos run logs it,
// reads go on, and once space is freed the same server commits again;
// with the server stopped on the full disk, verify, stats and log work.
func TestFullDiskWhileServing(t *testing.T) {
	mnt := storetest.MountSmallFS(t, "24m")
	img := filepath.Join(mnt, "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	_, _, logs, stop := startRunLogged(t, img)
	mustRun(t, "-image", img, "eval", "genesis.saved = 'before the disk filled'")

	filler := storetest.FillDisk(t, mnt)
	var code int
	var errOut string
	for i := 0; i < 200; i++ {
		code, _, errOut = batos(t, "-image", img, "eval", fmt.Sprintf("genesis.big%d = 'x' * 200000", i))
		if code != 0 {
			break
		}
	}
	if code != 1 || !strings.Contains(errOut, "no space left") || !strings.Contains(errOut, mnt) || !strings.Contains(errOut, "is full") {
		t.Fatalf("eval on a full disk: exit %d\n%s\nwant exit 1, the full path under %s and what to do", code, errOut, mnt)
	}
	if !strings.Contains(logs.String(), "write-ahead log failed") {
		t.Errorf("batos run did not log the failure:\n%s", logs)
	}
	if out := mustRun(t, "-image", img, "eval", "genesis.saved"); !strings.Contains(out, "before the disk filled") {
		t.Errorf("read on a full disk: %s", out)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "-image", img, "eval", "genesis.after = 'space freed'")
	if !strings.Contains(logs.String(), "writable again") {
		t.Errorf("batos run did not log the recovery:\n%s", logs)
	}

	storetest.FillDisk(t, mnt)
	stop()
	for _, args := range [][]string{{"verify"}, {"stats"}, {"log", "-n", "3"}, {"eval", "genesis.after"}} {
		code, out, errOut := batos(t, append([]string{"-image", img}, args...)...)
		if args[0] == "eval" {
			// eval opens the image to write; on a full disk it may be
			// refused, but never crash or lose what was saved.
			if code != 0 && !strings.Contains(errOut, "no space") {
				t.Errorf("eval on a full disk after stop: exit %d %s%s", code, out, errOut)
			}
			continue
		}
		if code != 0 {
			t.Errorf("batos %s on a full disk: exit %d\n%s%s", args[0], code, out, errOut)
		}
	}
}
