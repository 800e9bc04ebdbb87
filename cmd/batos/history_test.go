package main

import (
	"encoding/json"
	"strings"
	"testing"

	"batos/internal/image"
)

// TestHostileLogCounts: -n 0 lists every transaction, -n 1 one, and
// -before excludes the given TID and newer ones.
func TestHostileLogCounts(t *testing.T) {
	img := newImage(t)
	for i := range 3 {
		addObject(t, img, "o"+itoa(i), image.Int(int64(i)))
	}
	all := logJSON(t, img)
	if len(all) != 4 {
		t.Fatalf("log -n 0 lists %d transactions, want 4", len(all))
	}
	if lines := strings.Count(mustRun(t, "-image", img, "log", "-n", "0"), "\n"); lines != 4 {
		t.Errorf("log -n 0 printed %d lines, want 4", lines)
	}
	if lines := strings.Count(mustRun(t, "-image", img, "log", "-n", "1"), "\n"); lines != 1 {
		t.Errorf("log -n 1 printed %d lines, want 1", lines)
	}
	second := all[1]["tid"].(string)
	out := mustRun(t, "-image", img, "log", "-n", "0", "-before", second)
	if strings.Contains(out, second) || strings.Contains(out, all[0]["tid"].(string)) || strings.Count(out, "\n") != 2 {
		t.Errorf("log -before %s:\n%s\nwant the 2 older transactions only", second, out)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "stats", "-json")), &st); err != nil {
		t.Fatal(err)
	}
	if st["transactions"] != float64(4) || st["last_tid"] != all[0]["tid"] {
		t.Errorf("stats %v disagrees with the log", st)
	}
}

// TestHostileHistoryOfUndoneObject: after its creation is undone the
// object's history still lists it, marked deleted, and a View no longer
// finds it.
func TestHostileHistoryOfUndoneObject(t *testing.T) {
	img := newImage(t)
	oid, tid := addObject(t, img, "ephemeral", image.String("x"))
	out := mustRun(t, "-image", img, "undo", tid.String())
	if !strings.Contains(out, "undid "+tid.String()) {
		t.Fatalf("undo: %q", out)
	}
	out = mustRun(t, "-image", img, "history", oid.String())
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "deleted") || !strings.Contains(lines[1], tid.String()) {
		t.Errorf("history of an undone object:\n%s\nwant a deleted revision above %s", out, tid)
	}
	var revs []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "history", "-json", oid.String())), &revs); err != nil {
		t.Fatal(err)
	}
	if len(revs) != 2 || revs[0]["deleted"] != true || revs[1]["deleted"] != false {
		t.Errorf("history -json: %v", revs)
	}
	if code, _, errOut := batos(t, "-image", img, "undo", tid.String()); code != 1 || !strings.Contains(errOut, oid.String()) {
		t.Errorf("undoing the creation twice: exit %d %q", code, errOut)
	}
	if out := mustRun(t, "-image", img, "verify"); !strings.HasSuffix(out, "ok\n") {
		t.Errorf("verify after undoing a creation: %q", out)
	}
}

// TestHostileUndoInitCLI: undoing the transaction that created the image
// is refused with exit 1 and a reason.
func TestHostileUndoInitCLI(t *testing.T) {
	img := newImage(t)
	entries := logJSON(t, img)
	initTID := entries[len(entries)-1]["tid"].(string)
	code, _, errOut := batos(t, "-image", img, "undo", initTID)
	if code != 1 || !strings.Contains(errOut, "root") {
		t.Errorf("undo of init: exit %d %q, want 1 and a refusal about the root", code, errOut)
	}
	if n := len(logJSON(t, img)); n != 1 {
		t.Errorf("log has %d entries after a refused undo, want 1", n)
	}
}
