package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// group is a command made of subcommands (batos cycle list, batos cycle
// show ID). It sends each to its subcommand and answers -h, -help,
// --help and help with its usage: the subcommands, one line each.
type group struct {
	name string
	// about says in a sentence what the group is for, above the list.
	about string
	subs  []subcommand
	// bare runs when no subcommand is named (batos audit runs an audit,
	// batos audit -json too); nil makes that a usage error.
	bare func(ctx context.Context, e *env, args []string) error
}

// subcommand is one subcommand of a group. args is its synopsis after
// its name; hidden keeps it out of the usage (a child process's entry).
type subcommand struct {
	name, args, summary string
	run                 func(ctx context.Context, e *env, args []string) error
	hidden              bool
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// run dispatches args (the subcommand's name first) to the subcommand.
func (g *group) run(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && isHelp(args[0]) {
		if args[0] == "help" && len(args) > 1 {
			// batos GROUP help SUB is batos GROUP SUB -h.
			return g.run(ctx, e, []string{args[1], "-h"})
		}
		g.usage(e.stdout)
		return nil
	}
	if len(args) > 0 {
		for _, s := range g.subs {
			if s.name == args[0] {
				return s.run(ctx, e, args[1:])
			}
		}
	}
	if g.bare != nil && (len(args) == 0 || strings.HasPrefix(args[0], "-")) {
		return g.bare(ctx, e, args)
	}
	if len(args) == 0 {
		g.usage(e.stderr)
		return errFlagsReported
	}
	return usageError("unknown %s command %q: want %s (batos %s -h lists them)", g.name, args[0], g.names(), g.name)
}

// names lists the visible subcommands' names as a sentence says them:
// list, show or cancel.
func (g *group) names() string {
	var names []string
	for _, s := range g.subs {
		if !s.hidden {
			names = append(names, s.name)
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// usage prints the group's synopsis and its subcommands, one line each.
func (g *group) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: batos %s COMMAND [ARGS]\n\n%s\n\nCommands:\n", g.name, g.about)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range g.subs {
		if !s.hidden {
			fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(s.name+" "+s.args), s.summary)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun \"batos %s COMMAND -h\" (or batos help %s COMMAND) for a command's flags.\n", g.name, g.name)
}
