package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/store/pg/pgtest"
)

// TestMain stops the throwaway PostgreSQL cluster the tests that use one
// started (pgtest).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestStoreFlagPostgres: -store (and BATOS_STORE) names a PostgreSQL
// database as -image names a file: the image is created there on first
// use, and every command works on it; a password in the URL is never
// printed.
func TestStoreFlagPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	if out := mustRun(t, "-store", url, "image", "init"); !strings.Contains(out, "created image") {
		t.Errorf("image init on a database: %q", out)
	}
	mustRun(t, "-store", url, "eval", "genesis.n = 41")
	if out := mustRun(t, "eval", "-store", url, "genesis.n + 1"); strings.TrimSpace(out) != "42" {
		t.Errorf("eval after the flag: %q", out)
	}
	t.Setenv("BATOS_STORE", url)
	if out := mustRun(t, "eval", "genesis.n"); strings.TrimSpace(out) != "41" {
		t.Errorf("eval on BATOS_STORE: %q", out)
	}
	if out := mustRun(t, "log", "-n", "1"); !strings.Contains(out, "genesis.n = 41") {
		t.Errorf("log: %q", out)
	}
	if out := mustRun(t, "history", "genesis"); strings.Count(out, "\n") < 2 {
		t.Errorf("history of genesis: %q", out)
	}
	if out := mustRun(t, "verify"); !strings.Contains(out, "ok") {
		t.Errorf("verify: %q", out)
	}

	secret := "postgres://batos:s3cr3t-pass@127.0.0.1:1/nothing?connect_timeout=2"
	code, out, errOut := batos(t, "-store", secret, "eval", "1")
	if code == 0 || strings.Contains(out+errOut, "s3cr3t") {
		t.Errorf("an unreachable database: exit %d, %q %q (the password must not show)", code, out, errOut)
	}
}

// TestImageCopyBothWays: an image file copied into PostgreSQL and back
// reads the same at every step: log, histories, objects, blobs.
func TestImageCopyBothWays(t *testing.T) {
	file := newImage(t)
	addObject(t, file, "greeting", image.String("hello"))
	addBlob(t, file, "a blob that travels")
	mustRun(t, "-image", file, "eval", "genesis.n = 1")
	mustRun(t, "-image", file, "eval", "genesis.n = 2")
	mustRun(t, "-image", file, "undo", logJSON(t, file)[0]["tid"].(string))

	db := pgtest.NewDatabase(t)
	if out := mustRun(t, "image", "copy", file, db); !strings.Contains(out, "verified, log and histories identical") {
		t.Errorf("copy into the database: %q", out)
	}
	back := filepath.Join(t.TempDir(), "back.db")
	mustRun(t, "image", "copy", db, back)
	for _, args := range [][]string{{"log", "-n", "0"}, {"history", "genesis"}, {"history", "greeting"}, {"inspect", "genesis"}, {"eval", "genesis.n"}} {
		want := mustRun(t, append([]string{"-image", file}, args...)...)
		for _, img := range []string{db, back} {
			if got := mustRun(t, append([]string{"-store", img}, args...)...); got != want {
				t.Errorf("%s on %s:\n%s\nwant, as on the file:\n%s", strings.Join(args, " "), img, got, want)
			}
		}
	}
	if out := mustRun(t, "-store", db, "verify"); !strings.Contains(out, "ok") {
		t.Errorf("verify of the database copy: %q", out)
	}
	// A database that holds an image is no destination.
	if code, _, errOut := batos(t, "image", "copy", back, db); code == 0 || !strings.Contains(errOut, "not empty") {
		t.Errorf("a copy into a database holding an image: exit %d, %q", code, errOut)
	}
}
