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
	"cmp"
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

	"batos/internal/zmqbridge"
)

// defaultImage is the image used when neither -image (or -store) nor
// BATOS_STORE names one.
const defaultImage = "live_image.db"

// imageFlagHelp describes -image and -store, which name the same thing.
const imageFlagHelp = "the image: a file's path, or a PostgreSQL database's URL (postgres://USER@HOST/DB); also BATOS_STORE"

// imageDefault is the image named by BATOS_STORE, else defaultImage.
func imageDefault() string { return cmp.Or(os.Getenv("BATOS_STORE"), defaultImage) }

// env is what every subcommand gets: the global flags and the streams.
type env struct {
	image string
	// curveKey and curveServerKey are the files of this client's CURVE
	// secret key and of the server's public key, for a server serving
	// with CURVE.
	curveKey, curveServerKey string
	// server names the server the commands reached, once one was
	// (reachServer), for the error of a request it did not answer.
	server string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// interrupts routes SIGINT, when the process watches for it (nil
	// when a test calls run).
	interrupts *interrupts
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
	os.Exit(runProcess(os.Args[1:]))
}

// runProcess is run as the process runs it: on its standard streams,
// stopped by SIGTERM and SIGINT (which the REPL routes to its input).
func runProcess(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	intr := watchInterrupts(cancel)
	defer intr.stop()
	return runEnv(ctx, args, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, interrupts: intr})
}

// run is main without the process: tests call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runIO(ctx, args, os.Stdin, stdout, stderr)
}

// runIO is run with a given standard input (the REPL reads it).
func runIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, &env{stdin: stdin, stdout: stdout, stderr: stderr})
}

// runEnv is runIO with the streams (and signal routing) in e; the global
// flags fill the rest of it.
func runEnv(ctx context.Context, args []string, e *env) int {
	stdout, stderr := e.stdout, e.stderr
	fs := flag.NewFlagSet("batos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&e.image, "image", imageDefault(), imageFlagHelp)
	fs.StringVar(&e.image, "store", imageDefault(), imageFlagHelp)
	fs.StringVar(&e.curveKey, "curve-key", "", "this client's CURVE secret key file, for a server serving with CURVE (or BATOS_CURVE_KEY)")
	fs.StringVar(&e.curveServerKey, "curve-server-key", "", "the server's CURVE public key file (or BATOS_CURVE_SERVER_KEY); default: the key batos run recorded beside the image")
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
		if len(rest) == 0 {
			usage(stdout)
			return 0
		}
		// batos help CMD [SUB] is batos CMD [SUB] -h.
		name, rest = rest[0], append(rest[1:len(rest):len(rest)], "-h")
	}
	cmd, ok := commands[name]
	if !ok {
		if near := nearest(name); near != "" {
			fmt.Fprintf(stderr, "batos: unknown command %q; did you mean %s? (batos help lists the commands)\n", name, near)
			return 2
		}
		fmt.Fprintf(stderr, "batos: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	if err := cmd.run(ctx, e, rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if errors.Is(err, zmqbridge.ErrTimeout) && e.server != "" {
			err = fmt.Errorf("%w (waited for %s)", err, e.server)
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
	fmt.Fprintf(w, "usage: batos [-image PATH | -store URL] [-curve-key FILE] [-curve-server-key FILE] COMMAND [ARGS]\n\nThe image defaults to ./%s (or BATOS_STORE); -store postgres://USER@HOST/DB keeps it in PostgreSQL. The CURVE keys reach a batos run serving with CURVE.\n\nCommands:\n", defaultImage)
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
	// -image (or -store) works after the command too: batos stats -image x.db
	fs.StringVar(&e.image, "image", e.image, imageFlagHelp)
	fs.StringVar(&e.image, "store", e.image, imageFlagHelp)
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
// the flag package has already reported. Flags may follow the arguments
// (batos history genesis -n 5): an argument after the first that names
// one of the command's flags is parsed as that flag; any other argument
// stays an argument, so a negative number or code starting with - is
// passed as given, and everything after -- is an argument.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return errFlagsReported
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		i := 0
		for i < len(rest) && rest[i] != "--" && !isFlag(fs, rest[i]) {
			i++
		}
		positional = append(positional, rest[:i]...)
		if i == len(rest) {
			break
		}
		if rest[i] == "--" {
			positional = append(positional, rest[i+1:]...)
			break
		}
		args = rest[i:]
	}
	// Leaves the arguments where fs.Args finds them.
	return fs.Parse(append([]string{"--"}, positional...))
}

// isFlag reports whether arg is one of fs's flags (-name, --name,
// -name=value) or a request for help.
func isFlag(fs *flag.FlagSet, arg string) bool {
	name, ok := strings.CutPrefix(arg, "-")
	if !ok {
		return false
	}
	name = strings.TrimPrefix(name, "-")
	name, _, _ = strings.Cut(name, "=")
	if name == "h" || name == "help" {
		return true
	}
	return name != "" && fs.Lookup(name) != nil
}

// nearest names the command closest to a mistyped one (at most two
// edits away, or the one it begins), or "" when none is close.
func nearest(name string) string {
	name = strings.ToLower(name)
	best, bestDist := "", 3
	for c := range commands {
		if d := editDistance(name, c); d < bestDist || (d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	if best != "" || len(name) < 2 {
		return best
	}
	for c := range commands {
		if strings.HasPrefix(c, name) && (best == "" || c < best) {
			best = c
		}
	}
	return best
}

// editDistance is the Damerau–Levenshtein distance of a and b (with
// adjacent transpositions: hsitory is one edit from history).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// idArg is argument i of fs naming a thing by ID or name (a TID, an OID,
// a root name, a cycle), without the space around it that a paste brings.
func idArg(fs *flag.FlagSet, i int) string {
	return strings.TrimSpace(fs.Arg(i))
}

// usageError reports wrong arguments to a subcommand.
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}
