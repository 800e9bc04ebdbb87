package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"batos/internal/mind"
)

// TestFlagsAfterArguments: a command's flags work after its arguments;
// an argument that names no flag of the command stays an argument, and
// everything after -- is an argument.
func TestFlagsAfterArguments(t *testing.T) {
	img := newImage(t)
	mustRun(t, "-image", img, "eval", "genesis.note = 'one'")
	mustRun(t, "-image", img, "eval", "genesis.note = 'two'")
	if out := mustRun(t, "-image", img, "history", "oid:3", "-n", "1"); strings.Count(out, "\n") != 1 {
		t.Errorf("history oid:3 -n 1: got %q, want one revision", out)
	}
	if out := mustRun(t, "history", "oid:3", "-image", img, "-n=1"); strings.Count(out, "\n") != 1 {
		t.Errorf("history oid:3 -image IMG -n=1: got %q, want one revision", out)
	}
	if out := mustRun(t, "-image", img, "send", "genesis", "describe", "-json"); !strings.HasPrefix(out, "{") {
		t.Errorf("send genesis describe -json: got %q, want JSON", out)
	}
	// -5 names no flag of history: it is an argument.
	if code, _, errOut := batos(t, "-image", img, "history", "oid:3", "-5"); code != 2 || !strings.Contains(errOut, "history takes one") {
		t.Errorf("history oid:3 -5: exit %d %q, want -5 taken as a second argument", code, errOut)
	}
	if code, _, errOut := batos(t, "-image", img, "history", "oid:3", "--", "-n", "1"); code != 2 || !strings.Contains(errOut, "history takes one") {
		t.Errorf("history oid:3 -- -n 1: exit %d %q, want the arguments after -- taken as arguments", code, errOut)
	}
	if code, _, errOut := batos(t, "-image", img, "history", "oid:3", "-h"); code != 0 || !strings.Contains(errOut, "usage: batos history") {
		t.Errorf("history oid:3 -h: exit %d %q, want the help", code, errOut)
	}
}

// TestHelpCommand: batos help CMD is batos CMD -h.
func TestHelpCommand(t *testing.T) {
	for _, args := range [][]string{{"history"}, {"key", "gen"}, {"log"}} {
		code, out, errOut := batos(t, append([]string{"help"}, args...)...)
		wcode, wout, werrOut := batos(t, append(args, "-h")...)
		if code != wcode || out != wout || errOut != werrOut || code != 0 || !strings.Contains(errOut, "usage: batos "+strings.Join(args, " ")) {
			t.Errorf("help %s: exit %d %q %q; %s -h: exit %d %q %q", args, code, out, errOut, args, wcode, wout, werrOut)
		}
	}
	if code, out, _ := batos(t, "help"); code != 0 || !strings.Contains(out, "Commands:") {
		t.Errorf("help: exit %d %q, want the command list", code, out)
	}
}

// TestMistypedCommand: a mistyped command names the nearest one.
func TestMistypedCommand(t *testing.T) {
	for typed, want := range map[string]string{"hisotry": "history", "lgo": "log", "sned": "send", "hist": "history", "UNDO": "undo"} {
		code, _, errOut := batos(t, typed)
		if code != 2 || !strings.Contains(errOut, "did you mean "+want+"?") {
			t.Errorf("%s: exit %d %q, want 2 and a suggestion of %s", typed, code, errOut, want)
		}
	}
	code, _, errOut := batos(t, "help", "hisotry")
	if code != 2 || !strings.Contains(errOut, "did you mean history?") {
		t.Errorf("help hisotry: exit %d %q, want a suggestion of history", code, errOut)
	}
	code, _, errOut = batos(t, "frobnicate")
	if code != 2 || strings.Contains(errOut, "did you mean") || !strings.Contains(errOut, "Commands:") {
		t.Errorf("frobnicate: exit %d %q, want the command list and no suggestion", code, errOut)
	}
}

// TestLogShowsEvalCode: the log shows the first line of an eval's code.
func TestLogShowsEvalCode(t *testing.T) {
	img := newImage(t)
	mustRun(t, "-image", img, "eval", "genesis.n = 1\ngenesis.n")
	if out := mustRun(t, "-image", img, "log", "-n", "1"); !strings.Contains(out, "eval: genesis.n = 1 (+1 line)") {
		t.Errorf("log after an eval: %q, want its first line", out)
	}
}

// TestRunLocalhost: batos run serves tcp://localhost:PORT (ZeroMQ binds
// no host names), and the commands reach it.
func TestRunLocalhost(t *testing.T) {
	img := newImage(t)
	req, ev, stop := startRun(t, img, "-listen", "tcp://localhost:*", "-events", "tcp://localhost:*")
	defer stop()
	if !strings.HasPrefix(req, "tcp://127.0.0.1:") || !strings.HasPrefix(ev, "tcp://127.0.0.1:") {
		t.Errorf("endpoints %s and %s, want 127.0.0.1", req, ev)
	}
	if out := mustRun(t, "-image", img, "send", "genesis", "describe"); !strings.Contains(out, "genesis") {
		t.Errorf("send through the server: %q", out)
	}
}

// TestProbeSummary: run's warning when no inference server answers is
// one short line naming each endpoint and why it failed.
func TestProbeSummary(t *testing.T) {
	refused := func(u string) error {
		return fmt.Errorf("llm: server unavailable: GET %s: %w", u, &url.Error{Op: "Get", URL: u, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})
	}
	err := probeSummary{&mind.ProbeError{Tried: []mind.ProbeAttempt{
		{Endpoint: mind.Endpoint{API: "ollama", URL: "http://127.0.0.1:11434"}, Err: refused("http://127.0.0.1:11434/api/version")},
		{Endpoint: mind.Endpoint{API: "llama-server", URL: "http://127.0.0.1:8080"}, Err: refused("http://127.0.0.1:8080/health")},
	}}}
	want := "tried ollama at http://127.0.0.1:11434 (connection refused), llama-server at http://127.0.0.1:8080 (connection refused)"
	if got := err.Error(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(err, mind.ErrNoServer) {
		t.Errorf("%v does not unwrap to mind.ErrNoServer", err)
	}
}
