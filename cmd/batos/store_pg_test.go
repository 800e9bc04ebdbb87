package main

import (
	"os"
	"strings"
	"testing"

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
