package pgtest

import (
	"os/exec"
	"strings"
	"testing"
)

// A machine without PostgreSQL fails the tests saying how to install it,
// never skips them.
func TestMissingBinariesSayHowToInstall(t *testing.T) {
	saved := binaryDirs
	t.Cleanup(func() { binaryDirs = saved })
	empty := t.TempDir()
	binaryDirs = func() []string { return []string{empty} }
	_, err := findBinaries()
	if err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") || !strings.Contains(err.Error(), empty) {
		t.Fatalf("findBinaries without binaries: %v, want an error naming %s and the install command", err, empty)
	}
}

func TestNewestBinariesFirst(t *testing.T) {
	got := newestFirst([]string{"/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"})
	if got[0] != "/usr/lib/postgresql/16/bin" || got[1] != "/usr/lib/postgresql/15/bin" || got[2] != "/usr/lib/postgresql/9.6/bin" {
		t.Errorf("ordered by version: %v", got)
	}
}

func TestShellQuote(t *testing.T) {
	got, err := exec.Command("sh", "-c", "printf %s "+shellQuote(`it's "a" $HOME \ test`)).Output()
	if err != nil || string(got) != `it's "a" $HOME \ test` {
		t.Errorf("quoted through sh: %q %v", got, err)
	}
}
