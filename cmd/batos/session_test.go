package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCommandsThroughRun: stats, verify, method set and revert, and pack
// work while batos run holds the image, through its bridge, and say what
// they say on the image opened here (the counts aside, which the server's
// own commits change).
func TestCommandsThroughRun(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	src := filepath.Join(t.TempDir(), "greet.star")
	if err := os.WriteFile(src, []byte("def greet(self, who):\n    return 'hello ' + who\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	local := map[string]string{}
	for _, args := range [][]string{{"stats"}, {"verify"}} {
		local[args[0]] = mustRun(t, append([]string{"-image", img}, args...)...)
	}
	_, _, stop := startRun(t, img)
	defer stop()

	// The server's own commits (the heartbeat's schedule) change the
	// counts and the last TID.
	counts := regexp.MustCompile(`[0-9a-f]{16}|\d+`)
	if out := mustRun(t, "-image", img, "stats"); counts.ReplaceAllString(out, "N") != counts.ReplaceAllString(local["stats"], "N") {
		t.Errorf("stats through batos run:\n%s\nhere:\n%s", out, local["stats"])
	}
	if out := mustRun(t, "-image", img, "verify"); !strings.HasSuffix(out, "ok\n") || !strings.Contains(out, "checked ") {
		t.Errorf("verify through batos run: %q", out)
	}
	if out := mustRun(t, "-image", img, "method", "set", "genesis", "greet", "-file", src); !strings.Contains(out, "installed genesis.greet from "+src+" in transaction ") {
		t.Errorf("method set through batos run: %q", out)
	}
	if out := mustRun(t, "-image", img, "method", "set", "genesis", "greet", "-file", src); !strings.Contains(out, "already has this source; nothing changed") {
		t.Errorf("the same method again through batos run: %q", out)
	}
	if out := mustRun(t, "-image", img, "send", "genesis", "greet", `"ada"`); out != "\"hello ada\"\n" {
		t.Errorf("send greet: %q", out)
	}
	if code, _, errOut := batos(t, "-image", img, "method", "revert", "genesis", "greet"); code != 1 || !strings.Contains(errOut, "cannot revert genesis.greet") {
		t.Errorf("revert of a method no cycle installed, through batos run: exit %d, %q", code, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.star")
	if err := os.WriteFile(bad, []byte("def other(self):\n    pass\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := batos(t, "-image", img, "method", "set", "genesis", "greet", "-file", bad); code != 1 || errOut == "" {
		t.Errorf("a file defining no greet, through batos run: exit %d, %q", code, errOut)
	}
	if out := mustRun(t, "-image", img, "pack", "-before", "now"); !strings.Contains(out, "packed history before") {
		t.Errorf("pack through batos run: %q", out)
	}
	if out := mustRun(t, "-image", img, "verify"); !strings.HasSuffix(out, "ok\n") {
		t.Errorf("verify after the pack through batos run: %q", out)
	}
}
