package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"batos/internal/command"
)

func runCycleList(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "cycle list", "[-json] [-all | -n N]", `List the cognitive cycles, newest first: each one's state, the message it
learns (or the brief it was given), its attempt, the personas that answered and
when it last moved.`)
	asJSON := jsonFlag(fs)
	all := fs.Bool("all", false, "list every cycle")
	n := fs.Int("n", 20, "list at most N cycles")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("cycle list takes no arguments")
	}
	if *n < 0 {
		return usageError("-n %d: want a positive number (or -all)", *n)
	}
	limit := *n
	if *all {
		limit = 0
	}
	views, err := listCycles(ctx, e, limit)
	if views == nil && err != nil {
		return err
	}
	if *asJSON {
		if views == nil {
			views = []command.CycleView{}
		}
		if jerr := printJSON(e.stdout, views); jerr != nil {
			return jerr
		}
		return err
	}
	if len(views) == 0 {
		fmt.Fprintln(e.stdout, "no cycles yet: they start when a message nothing understands reaches an image with a mind")
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tMESSAGE\tATTEMPT\tPERSONAS\tUPDATED")
	for _, v := range views {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d/%d\t%s\t%s\n", v.ID, v.State, v.Label(), v.Attempt, v.MaxAttempts, orDash(strings.Join(v.Personas, ",")), formatTime(v.Updated))
	}
	if ferr := tw.Flush(); ferr != nil {
		return ferr
	}
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// listCycles reads the cycles from the image, or from the server holding it.
func listCycles(ctx context.Context, e *env, limit int) ([]command.CycleView, error) {
	s, err := openSession(ctx, e, readOnly)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.ListCycles(ctx, limit)
}
