package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

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
personas, ...); names you define carry over to later inputs.

  genesis.greet = method("def greet(self, name): return 'hello ' + name")
  genesis.greet("ada")
  x = genesis.clone(name = "x")

Compound statements (def, if, for, while) end with an empty line.
:help shows this, :quit (or Ctrl-D) leaves.`

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
	names := "through its running server (variables do not carry between inputs)"
	if s.local != nil {
		names = rootNameList(ctx, s.local)
	}
	fmt.Fprintf(in.out, "batos repl on %s: %s\n:help for help, :quit to leave\n", e.image, names)
	vars := map[string]image.Value{}
	for {
		code, err := readInput(in)
		if errors.Is(err, io.EOF) {
			fmt.Fprintln(in.out)
			return nil
		}
		if err != nil {
			// A syntax error ends this input, never the session.
			fmt.Fprintf(in.out, "%v\n", err)
			continue
		}
		switch strings.TrimSpace(code) {
		case "":
			continue
		case ":quit", ":q", "exit", "quit":
			return nil
		case ":help":
			fmt.Fprintln(in.out, replHelp)
			continue
		}
		in.remember(code)
		res, err := s.Eval(ctx, command.EvalRequest{Code: code, Vars: vars})
		if res.Output != "" {
			io.WriteString(in.out, res.Output)
		}
		if err != nil {
			fmt.Fprintf(in.out, "error: %v\n", explain(err))
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		for name, v := range res.Globals {
			vars[name] = v
		}
		for _, name := range res.Dropped {
			delete(vars, name)
		}
		if len(res.Dropped) > 0 {
			sort.Strings(res.Dropped)
			fmt.Fprintf(in.out, "note: %s lasts only for this input (each input is its own transaction); keep behaviour in a method: obj.name = method(\"def name(self): ...\")\n", strings.Join(res.Dropped, ", "))
		}
		if res.Repr != "None" && res.Repr != "" {
			fmt.Fprintln(in.out, res.Repr)
		}
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
	out     io.Writer
	term    *term.Terminal
	scanner *bufio.Scanner
	history *os.File
}

func newLineReader(e *env) (*lineReader, func(), error) {
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		sc := bufio.NewScanner(e.stdin)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		return &lineReader{out: e.stdout, scanner: sc}, func() {}, nil
	}
	state, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		return nil, nil, fmt.Errorf("terminal: %w", err)
	}
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{f, e.stdout}, ">>> ")
	r := &lineReader{out: t, term: t}
	r.loadHistory()
	return r, func() {
		if r.history != nil {
			r.history.Close()
		}
		term.Restore(int(f.Fd()), state)
	}, nil
}

func (r *lineReader) readLine(prompt string) (string, error) {
	if r.term != nil {
		r.term.SetPrompt(prompt)
		return r.term.ReadLine()
	}
	if !r.scanner.Scan() {
		if err := r.scanner.Err(); err != nil {
			return "", err
		}
		return "", io.EOF
	}
	return r.scanner.Text(), nil
}

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
	if ended != nil && strings.TrimSpace(code) == "" {
		return "", ended // end of input (io.EOF), or a read error
	}
	if err != nil {
		return "", err
	}
	return code, nil
}
