package main

import (
	"strings"
	"testing"

	"batos/internal/image"
)

// TestPastedIDs: a TID, OID, root name, selector or ID pasted with space
// around it (a tab, a newline) is taken as if typed without it.
func TestPastedIDs(t *testing.T) {
	img := newImage(t)
	oid, tid := addObject(t, img, "thing", image.Int(1))
	if out := mustRun(t, "-image", img, "history", " "+oid.String()+"\n"); !strings.Contains(out, tid.String()) {
		t.Errorf("history of a pasted OID: %q", out)
	}
	if out := mustRun(t, "-image", img, "history", "\tthing "); !strings.Contains(out, tid.String()) {
		t.Errorf("history of a pasted root name: %q", out)
	}
	if out := mustRun(t, "-image", img, "inspect", " genesis "); !strings.Contains(out, "genesis") {
		t.Errorf("inspect of a pasted root name: %q", out)
	}
	if out := mustRun(t, "-image", img, "send", " genesis", "describe\n"); out == "" {
		t.Error("send to a pasted target: no reply")
	}
	if out := mustRun(t, "-image", img, "undo", " "+tid.String()+" \n"); !strings.Contains(out, "undid "+tid.String()) {
		t.Errorf("undo of a pasted TID: %q", out)
	}
	// Well-formed once trimmed: not found, never a usage error.
	for _, args := range [][]string{{"cycle", "show", " 1 "}, {"audit", "show", " 1\n"}, {"proposal", "show", " 1.1 "}} {
		code, _, errOut := batos(t, append([]string{"-image", img}, args...)...)
		if code != 1 || strings.Contains(errOut, "usage") {
			t.Errorf("batos %s: exit %d %q, want 1 and not found", strings.Join(args, " "), code, errOut)
		}
	}
}
