package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeUninstall: make uninstall says what it did: removed the
// installed batos, or that there was nothing to remove.
func TestMakeUninstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	bindir := t.TempDir()
	installed := filepath.Join(bindir, "batos")
	uninstall := func() string {
		t.Helper()
		out, err := exec.Command("make", "-s", "-C", "../..", "uninstall", "DESTDIR=", "BINDIR="+bindir).CombinedOutput()
		if err != nil {
			t.Fatalf("make uninstall: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := os.WriteFile(installed, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, want := uninstall(), "removed "+installed; got != want {
		t.Errorf("with batos installed: got %q, want %q", got, want)
	}
	if _, err := os.Lstat(installed); err == nil {
		t.Error("make uninstall left batos in place")
	}
	if got, want := uninstall(), "nothing to remove at "+installed; got != want {
		t.Errorf("with nothing installed: got %q, want %q", got, want)
	}
}
