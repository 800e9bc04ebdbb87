package uvm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDatabaseIndexDirs: each process on one machine takes a catalog
// index directory of its own for a database image, the same one again
// once the first let it go; an image file's stays beside it.
func TestDatabaseIndexDirs(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	url := "postgres://batos:secret@db.example/batos"
	first, lock1, err := claimIndexDir(url)
	if err != nil {
		t.Fatal(err)
	}
	second, lock2, err := claimIndexDir(url)
	if err != nil {
		t.Fatal(err)
	}
	if first == second || !strings.HasSuffix(second, "-2") || strings.Contains(first, "secret") {
		t.Errorf("two nodes got %s and %s", first, second)
	}
	lock1.Close()
	again, lock3, err := claimIndexDir(url)
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Errorf("after the first let go, a node got %s, want %s", again, first)
	}
	lock2.Close()
	lock3.Close()

	file := filepath.Join(t.TempDir(), "img.db")
	dir, lock, err := claimIndexDir(file)
	if err != nil || lock != nil || dir != file+".index" {
		t.Errorf("an image file's index dir: %s %v %v", dir, lock, err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("claiming a file's index dir created it")
	}
	if got := DisplayName(url); strings.Contains(got, "secret") {
		t.Errorf("DisplayName shows the password: %s", got)
	}
}
