package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repl runs a REPL session on input and returns what it printed.
func repl(t *testing.T, img, input string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := runIO(context.Background(), []string{"-image", img, "repl"}, strings.NewReader(input), &out, &errOut); code != 0 {
		t.Fatalf("repl exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	return out.String()
}

// TestNewUserSession is the session a new user would have: a fresh
// directory, a method defined and called, a restart, the method still
// there, and a message nothing understands answered clearly.
func TestNewUserSession(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	out := repl(t, img, `genesis.greet = method("def greet(self, name): return 'hello ' + name")
genesis.greet("ada")
`)
	if !strings.Contains(out, `"hello ada"`) {
		t.Fatalf("first session:\n%s", out)
	}
	out = repl(t, img, "genesis.greet(\"again\")\n")
	if !strings.Contains(out, `"hello again"`) {
		t.Errorf("after a restart the method is gone:\n%s", out)
	}
	before := mustRun(t, "-image", img, "log", "-n", "1")
	code, stdout, stderr := batos(t, "-image", img, "send", "genesis", "display_yourself")
	if code != 1 || !strings.Contains(stderr, "does not understand \"display_yourself\"") || !strings.Contains(stderr, "no mind: no inference server has answered yet") {
		t.Errorf("send display_yourself: exit %d\n%s%s", code, stdout, stderr)
	}
	if after := mustRun(t, "-image", img, "log", "-n", "1"); after != before {
		t.Errorf("the not-understood send changed the image:\n%s\n%s", before, after)
	}
}

func TestReplErrorsNeverEndTheSession(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	out := repl(t, img, strings.Join([]string{
		"1 +",                    // syntax error
		"undefined_name",         // runtime error
		"genesis.nothing_here()", // not understood
		"x = 40",
		"def twice(n):",
		"    return 2 * n",
		"",
		"for i in range(2):",
		"    x += 1",
		"",
		"x + 0",
		"genesis.log = []",
		"genesis.log.append('kept')",
		"genesis.log",
		"print('printed', 7)",
		":help",
		"",
	}, "\n"))
	for _, want := range []string{"error:", "undefined", "does not understand", "42", `["kept"]`, "printed 7", "one transaction"} {
		if !strings.Contains(out, want) {
			t.Errorf("session output lacks %q:\n%s", want, out)
		}
	}
}

func TestEvalSendInspectMethodSet(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "live_image.db")
	if out := mustRun(t, "-image", img, "eval", "genesis.n = 1"); out != "" {
		t.Errorf("eval of a statement printed %q", out)
	}
	if out := mustRun(t, "-image", img, "eval", "genesis.n + 1"); out != "2\n" {
		t.Errorf("eval: %q", out)
	}
	src := filepath.Join(dir, "add.star")
	writeFile(t, src, "def add(self, a, b = 1):\n    \"\"\"Adds.\"\"\"\n    return a + b + self.n\n")
	if out := mustRun(t, "-image", img, "method", "set", "genesis", "add", "-file", src); !strings.Contains(out, "installed genesis.add") {
		t.Errorf("method set: %q", out)
	}
	if out := mustRun(t, "-image", img, "send", "genesis", "add", "[2, 3]"); out != "6\n" {
		t.Errorf("send with a JSON array: %q", out)
	}
	if out := mustRun(t, "-image", img, "send", "-kw", `{"b": 10}`, "genesis", "add", "2"); out != "13\n" {
		t.Errorf("send with kwargs: %q", out)
	}
	out := mustRun(t, "-image", img, "inspect", "genesis")
	for _, want := range []string{"(genesis)", "parents: parent* ->", "own slots:", "n = 1", "add: method", "| def add(self, a, b = 1):", "inherited slots:", "describe: method", "(from oid:"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
	bad := filepath.Join(dir, "bad.star")
	writeFile(t, bad, "def other(self):\n    return 1\n")
	if code, _, stderr := batos(t, "-image", img, "method", "set", "genesis", "add", "-file", bad); code != 1 || !strings.Contains(stderr, "must be named like its slot") {
		t.Errorf("method set of a misnamed function: exit %d %q", code, stderr)
	}
	if code, _, stderr := batos(t, "-image", img, "send", "genesis", "add", "not json"); code != 2 || !strings.Contains(stderr, "not JSON") {
		t.Errorf("send with bad JSON: exit %d %q", code, stderr)
	}
	if code, _, stderr := batos(t, "-image", img, "inspect", "nosuch"); code != 1 || !strings.Contains(stderr, "no root name") {
		t.Errorf("inspect unknown target: exit %d %q", code, stderr)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHostileReplSilentlyKeepsStaleVariable: when an input rebinds a
// variable carried from an earlier input, later inputs never see the old
// value: a def carries as the function, and a value that cannot be
// stored (a list that contains itself) is dropped with a note.
func TestHostileReplSilentlyKeepsStaleVariable(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	out := repl(t, img, strings.Join([]string{
		"x = 1",
		"def x():",
		"    return 2",
		"",
		"x() * 10",
		"l = [1]",
		"l.append(l)",
		"l",
		"",
	}, "\n"))
	if !strings.Contains(out, "\n20\n") || strings.Contains(out, "note: x") {
		t.Errorf("the def of x did not carry to the next input:\n%s", out)
	}
	if !strings.Contains(out, "note: l lasts only for this input") || !strings.Contains(out, "undefined: l") {
		t.Errorf("no note that the new value of l was dropped:\n%s", out)
	}
}

// TestHostileReplObjectVariables: an object bound to a variable in one
// input is the same object in later ones (each its own transaction), and
// changes made through it persist; a failed input leaves variables as
// they were.
func TestHostileReplObjectVariables(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	out := repl(t, img, strings.Join([]string{
		`o = genesis.clone(name = "o")`,
		"root.o = o",
		"o.count = 1",
		"o.count += 1",
		`o == root.o and o.count == 2`,
		`o = 5` + "\n" + `fail("undo the rebinding")`,
		"o.count",
		"",
	}, "\n"))
	for _, want := range []string{"True", "undo the rebinding", "\n2\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("session output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "note:") {
		t.Errorf("an object variable was dropped:\n%s", out)
	}
}

// TestReplSameThroughServer: the same inputs give the same session with
// and without a running server: variables and def functions carry, what
// cannot be kept is noted, a failed input changes nothing, an unknown
// :command is said so.
func TestReplSameThroughServer(t *testing.T) {
	script := strings.Join([]string{
		"x = 40",
		"def twice(n):",
		"    return 2 * n",
		"",
		"twice(x) + 2",
		"sq = lambda n: n * n",
		"s = set([1])",
		`x = 1; fail("not saved")`,
		"[x, sq(3), twice(1)]",
		"s",
		"twice = 5",
		"twice",
		":foo",
		"",
	}, "\n")
	session := func(t *testing.T, img string) string {
		out := repl(t, img, script)
		_, after, _ := strings.Cut(out, ":help for help, :quit to leave\n")
		return after
	}
	local := session(t, filepath.Join(t.TempDir(), "live_image.db"))
	img := filepath.Join(t.TempDir(), "live_image.db")
	_, _, stop := startRun(t, img)
	defer stop()
	served := session(t, img)
	if served != local {
		t.Errorf("through the server:\n%s\nwithout:\n%s", served, local)
	}
	for _, want := range []string{"82\n", "note: s lasts only for this input", "not saved", "[40, 9, 2]", "undefined: s", "\n5\n", "unknown command :foo"} {
		if !strings.Contains(local, want) {
			t.Errorf("the session lacks %q:\n%s", want, local)
		}
	}
}
