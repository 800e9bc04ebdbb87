package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/term"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/uvm"
	"batos/internal/vm"
)

func init() {
	commands["repl"] = cliCommand{"talk to the image interactively, one transaction per input", runRepl}
}

const replHelp = `Each input is one transaction: everything it changes is saved, or, if it
fails, nothing. The root's objects are bound by name (genesis, traits,
personas, ...); the variables and functions you define carry over to
later inputs (a function by its definition, run again before each input,
so its default values are evaluated again).

  genesis.greet = method("def greet(self, name): return 'hello ' + name")
  genesis.greet("ada")
  x = genesis.clone(name = "x")

Compound statements (def, if, for, while) end with an empty line.
Ctrl-C stops the input running (nothing of it is saved) or clears the
line being typed. :help shows this, :quit (or Ctrl-D) leaves.`

func runRepl(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "repl", "", "Start an interactive session on the image, creating it on first use.\n\n"+replHelp)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("repl takes no arguments")
	}
	s, err := openSession(ctx, e, create)
	if err != nil {
		return err
	}
	defer s.Close()
	learnLocally(ctx, e, s)
	in, restore, err := newLineReader(e)
	if err != nil {
		return err
	}
	defer restore()
	names := "through its running server"
	if s.local != nil {
		names = rootNameList(ctx, s.local)
	}
	fmt.Fprintf(in.out(), "batos repl on %s: %s\n:help for help, :quit to leave\n", uvm.DisplayName(e.image), names)
	// The session lives in the service, local or the server's, so that
	// the two carry the same.
	r := &console{svc: s, in: in, session: "repl-" + rand.Text()}
	if in.term != nil {
		defer e.interrupts.takeOver(r.interrupt)()
	}
	for {
		code, err := readInput(in)
		switch {
		case errors.Is(err, errLineInterrupted):
			continue
		case errors.Is(err, io.EOF):
			// Straight to the terminal: x/term would draw the prompt
			// again after what it is given to write.
			if in.term != nil {
				io.WriteString(in.stdout, "\r\n")
			} else {
				fmt.Fprintln(in.stdout)
			}
			return nil
		case err != nil:
			// A syntax error ends this input, never the session.
			fmt.Fprintf(in.out(), "%v\n", err)
			continue
		}
		switch code = strings.TrimSpace(code); {
		case code == "":
			continue
		case code == ":quit" || code == ":q" || code == "exit" || code == "quit":
			return nil
		case code == ":help":
			fmt.Fprintln(in.out(), replHelp)
			continue
		case strings.HasPrefix(code, ":"):
			fmt.Fprintf(in.out(), "unknown command %s (:help lists them)\n", code)
			continue
		}
		in.remember(code)
		r.eval(ctx, code)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// console runs a REPL session's inputs, one at a time.
type console struct {
	svc     command.Service
	in      *lineReader
	session string

	mu      sync.Mutex
	stop    context.CancelFunc // guarded by mu: the input running, if any
	stopped bool               // guarded by mu: Ctrl-C stopped it
}

// interrupt stops the input running, if any: Ctrl-C while it runs.
func (r *console) interrupt() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop != nil {
		r.stopped = true
		r.stop()
	}
}

// eval runs one input and prints what it answered.
func (r *console) eval(ctx context.Context, code string) {
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	r.stop, r.stopped = cancel, false
	r.mu.Unlock()
	// Only now that SIGINT stops this input may Ctrl-C be SIGINT.
	r.in.restoreMode()
	res, err := r.svc.Eval(ictx, command.EvalRequest{Code: code, Session: r.session})
	r.mu.Lock()
	r.stop = nil
	interrupted := r.stopped
	r.mu.Unlock()

	out := r.in.out()
	if res.Output != "" {
		io.WriteString(out, res.Output)
	}
	switch {
	case err != nil && interrupted && command.KindOf(err) == command.KindCancelled:
		// A cancelled input saved nothing (a server says so too); one that
		// committed before the interrupt reached it answers as usual.
		fmt.Fprintln(out, "interrupted: nothing of this input was saved")
		return
	case err != nil:
		fmt.Fprintf(out, "error: %v\n", explain(err))
		return
	}
	if len(res.Dropped) > 0 {
		fmt.Fprintf(out, "note: %s lasts only for this input: its value cannot be kept from one transaction to the next (keep behaviour in a method: obj.name = method(\"def name(self): ...\"))\n", strings.Join(res.Dropped, ", "))
	}
	if res.Repr != "None" && res.Repr != "" {
		fmt.Fprintln(out, res.Repr)
	}
}

func rootNameList(ctx context.Context, u *uvm.UVM) string {
	var names []string
	u.DB().View(ctx, func(tx *image.Tx) error {
		m, err := tx.RootNames()
		for n := range m {
			names = append(names, n)
		}
		return err
	})
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// lineReader reads input lines: with line editing and history on a
// terminal, plainly from a pipe or file.
type lineReader struct {
	stdout  io.Writer
	term    *term.Terminal // nil when not reading a terminal
	tty     *os.File
	keys    *keyWatcher
	cooked  *term.State // the terminal's usual mode, while in raw mode
	scanner *bufio.Scanner
	history *os.File
}

// errLineInterrupted is Ctrl-C at a prompt: the line, or the input
// being typed, is dropped.
var errLineInterrupted = errors.New("line interrupted")

func newLineReader(e *env) (*lineReader, func(), error) {
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		sc := bufio.NewScanner(e.stdin)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		return &lineReader{stdout: e.stdout, scanner: sc}, func() {}, nil
	}
	r := &lineReader{stdout: e.stdout, tty: f, keys: &keyWatcher{r: f}}
	r.newTerminal(nil)
	r.loadHistory()
	return r, func() {
		r.restoreMode()
		if r.history != nil {
			r.history.Close()
		}
	}, nil
}

