package pgtest

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
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

// A cluster of the test's own restarts on the same port, with its
// databases, and is removed when the test ends.
func TestOwnClusterRestarts(t *testing.T) {
	var dir string
	t.Run("own", func(t *testing.T) {
		c := StartOwn(t)
		dir = c.dir
		name := c.CreateDatabase(t)
		url := c.URL(name)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)"); err != nil {
			t.Fatal(err)
		}
		c.Restart(t, 0)
		if err := conn.Ping(ctx); err == nil {
			t.Error("a session from before the restart still answers")
		}
		again, err := pgx.Connect(ctx, c.TCPURL(name))
		if err != nil {
			t.Fatalf("connect after the restart: %v", err)
		}
		defer again.Close(ctx)
		var n int
		if err := again.QueryRow(ctx, "SELECT n FROM kept").Scan(&n); err != nil || n != 7 {
			t.Errorf("after the restart: %d, %v, want 7", n, err)
		}
	})
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the own cluster's directory %s is left: %v", dir, err)
	}
}
