package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSendDataSlot: batos send of a data slot's name prints its value,
// as in Self; reading a missing name in eval is an error.
func TestSendDataSlot(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	if out := mustRun(t, "-image", img, "send", "genesis", "name"); strings.TrimSpace(out) != `"genesis"` {
		t.Errorf("batos send genesis name: got %q, want \"genesis\"", out)
	}
	if out := mustRun(t, "-image", img, "eval", "x = 2\nx * 21"); strings.TrimSpace(out) != "42" {
		t.Errorf("batos eval of statements ending in an expression: got %q, want 42", out)
	}
}
