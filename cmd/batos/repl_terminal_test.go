//go:build linux

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// replChildArgs, when set in the environment, makes the test binary a
// batos process with these arguments (one a line): the terminal tests
// run the REPL as its own process, with its own signals, on a
// pseudo-terminal.
const replChildArgs = "BATOS_REPL_CHILD_ARGS"

// terminalRepl is a batos repl on a pseudo-terminal, driven as a person
// at a keyboard would drive it.
type terminalRepl struct {
	t    *testing.T
	cmd  *exec.Cmd
	pty  *os.File
	out  syncBuffer
	seen int // how much of the output expect has consumed
	read chan struct{}
	exit chan error
}

// startTerminalRepl starts batos -image img repl on a new terminal.
func startTerminalRepl(t *testing.T, img string) *terminalRepl {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplTerminal$", "-test.count=1")
	cmd.Env = append(os.Environ(), replChildArgs+"="+strings.Join([]string{"-image", img, "repl"}, "\n"), "HOME="+t.TempDir())
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	r := &terminalRepl{t: t, cmd: cmd, pty: f, read: make(chan struct{}), exit: make(chan error, 1)}
	go func() {
		defer close(r.read)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			r.out.Write(buf[:n])
			if err != nil {
				return // EIO once the REPL has exited
			}
		}
	}()
	go func() { r.exit <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		f.Close()
		<-r.read
	})
	return r
}

// output is what the terminal showed, lines ended by \n alone (raw mode
// ends them with \r\n).
func (r *terminalRepl) output() string {
	return strings.ReplaceAll(r.out.String(), "\r", "")
}

// expect waits for want in the output after what was expected before.
func (r *terminalRepl) expect(want string) {
	r.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out := r.output()
		if i := strings.Index(out[r.seen:], want); i >= 0 {
			r.seen += i + len(want)
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the terminal never showed %q after:\n%s", want, out[r.seen:])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// typeKeys types keys, with no Enter.
func (r *terminalRepl) typeKeys(keys string) {
	r.t.Helper()
	if _, err := r.pty.WriteString(keys); err != nil {
		r.t.Fatal(err)
	}
}

// enter types line and Enter, once the prompt asks for it.
func (r *terminalRepl) enter(prompt, line string) {
	r.t.Helper()
	r.expect(prompt)
	r.typeKeys(line + "\r")
}

// waitRunning waits until the terminal is back in its usual mode: the
// REPL then runs the input it read, and Ctrl-C is SIGINT.
func (r *terminalRepl) waitRunning() {
	r.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		// On Linux the master's termios are the terminal's.
		tio, err := unix.IoctlGetTermios(int(r.pty.Fd()), unix.TCGETS)
		if err != nil {
			r.t.Fatal(err)
		}
		if tio.Lflag&unix.ICANON != 0 && tio.Lflag&unix.ISIG != 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the terminal stayed in raw mode after:\n%s", r.output()[r.seen:])
		}
		time.Sleep(time.Millisecond)
	}
}

// wait waits for the REPL to exit and answers its exit code.
func (r *terminalRepl) wait() int {
	r.t.Helper()
	select {
	case err := <-r.exit:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			r.t.Fatal(err)
		}
		return 0
	case <-time.After(15 * time.Second):
		r.t.Fatalf("the REPL did not exit:\n%s", r.output())
		return -1
	}
}

// TestReplTerminal: on a real terminal, without a server and through a
// running one alike, variables and def functions carry between inputs;
// Ctrl-C stops a running input promptly (nothing of it saved, the loop
// not left running in the server either) and the session goes on;
// Ctrl-C at a prompt drops what was typed, a half-typed compound input
// included; an unknown :command is said so; Ctrl-D at an empty prompt
// leaves with exit 0.
func TestReplTerminal(t *testing.T) {
	if args := os.Getenv(replChildArgs); args != "" {
		os.Exit(runProcess(strings.Split(args, "\n")))
	}
	for _, mode := range []string{"local", "server"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			img := filepath.Join(t.TempDir(), "live_image.db")
			if mode == "server" {
				_, _, stop := startRun(t, img)
				defer stop()
			}
			r := startTerminalRepl(t, img)
			if mode == "server" {
				r.expect("through its running server")
			}

			r.enter(">>> ", "x = 40")
			r.enter(">>> ", "def twice(n):")
			r.enter("... ", "    return 2 * n")
			r.enter("... ", "")
			r.enter(">>> ", "twice(x) + 2")
			r.expect("\n82\n")

			r.expect(">>> ")
			r.typeKeys("genesis.half = 1")
			r.expect("genesis.half = 1")
			r.typeKeys("\x03")
			r.expect("^C\n")
			r.enter(">>> ", "if True:")
			r.enter("... ", "    genesis.half = 2")
			r.expect("... ")
			r.typeKeys("\x03")
			r.expect("^C\n")
			r.enter(">>> ", `hasattr(genesis, "half")`)
			r.expect("\nFalse\n")

			// A loop that would write a slot after 3 s, well within the
			// 5 s an execution may take.
			r.enter(">>> ", "if True:")
			r.enter("... ", "    l = list(range(10000))")
			r.enter("... ", "    start = time.now()")
			r.enter("... ", "    while time.now() - start < 3:")
			r.enter("... ", "        if -1 in l:")
			r.enter("... ", "            break")
			r.enter("... ", "    genesis.looped = True")
			r.enter("... ", "")
			r.waitRunning()
			interrupted := time.Now()
			r.typeKeys("\x03")
			r.expect("interrupted: nothing of this input was saved\n")
			if took := time.Since(interrupted); took > 2*time.Second {
				t.Errorf("the interrupted input answered after %s", took)
			}
			// Inputs of a session run one at a time: had the loop gone on
			// in the server, this would wait for it and see the slot.
			r.enter(">>> ", `[hasattr(genesis, "looped"), twice(x)]`)
			r.expect("\n[False, 80]\n")

			r.enter(">>> ", ":foo")
			r.expect("unknown command :foo (:help lists them)\n")
			r.expect(">>> ")
			r.typeKeys("\x04")
			if code := r.wait(); code != 0 {
				t.Errorf("Ctrl-D: exit %d, want 0:\n%s", code, r.output())
			}
		})
	}
}
