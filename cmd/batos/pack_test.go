package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"batos/internal/image"
)

var (
	packedLine    = regexp.MustCompile(`^packed history before .+ in .+: dropped (\d+) revisions, (\d+) unreachable objects, (\d+) log entries, (\d+) blobs \(.+\)\n$`)
	compactedLine = regexp.MustCompile(`(?m)^compacted .+: (.+) -> (.+)$`)
)

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
	// Compaction, through the server, while it serves.
	out = mustRun(t, "-image", img, "pack", "-before", "now", "-compact")
	if !packedLine.MatchString(strings.SplitAfterN(out, "\n", 2)[0]) || !compactedLine.MatchString(out) {
		t.Errorf("pack -compact through the server: %q", out)
	}
	out = mustRun(t, "-image", img, "pack", "-compact")
	if m := compactedLine.FindStringSubmatch(out); m == nil || strings.Contains(out, "packed") {
		t.Errorf("pack -compact alone: %q, want only the compaction", out)
	}
	if out := mustRun(t, "-image", img, "eval", "genesis.note"); out != "3\n" {
		t.Errorf("genesis.note after the compaction: %q", out)
	}
	for _, bad := range []string{"last tuesday", "0000000000000000"} {
		if code, _, errOut := batos(t, "-image", img, "pack", "-before", bad); code != 2 || !strings.Contains(errOut, "bad") {
			t.Errorf("pack -before %q: exit %d %q, want a usage error", bad, code, errOut)
		}
	}
}

// TestPackCompactShrinksTheFile: pack frees pages, which bbolt keeps;
// -compact gives them back and the image reads the same.
func TestPackCompactShrinksTheFile(t *testing.T) {
	img := newImage(t)
	mustRun(t, "-image", img, "eval", "genesis.junk = [genesis.clone(blob = 'j' * 20000) for i in range(300)]")
	mustRun(t, "-image", img, "eval", "genesis.junk = None\ngenesis.kept = 'still here'")
	before, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "-image", img, "pack", "-before", "now", "-compact")
	after, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if !compactedLine.MatchString(out) || after.Size() >= before.Size()/2 {
		t.Errorf("pack -compact: %q; file %d -> %d bytes, want it at least halved", out, before.Size(), after.Size())
	}
	if got := mustRun(t, "-image", img, "eval", "genesis.kept"); got != "\"still here\"\n" {
		t.Errorf("genesis.kept after compaction: %q", got)
	}
	if out := mustRun(t, "-image", img, "verify"); !strings.HasSuffix(out, "ok\n") {
		t.Errorf("verify after compaction: %s", out)
	}
}

// TestHostilePackFutureCLI: "pack -before" a future time either is
// refused as a usage error or behaves like "now"; it must not stop later
// transactions from being undone.
func TestHostilePackFutureCLI(t *testing.T) {
	img := newImage(t)
	addObject(t, img, "a", image.Int(1))
	future := time.Now().AddDate(1, 0, 0).UTC().Format(time.RFC3339)
	code, _, errOut := batos(t, "-image", img, "pack", "-before", future)
	if code == 2 {
		return // refused: fine
	}
	if code != 0 {
		t.Fatalf("pack -before %s: exit %d %q", future, code, errOut)
	}
	_, tid := addObject(t, img, "b", image.Int(2))
	if code, _, errOut := batos(t, "-image", img, "undo", tid.String()); code != 0 {
		t.Errorf("after pack -before %s, undo of a new transaction: exit %d %q", future, code, errOut)
	}
}
