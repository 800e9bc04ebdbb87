package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"batos/internal/command"
)

func init() {
	g := &group{name: "method", about: "Install, revert and measure the methods of the image's objects.", subs: []subcommand{
		{"set", "TARGET NAME -file F.star", "install the method in F.star as slot NAME of TARGET", runMethodSet, false},
		{"revert", "TARGET NAME", "restore what the slot held before a cycle installed the method", runMethodRevert, false},
		{"stats", "[-json] [-all] [TARGET]", "show the method telemetry: calls, failures, latency", runMethodStats, false},
	}}
	commands["method"] = cliCommand{"methods: method set TARGET NAME -file F.star | revert TARGET NAME | stats [TARGET]", g.run}
}

func runMethodRevert(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "method revert", "TARGET NAME", `Restore what slot NAME of TARGET held before a cognitive cycle installed the
method there: the previous method, the previous value, or nothing (the slot is
removed). One transaction; batos undo can take it back.`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageError("method revert needs TARGET and NAME")
	}
	target, name := idArg(fs, 0), idArg(fs, 1)
	sess, err := openSession(ctx, e, readWrite)
	if err != nil {
		return err
	}
	defer sess.Close()
	c, err := sess.RevertMethod(ctx, target, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "reverted %s.%s to %s in transaction %s\n", target, name, c.Restored, c.TID)
	return nil
}

func runMethodSet(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "method set", "TARGET NAME -file F.star", `Install the method in F.star as slot NAME of TARGET (a root name or an OID). The
file must define exactly one function named NAME whose first parameter is self;
it is checked before anything is stored.`)
	file := fs.String("file", "", "the method's source file (required)")
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 2 || *file == "" {
		return usageError("method set needs TARGET, NAME and -file F.star")
	}
	target, name := idArg(fs, 0), idArg(fs, 1)
	src, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	sess, err := openSession(ctx, e, readWrite)
	if err != nil {
		return err
	}
	defer sess.Close()
	c, err := sess.SetMethod(ctx, command.MethodRequest{Target: target, Name: name, Source: string(src), From: *file})
	if err != nil {
		return err
	}
	if c.TID == 0 {
		fmt.Fprintf(e.stdout, "%s.%s already has this source; nothing changed\n", target, name)
		return nil
	}
	fmt.Fprintf(e.stdout, "installed %s.%s from %s in transaction %s\n", target, name, *file, c.TID)
	return nil
}

// reorderFlags moves flags after positional arguments to the front, so
// "method set genesis greet -file g.star" parses as users type it. A
// flag takes the next argument as its value unless it is a boolean flag
// of fs or is written -name=value.
func reorderFlags(fs *flag.FlagSet, args []string) []string {
	var flagArgs, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			flagArgs = append(flagArgs, a)
			if i+1 < len(args) && !containsEq(a) && !isBoolFlag(fs, a) {
				flagArgs = append(flagArgs, args[i+1])
				i++
			}
			continue
		}
		rest = append(rest, a)
	}
	return append(flagArgs, rest...)
}

func isBoolFlag(fs *flag.FlagSet, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if name == "h" || name == "help" {
		return true
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func containsEq(s string) bool {
	for _, c := range s {
		if c == '=' {
			return true
		}
	}
	return false
}
