package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestMethodStatsAndAuditsCLI: method stats shows the calls a send made;
// audits and proposals read an image that has none; an audit without a
// mind says so; bad IDs are usage errors.
func TestMethodStatsAndAuditsCLI(t *testing.T) {
	img := newImage(t)
	mustRun(t, "-image", img, "eval", `genesis.half = method("def half(self, n):\n    return 10 / n")`)
	mustRun(t, "-image", img, "send", "genesis", "half", "2")
	if code, _, _ := batos(t, "-image", img, "send", "genesis", "half", "0"); code != 1 {
		t.Fatalf("send half 0 exited %d, want 1", code)
	}
	out := mustRun(t, "-image", img, "method", "stats", "genesis")
	if !strings.Contains(out, "genesis.half") || !strings.Contains(out, "1 (50%: error 1)") {
		t.Fatalf("method stats:\n%s", out)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "method", "stats", "-json")), &rows); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rows {
		found = found || (r["selector"] == "half" && r["calls"] == float64(2) && r["errors"] == float64(1))
	}
	if !found {
		t.Fatalf("method stats -json: %v", rows)
	}
	if out := mustRun(t, "-image", img, "audit", "list"); !strings.Contains(out, "no audits yet") {
		t.Fatalf("audit list: %s", out)
	}
	if out := mustRun(t, "-image", img, "proposal", "list"); !strings.Contains(out, "no proposals") {
		t.Fatalf("proposal list: %s", out)
	}
	code, _, errOut := batos(t, "-image", img, "audit")
	if code != 1 || !strings.Contains(errOut, "no mind") {
		t.Fatalf("audit without a mind: exit %d, %s", code, errOut)
	}
	for _, args := range [][]string{
		{"proposal", "show", "three"}, {"proposal", "accept"}, {"audit", "show", "x"}, {"audit", "list", "-n", "-1"},
		{"method", "stats", "a", "b"}, {"audit", "extra"},
	} {
		if code, _, _ := batos(t, append([]string{"-image", img}, args...)...); code != 2 {
			t.Errorf("%v exited %d, want 2", args, code)
		}
	}
	if code, _, errOut := batos(t, "-image", img, "proposal", "show", "4.1"); code != 1 || !strings.Contains(errOut, "no such proposal") {
		t.Errorf("proposal show 4.1: exit %d, %s", code, errOut)
	}
}

// TestRunHeartbeatFlag: -heartbeat takes 0 or a duration of at least a
// second.
func TestRunHeartbeatFlag(t *testing.T) {
	img := newImage(t)
	for _, bad := range []string{"-1s", "500ms", "soon"} {
		if code, _, errOut := batos(t, "-image", img, "run", "-heartbeat", bad); code != 2 {
			t.Errorf("run -heartbeat %s: exit %d, %s; want a usage error", bad, code, errOut)
		}
	}
}
