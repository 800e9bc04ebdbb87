// Command batos runs and inspects a living image: a persistent,
// transactional graph of prototype objects.
//
// Usage:
//
//	batos [-image PATH] COMMAND [ARGS]
//
// Run "batos help" for the list of commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
)

// defaultImage is the image used when -image is not given.
const defaultImage = "live_image.db"

// env is what every subcommand gets: the global flags and the streams.
type env struct {
	image  string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// cliCommand is one subcommand. run parses its own flags from args.
type cliCommand struct {
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

// commands is filled by each subcommand's file in init, so adding a
// subcommand touches only its own file.
var commands = map[string]cliCommand{}

// errUsage marks an error whose message is a usage text; it exits 2.
var errUsage = errors.New("usage")

// errFlagsReported is a usage error the flag package has already printed.
var errFlagsReported = fmt.Errorf("%w: bad flags", errUsage)

// gcPercent is the garbage collector's target unless GOGC says
// otherwise: batos keeps decoded objects in a cache and allocates freely
// per transaction; collecting at every doubling of the heap costs a
// third of its CPU under load, at four times far less, for a heap that
// stays small next to the image's page cache.
const gcPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runIO(ctx, args, os.Stdin, stdout, stderr)
}

// runIO is run with a given standard input (the REPL reads it).
func runIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("batos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	fs.StringVar(&e.image, "image", defaultImage, "path of the image file")
	fs.Usage = func() { usage(stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		usage(stderr)
		return 2
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		usage(stdout)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "batos: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	if err := cmd.run(ctx, e, rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if !errors.Is(err, errFlagsReported) {
			fmt.Fprintf(stderr, "batos %s: %v\n", name, explain(err))
		}
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: batos [-image PATH] COMMAND [ARGS]\n\nThe image defaults to ./%s.\n\nCommands:\n", defaultImage)
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-10s %s\n", name, commands[name].summary)
	}
	fmt.Fprintf(w, "\nRun \"batos COMMAND -h\" for a command's flags.\n")
}

// flags makes a FlagSet for a subcommand that prints its usage line and
// flags on -h.
func flags(e *env, name, args, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	// -image works after the command too: batos stats -image x.db
	fs.StringVar(&e.image, "image", e.image, "path of the image file")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: batos %s %s\n\n%s\n", name, args, strings.TrimSpace(help))
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(e.stderr, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses a subcommand's flags; a bad flag is a usage error that
// the flag package has already reported.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return errFlagsReported
}

// usageError reports wrong arguments to a subcommand.
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}
