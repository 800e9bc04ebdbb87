package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestBenchStoreQuick runs "batos bench store -quick" with the cold-load
// child run by a batos binary built for the test, so the child's command
// line is the real one; internal/bench checks the figures themselves.
// Timing never fails a test.
func TestBenchStoreQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds batos and runs the benchmark")
	}
	exe := batosBinary(t)
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "store", "-quick", "-json", "-dir", t.TempDir(), "-exe", exe}
	if code := run(t.Context(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("batos %s: exit %d\nstderr: %s", strings.Join(args, " "), code, stderr.String())
	}
	// Exactly one JSON object: Unmarshal refuses anything after it.
	var got map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, stdout.String())
	}
	if v, ok := got["coldload100k_s"].(float64); !ok || v <= 0 {
		t.Errorf("coldload100k_s = %v, want a positive number", got["coldload100k_s"])
	}
	if got["quick"] != true {
		t.Errorf("quick = %v, want true", got["quick"])
	}
	if !strings.Contains(stderr.String(), "bench: coldload") {
		t.Errorf("stderr shows no progress of the cold load:\n%s", stderr.String())
	}
}

// TestBenchCatalogSmall runs "batos bench catalog" on a catalog of a
// hundred and fifty chunks; internal/bench checks the figures themselves.
func TestBenchCatalogSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the benchmark")
	}
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "catalog", "-chunks", "150", "-json", "-dir", t.TempDir()}
	if code := run(t.Context(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("batos %s: exit %d\nstderr: %s", strings.Join(args, " "), code, stderr.String())
	}
	var got map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, stdout.String())
	}
	if got["chunks"] != 150.0 {
		t.Errorf("chunks = %v, want 150", got["chunks"])
	}
	if !strings.Contains(stderr.String(), "bench: reopen") {
		t.Errorf("stderr shows no progress of the reopening:\n%s", stderr.String())
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench"}, {"bench", "nosuch"}, {"bench", "store", "extra"},
		{"bench", "vm", "extra"}, {"bench", "bridge", "extra"},
		{"bench", "cycle", "extra"}, {"bench", "cycle", "-n", "0"},
		{"bench", "catalog", "extra"}, {"bench", "catalog", "-chunks", "0"},
		{"bench", "learn", "extra"}, {"bench", "learn", "-attempts", "0"}, {"bench", "learn", "-timeout", "-1s"},
		{"bench", "learn", "-llm", "ftp://nowhere"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), args, &stdout, &stderr); code != 2 {
			t.Errorf("batos %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}

// nodeBinary is batos built once for the tests that run it as a process
// of its own (the test binary cannot serve: a bench's cold-load child, a
// node to kill); TestMain removes it.
var nodeBinary struct {
	once sync.Once
	dir  string
	exe  string
	err  error
}

// batosBinary builds batos once per test binary.
func batosBinary(t *testing.T) string {
	t.Helper()
	nodeBinary.once.Do(func() {
		if nodeBinary.dir, nodeBinary.err = os.MkdirTemp("", "batos-node-"); nodeBinary.err != nil {
			return
		}
		nodeBinary.exe = filepath.Join(nodeBinary.dir, "batos")
		goTool, err := exec.LookPath("go")
		if err != nil {
			nodeBinary.err = fmt.Errorf("no go command to build batos with: %w", err)
			return
		}
		if out, err := exec.Command(goTool, "build", "-o", nodeBinary.exe, ".").CombinedOutput(); err != nil {
			nodeBinary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if nodeBinary.err != nil {
		t.Fatal(nodeBinary.err)
	}
	return nodeBinary.exe
}

// removeBatosBinary removes what batosBinary built.
func removeBatosBinary() {
	if nodeBinary.dir != "" {
		os.RemoveAll(nodeBinary.dir)
	}
}

// TestBenchLearnRefusesBadSuites: a suite file that cannot run, or a
// mission the suite lacks, is refused before any mind is looked for.
func TestBenchLearnRefusesBadSuites(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "suite.json")
	if err := os.WriteFile(bad, []byte(`{"missions": [{"name": "a", "send": {"target": "x", "selector": "y"}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "learn", "-suite", bad}, "no checks"},
		{[]string{"bench", "learn", "-suite", filepath.Join(t.TempDir(), "missing.json")}, "no such file"},
	} {
		code, _, errOut := batos(t, tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("batos %s: exit %d, %q; want 1 mentioning %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
}

// TestBenchVMAnchor runs "batos bench vm -quick -anchor": the seed's own
// send, in Python, measured in the same run, its rate, batos's and their
// ratio side by side. It needs Debian's /usr/bin/python3 with
// python3-persistent, which make deps-test installs. Timing never fails
// a test.
func TestBenchVMAnchor(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the benchmark")
	}
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skipf("no %s to run the seed's send", python)
	}
	if out, err := exec.Command(python, "-c", "import persistent").CombinedOutput(); err != nil {
		t.Skipf("%s lacks the persistent module (make deps-test installs python3-persistent): %v: %s", python, err, out)
	}
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "vm", "-quick", "-anchor", "-dir", t.TempDir()}
	if code := run(t.Context(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("batos %s: exit %d\nstderr: %s", strings.Join(args, " "), code, stderr.String())
	}
	for _, want := range []string{"anchor: the seed's send, Python, in memory", "batos read-only send, 1 core, own transaction", "ratio batos / seed", "×", "≥ 1.0×:"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "bench: anchor: round 1: seed") {
		t.Errorf("stderr shows no anchor round:\n%s", stderr.String())
	}
}