// newTerminal starts line editing afresh, keeping history.
func (r *lineReader) newTerminal(history term.History) {
	r.term = term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{r.keys, r.stdout}, ">>> ")
	if history != nil {
		r.term.History = history
	}
}

// rawMode puts the terminal in raw mode for line editing, if it is not.
func (r *lineReader) rawMode() error {
	if r.term == nil || r.cooked != nil {
		return nil
	}
	state, err := term.MakeRaw(int(r.tty.Fd()))
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	r.cooked = state
	return nil
}

// restoreMode puts the terminal back in its usual mode, in which Ctrl-C
// is SIGINT: an input runs in it, so that Ctrl-C stops the input.
func (r *lineReader) restoreMode() {
	if r.cooked != nil {
		term.Restore(int(r.tty.Fd()), r.cooked)
		r.cooked = nil
	}
}

// out is where the session writes: through the line editor on a
// terminal, which keeps track of the cursor and ends lines as raw mode
// needs.
func (r *lineReader) out() io.Writer {
	if r.term != nil {
		return r.term
	}
	return r.stdout
}

// readLine reads a line; on a terminal it leaves raw mode on, for the
// next line of the input, until restoreMode.
func (r *lineReader) readLine(prompt string) (string, error) {
	if r.term == nil {
		if !r.scanner.Scan() {
			if err := r.scanner.Err(); err != nil {
				return "", err
			}
			return "", io.EOF
		}
		return r.scanner.Text(), nil
	}
	if err := r.rawMode(); err != nil {
		return "", err
	}
	r.term.SetPrompt(prompt)
	r.keys.reset()
	line, err := r.term.ReadLine()
	if errors.Is(err, io.EOF) && r.keys.sawCtrlC() {
		// x/term answers io.EOF for Ctrl-C as for Ctrl-D, and keeps both
		// the line typed and the Ctrl-C to read again: a new editor
		// forgets them.
		io.WriteString(r.stdout, "^C\r\n")
		r.newTerminal(r.term.History)
		return "", errLineInterrupted
	}
	return line, err
}

// keyWatcher passes a terminal's keys on, noticing Ctrl-C, which x/term
// reports as io.EOF, as it does Ctrl-D. Only the goroutine reading lines
// uses it.
type keyWatcher struct {
	r     io.Reader
	ctrlC bool // the last read held a Ctrl-C
}

func (k *keyWatcher) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	k.ctrlC = bytes.IndexByte(p[:n], keyCtrlC) >= 0
	return n, err
}

func (k *keyWatcher) reset() { k.ctrlC = false }

func (k *keyWatcher) sawCtrlC() bool { return k.ctrlC }

// keyCtrlC is the byte a terminal in raw mode reads for Ctrl-C.
const keyCtrlC = 3

// historyPath is where inputs are kept between sessions.
func historyPath() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".batos_history")
}

// loadHistory fills the terminal's history from earlier sessions and
// opens the file to append this one's. History is a convenience: if the
// file cannot be used, the session goes on without it.
func (r *lineReader) loadHistory() {
	path := historyPath()
	if path == "" {
		return
	}
	if data, err := os.ReadFile(path); err == nil {
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		for _, l := range lines[max(0, len(lines)-500):] {
			if l != "" {
				r.term.History.Add(strings.ReplaceAll(l, `\n`, "\n"))
			}
		}
	}
	r.history, _ = os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
}

// remember appends an input to the history file, one line per input.
func (r *lineReader) remember(code string) {
	if r.history != nil {
		fmt.Fprintln(r.history, strings.ReplaceAll(strings.TrimRight(code, "\n"), "\n", `\n`))
	}
}

// readInput reads one complete input: a simple statement or expression
// on one line, or a compound statement ending with an empty line.
func readInput(r *lineReader) (string, error) {
	first, err := r.readLine(">>> ")
	if err != nil {
		return "", err
	}
	if t := strings.TrimSpace(first); strings.HasPrefix(t, ":") || t == "exit" || t == "quit" {
		return t, nil // a REPL command, not Starlark
	}
	var lines []string
	var ended error
	prompt := ""
	pending := &first
	readline := func() ([]byte, error) {
		if pending != nil {
			line := *pending
			pending = nil
			prompt = "... "
			lines = append(lines, line)
			return []byte(line + "\n"), nil
		}
		line, err := r.readLine(prompt)
		if err != nil {
			ended = err
			return nil, err
		}
		prompt = "... "
		lines = append(lines, line)
		return []byte(line + "\n"), nil
	}
	err = vm.ParseREPL(readline)
	code := strings.Join(lines, "\n")
	if errors.Is(ended, errLineInterrupted) {
		return "", ended // Ctrl-C drops the whole input being typed
	}
	if ended != nil && strings.TrimSpace(code) == "" {
		return "", ended // end of input (io.EOF), or a read error
	}
	if err != nil {
		return "", err
	}
	return code, nil
}
