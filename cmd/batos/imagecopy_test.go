package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"batos/internal/image"
)

// TestImageCopy: batos image copy makes a new image whose log, histories,
// objects and blobs read as the source's, verified; what it refuses, it
// refuses before writing anything.
func TestImageCopy(t *testing.T) {
	src := newImage(t)
	addObject(t, src, "greeting", image.String("hello"))
	_, ref := addBlob(t, src, "a blob that comes along")
	mustRun(t, "-image", src, "eval", "genesis.n = 1")
	mustRun(t, "-image", src, "eval", "genesis.n = 2\ngenesis.items = [1, 2, 3]")
	undone := logJSON(t, src)[0]["tid"].(string)
	mustRun(t, "-image", src, "undo", undone)

	dst := filepath.Join(t.TempDir(), "copy.db")
	var rep copyReport
	if err := json.Unmarshal([]byte(mustRun(t, "image", "copy", "-json", src, dst)), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Verified || rep.Blobs != 1 || rep.BlobBytes != ref.Size || rep.Transactions != len(logJSON(t, src)) {
		t.Errorf("copy report %+v", rep)
	}
	for _, args := range [][]string{{"log", "-n", "0"}, {"history", "genesis"}, {"history", "greeting"}, {"inspect", "genesis"}, {"stats"}} {
		a := mustRun(t, append([]string{"-image", src}, args...)...)
		b := mustRun(t, append([]string{"-image", dst}, args...)...)
		if args[0] == "stats" {
			// The files differ in size; what they hold does not.
			a, b = withoutLine(withoutLine(a, "file"), "image"), withoutLine(withoutLine(b, "file"), "image")
		}
		if a != b {
			t.Errorf("%s differs:\nsource:\n%s\ncopy:\n%s", strings.Join(args, " "), a, b)
		}
	}
	if out := mustRun(t, "-image", dst, "verify"); !strings.Contains(out, "ok") {
		t.Errorf("verify of the copy: %q", out)
	}
	// The copy goes on from where the source was: the undo is there.
	if out := mustRun(t, "-image", dst, "eval", "(genesis.n, has_slot(genesis, 'items'))"); strings.TrimSpace(out) != "(1, False)" {
		t.Errorf("the copy evaluates genesis.n and its items to %q", out)
	}
	mustRun(t, "-image", dst, "eval", "genesis.n = 3")

	for name, args := range map[string][]string{
		"into an existing image": {"image", "copy", src, dst},
		"onto itself":            {"image", "copy", src, src},
		"from nothing":           {"image", "copy", filepath.Join(t.TempDir(), "none.db"), filepath.Join(t.TempDir(), "x.db")},
		"one argument":           {"image", "copy", src},
		"three arguments":        {"image", "copy", src, dst, dst},
	} {
		code, _, errOut := batos(t, args...)
		if code == 0 || errOut == "" {
			t.Errorf("image copy %s: exit %d, %q", name, code, errOut)
		}
	}
	if out := mustRun(t, "-image", dst, "eval", "genesis.n"); strings.TrimSpace(out) != "3" {
		t.Errorf("a refused copy changed the existing image: genesis.n is %q", out)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dst), "x.db")); err == nil {
		t.Error("a copy from nothing left a destination behind")
	}
	// Files beside a new destination's name are the user's: the copy
	// refuses rather than risk removing them.
	fresh := filepath.Join(t.TempDir(), "fresh.db")
	mine := fresh + ".blobs"
	if err := os.MkdirAll(filepath.Join(mine, "notes"), 0o755); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := batos(t, "image", "copy", src, fresh); code == 0 || !strings.Contains(errOut, "exists") {
		t.Errorf("a copy beside someone's files: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(mine, "notes")); err != nil {
		t.Errorf("the copy touched what was beside its destination: %v", err)
	}
}

func withoutLine(s, prefix string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(strings.ToLower(l), prefix) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
