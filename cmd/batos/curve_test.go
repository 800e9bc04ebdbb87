package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"batos/internal/zmqbridge"
)

// TestKeyGenRefusesToReplace: key gen -out keeps existing keys unless
// -force, and a replaced secret key is still readable by its owner only.
func TestKeyGenRefusesToReplace(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "server")
	mustRun(t, "key", "gen", "-out", prefix)
	before, err := os.ReadFile(prefix + ".key")
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut := batos(t, "key", "gen", "-out", prefix)
	if code != 1 || !strings.Contains(errOut, prefix+".key exists") || !strings.Contains(errOut, "-force") {
		t.Errorf("key gen over existing keys: exit %d %q, want a refusal naming -force", code, errOut)
	}
	if after, _ := os.ReadFile(prefix + ".key"); string(after) != string(before) {
		t.Fatal("the refused key gen replaced the secret key")
	}
	// Only the public key there: still refused, and nothing written.
	other := filepath.Join(t.TempDir(), "client")
	if err := os.WriteFile(other+".pub", []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := batos(t, "key", "gen", "-out", other); code != 1 {
		t.Errorf("key gen over an existing .pub: exit %d, want 1", code)
	}
	if _, err := os.Stat(other + ".key"); err == nil {
		t.Error("a refused key gen wrote the secret key")
	}
	if err := os.Chmod(prefix+".key", 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "key", "gen", "-out", prefix, "-force")
	after, _ := os.ReadFile(prefix + ".key")
	if string(after) == string(before) {
		t.Error("key gen -force kept the old secret key")
	}
	if fi, err := os.Stat(prefix + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced secret key: %v %v, want mode 0600", fi.Mode(), err)
	}
}

// TestCurveServerReached: the commands reach a batos run serving with
// CURVE with this client's key (flag or environment variable) and the
// server key it recorded; without a key they say what to give, and with
// a key it refuses they stop within curvePing, naming the key.
func TestCurveServerReached(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"server", "client", "stranger"} {
		mustRun(t, "key", "gen", "-out", filepath.Join(dir, name))
	}
	clientPub, err := os.ReadFile(filepath.Join(dir, "client.pub"))
	if err != nil {
		t.Fatal(err)
	}
	allow := filepath.Join(dir, "allow.txt")
	if err := os.WriteFile(allow, clientPub, 0o644); err != nil {
		t.Fatal(err)
	}
	img := newImage(t)
	_, _, stop := startRun(t, img, "-curve-key", filepath.Join(dir, "server.key"), "-allow", allow)
	defer stop()

	code, _, errOut := batos(t, "-image", img, "send", "genesis", "describe")
	if code != 1 || !strings.Contains(errOut, "serves with CURVE") || !strings.Contains(errOut, "-curve-key FILE") || !strings.Contains(errOut, "batos run at tcp://127.0.0.1:") {
		t.Errorf("no client key: exit %d %q, want advice naming -curve-key and the server", code, errOut)
	}
	clientKey := filepath.Join(dir, "client.key")
	if out := mustRun(t, "-image", img, "-curve-key", clientKey, "send", "genesis", "describe"); !strings.Contains(out, "genesis") {
		t.Errorf("with -curve-key: %q", out)
	}
	if out := mustRun(t, "-image", img, "-curve-key", clientKey, "-curve-server-key", filepath.Join(dir, "server.pub"), "log", "-n", "1"); out == "" {
		t.Error("with -curve-server-key: no log")
	}
	t.Setenv("BATOS_CURVE_KEY", clientKey)
	if out := mustRun(t, "-image", img, "send", "genesis", "describe"); !strings.Contains(out, "genesis") {
		t.Errorf("with BATOS_CURVE_KEY: %q", out)
	}

	defer func(d time.Duration) { curvePing = d }(curvePing)
	curvePing = 500 * time.Millisecond
	start := time.Now()
	code, _, errOut = batos(t, "-image", img, "-curve-key", filepath.Join(dir, "stranger.key"), "send", "genesis", "describe")
	if code != 1 || !strings.Contains(errOut, "did not answer in 500ms") || !strings.Contains(errOut, "-allow") {
		t.Errorf("a key the server refuses: exit %d %q, want the key and -allow named", code, errOut)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("a key the server refuses took %s to be told", took)
	}
}

// TestTimeoutNamesServer: a request the server did not answer in time
// says which server it waited for.
func TestTimeoutNamesServer(t *testing.T) {
	commands["test-timeout"] = cliCommand{"test", func(ctx context.Context, e *env, args []string) error {
		e.server = "batos run at tcp://127.0.0.1:9 (process 42)"
		return fmt.Errorf("stats: %w", zmqbridge.ErrTimeout)
	}}
	defer delete(commands, "test-timeout")
	code, _, errOut := batos(t, "test-timeout")
	if code != 1 || !strings.Contains(errOut, "waited for batos run at tcp://127.0.0.1:9 (process 42)") {
		t.Errorf("exit %d %q, want the server named", code, errOut)
	}
}
