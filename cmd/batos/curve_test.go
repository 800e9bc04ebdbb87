package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"batos/internal/store/bolt"
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
	if code != 1 || !strings.Contains(errOut, "is not answering") || !strings.Contains(errOut, "silent for 500ms") || !strings.Contains(errOut, "-allow") {
		t.Errorf("a key the server refuses: exit %d %q, want the key and -allow named", code, errOut)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("a key the server refuses took %s to be told", took)
	}
}

// TestCurveKeyMistaken: a public key given where a secret key belongs
// (or the other way round) is refused at once, saying so, by the client
// and by batos run, rather than met by a server's silence.
func TestCurveKeyMistaken(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"server", "client"} {
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
	// A public key copied to a file of another name.
	copied := filepath.Join(dir, "mine.key")
	if err := os.WriteFile(copied, clientPub, 0o600); err != nil {
		t.Fatal(err)
	}
	img := newImage(t)
	// Bounded: a batos run that accepted the key would serve until stopped.
	if code, _, errOut := batosWithin(t, 3*time.Second, "-image", img, "run", "-listen", "tcp://127.0.0.1:*", "-events", "tcp://127.0.0.1:*", "-http", "off",
		"-curve-key", filepath.Join(dir, "server.pub"), "-allow", allow); code != 2 || !strings.Contains(errOut, "server.pub is a public key file") {
		t.Errorf("batos run -curve-key server.pub: exit %d %q, want 2 and the public key named", code, errOut)
	}
	_, _, stop := startRun(t, img, "-curve-key", filepath.Join(dir, "server.key"), "-allow", allow)
	defer stop()

	defer func(d time.Duration) { curvePing = d }(curvePing)
	curvePing = 5 * time.Second
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"client.pub as the secret", []string{"-curve-key", filepath.Join(dir, "client.pub")}, "client.pub is a public key file"},
		{"server.pub as the secret", []string{"-curve-key", filepath.Join(dir, "server.pub")}, "server.pub is a public key file"},
		{"a copy of client.pub as the secret", []string{"-curve-key", copied}, "mine.key holds the public key that " + filepath.Join(dir, "client.pub") + " holds"},
		{"server.key as the server's public key", []string{"-curve-key", filepath.Join(dir, "client.key"), "-curve-server-key", filepath.Join(dir, "server.key")}, "server.key holds a secret key"},
	} {
		start := time.Now()
		code, _, errOut := batos(t, append(append([]string{"-image", img}, c.args...), "send", "genesis", "describe")...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d %q, want 2 and %q", c.name, code, errOut, c.want)
		}
		if took := time.Since(start); took >= curvePing {
			t.Errorf("%s: told after %s, the server's silence, not before connecting", c.name, took)
		}
	}
	t.Setenv("BATOS_CURVE_KEY", filepath.Join(dir, "client.pub"))
	if code, _, errOut := batos(t, "-image", img, "send", "genesis", "describe"); code != 2 || !strings.Contains(errOut, "is a public key file") {
		t.Errorf("BATOS_CURVE_KEY=client.pub: exit %d %q, want 2 and the public key named", code, errOut)
	}
}

// TestCurveServerNotAnswering: a CURVE server that holds the image but
// does not answer (stopped, or gone with the lock held) is not blamed on
// the client's key alone: the error names its address and both causes.
func TestCurveServerNotAnswering(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"server", "client"} {
		mustRun(t, "key", "gen", "-out", filepath.Join(dir, name))
	}
	serverPub, err := os.ReadFile(filepath.Join(dir, "server.pub"))
	if err != nil {
		t.Fatal(err)
	}
	img := newImage(t)
	addr := freeTCP(t) // nothing listens there
	if err := os.WriteFile(bridgeFile(img), []byte(bridgeRecord(addr, "", &zmqbridge.Curve{ServerPublic: strings.TrimSpace(string(serverPub))})), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := bolt.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer func(d time.Duration) { curvePing = d }(curvePing)
	curvePing = 300 * time.Millisecond
	code, _, errOut := batos(t, "-image", img, "-curve-key", filepath.Join(dir, "client.key"), "stats")
	for _, want := range []string{"the server at " + addr + " is not answering", "may not be running", "does not accept this client's key"} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("exit %d %q, want 1 and %q", code, errOut, want)
		}
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
