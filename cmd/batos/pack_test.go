package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var packedLine = regexp.MustCompile(`^packed history before .+ in .+: dropped (\d+) revisions, (\d+) unreachable objects, (\d+) log entries, (\d+) blobs \(.+\)\n$`)

// TestPackThroughTheServer: while batos run holds the image, batos pack
// is carried out by the server instead of failing "in use"; -before takes
// a TID too; what was dropped is reported, later history stays.
func TestPackThroughTheServer(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	_, _, stop := startRun(t, img)
	defer stop()
	mustRun(t, "-image", img, "eval", "[genesis.clone(n = i) for i in range(50)]\ngenesis.note = 1")
	mustRun(t, "-image", img, "eval", "genesis.note = 2")
	cut := strings.Fields(mustRun(t, "-image", img, "log", "-n", "1"))[0]
	mustRun(t, "-image", img, "eval", "genesis.note = 3")
	later := strings.Fields(mustRun(t, "-image", img, "log", "-n", "1"))[0]

	out := mustRun(t, "-image", img, "pack", "-before", cut)
	m := packedLine.FindStringSubmatch(out)
	if m == nil || m[2] != "50" || m[1] == "0" {
		t.Fatalf("pack -before %s through the server: %q, want the 50 clones and old revisions dropped", cut, out)
	}
	if out := mustRun(t, "-image", img, "history", "oid:3"); !strings.Contains(out, later) {
		t.Errorf("history after the pack lacks %s, committed after the cut:\n%s", later, out)
	}
	if out := mustRun(t, "-image", img, "eval", "genesis.note"); out != "3\n" {
		t.Errorf("genesis.note after the pack: %q", out)
	}
	out = mustRun(t, "-image", img, "pack", "-before", "now")
	if m := packedLine.FindStringSubmatch(out); m == nil || m[2] != "0" {
		t.Errorf("second pack: %q, want no unreachable objects left", out)
	}
	for _, bad := range []string{"last tuesday", "0000000000000000"} {
		if code, _, errOut := batos(t, "-image", img, "pack", "-before", bad); code != 2 || !strings.Contains(errOut, "bad") {
			t.Errorf("pack -before %q: exit %d %q, want a usage error", bad, code, errOut)
		}
	}
}
