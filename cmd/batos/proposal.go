package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"batos/internal/command"
	"batos/internal/heartbeat"
)

func init() {
	g := &group{name: "proposal", about: "The self-audits' proposals, and the decisions on them.", subs: []subcommand{
		{"list", "[-json] [-all]", "list the audits' proposals awaiting a decision or in flight", runProposalList, false},
		{"show", "[-json] ID", "show a proposal: method, goal, what became of it", runProposalShow, false},
		{"accept", "ID", "accept a proposal awaiting approval", func(ctx context.Context, e *env, args []string) error {
			return runProposalDecide(ctx, e, "accept", args)
		}, false},
		{"reject", "ID [-reason TEXT]", "reject a proposal awaiting approval", func(ctx context.Context, e *env, args []string) error {
			return runProposalDecide(ctx, e, "reject", args)
		}, false},
	}}
	commands["proposal"] = cliCommand{"audit proposals: proposal list [-all] | show ID | accept ID | reject ID [-reason TEXT]", g.run}
}

func runProposalList(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "proposal list", "[-json] [-all]", `List the proposals of the self-audits awaiting a decision or still in an
improvement cycle (every proposal with -all), newest first. An ID is AUDIT.N.`)
	asJSON := jsonFlag(fs)
	all := fs.Bool("all", false, "list every proposal, decided or not")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("proposal list takes no arguments")
	}
	s, err := openSession(ctx, e, readOnly)
	if err != nil {
		return err
	}
	defer s.Close()
	ps, err := s.ProposalList(ctx, *all)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, ps)
	}
	if len(ps) == 0 {
		fmt.Fprintln(e.stdout, "no proposals await a decision (batos proposal list -all lists every one)")
		return nil
	}
	tw := tabwriter.NewWriter(safeOut(e.stdout), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tMETHOD\tSTATUS\tCYCLE\tGOAL")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, oneLine(p.Kind, 12), oneLine(p.Method, 80), p.Status, cycleText(p.Cycle), oneLine(p.Goal, 60))
	}
	return tw.Flush()
}

func cycleText(id int64) string {
	if id == 0 {
		return "-"
	}
	return fmt.Sprint(id)
}

// oneLine is s on one line, clipped to n runes.
func oneLine(s string, n int) string {
	r := []rune(s)
	for i, c := range r {
		if c == '\n' || c == '\t' {
			r[i] = ' '
		}
	}
	if len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return string(r)
}

func runProposalShow(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "proposal show", "[-json] ID", `Show a proposal: the method, the goal, what became of it, and, for an
improvement, the current source, the candidate, its regression replay (step
counts, differences) and the attempts the replay refused, with their diffs.`)
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("proposal show takes one proposal ID, like 3.2 (batos proposal list shows them)")
	}
	if err := command.CheckProposalID(idArg(fs, 0)); err != nil {
		return usageError("%v", err)
	}
	s, err := openSession(ctx, e, readOnly)
	if err != nil {
		return err
	}
	defer s.Close()
	p, err := s.ProposalShow(ctx, idArg(fs, 0))
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, p)
	}
	printProposal(safeOut(e.stdout), p)
	return nil
}

func printProposal(w io.Writer, p heartbeat.ProposalView) {
	fmt.Fprintf(w, "proposal %s: %s %s\n", p.ID, p.Kind, p.Method)
	fmt.Fprintf(w, "goal: %s\n", p.Goal)
	fmt.Fprintf(w, "status: %s", p.Status)
	if p.Reason != "" {
		fmt.Fprintf(w, ": %s", p.Reason)
	}
	fmt.Fprintln(w)
	if p.Cycle != 0 {
		fmt.Fprintf(w, "cycle: %d (batos cycle show %d), %d tokens\n", p.Cycle, p.Cycle, p.Tokens)
	}
	if p.DecidedBy != "" {
		fmt.Fprintf(w, "decided by %s at %s\n", p.DecidedBy, formatTime(p.Decided))
	}
	if p.Base != "" {
		fmt.Fprintln(w, "\ncurrent source")
		writeIndented(w, p.Base)
	}
	if p.Code != "" {
		fmt.Fprintln(w, "\ncandidate")
		writeIndented(w, p.Code)
	}
	if r := p.Replay; r != nil {
		fmt.Fprintf(w, "\nreplay: %s\n", r.Summary)
		if r.Skipped > 0 {
			fmt.Fprintf(w, "    %d recorded calls no longer reach the method and were not replayed\n", r.Skipped)
		}
		for _, m := range r.Mended {
			fmt.Fprintf(w, "    mended: %s\n", m)
		}
	}
	for _, f := range p.Failures {
		if f.Replay == nil {
			continue
		}
		fmt.Fprintf(w, "\nattempt %d refused by the replay (%d steps now, %d with it): %s\n", f.Attempt, f.Replay.OldSteps, f.Replay.NewSteps, f.Replay.Summary)
		for _, d := range f.Replay.Diffs {
			fmt.Fprintf(w, "    - %s\n", d)
		}
	}
}

func runProposalDecide(ctx context.Context, e *env, verb string, args []string) error {
	help := `Accept a proposal awaiting approval: a retirement marks the method deprecated; an
improvement's replacement is replayed again on the recorded calls at the current
state and installed with its provenance (batos method revert undoes it) — unless
the method changed since the audit, or the replay now fails.`
	if verb == "reject" {
		help = `Reject a proposal awaiting approval; the method gets no new proposal until its
cool-down (heartbeat.cooldown_s) ends.`
	}
	fs := flags(e, "proposal "+verb, "ID", help)
	var reason *string
	if verb == "reject" {
		reason = fs.String("reason", "", "why, kept with the proposal")
	}
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("proposal %s takes one proposal ID, like 3.2 (batos proposal list shows them)", verb)
	}
	if err := command.CheckProposalID(idArg(fs, 0)); err != nil {
		return usageError("%v", err)
	}
	s, err := openSession(ctx, e, readWrite)
	if err != nil {
		return err
	}
	defer s.Close()
	var p heartbeat.ProposalView
	if verb == "accept" {
		p, err = s.ProposalAccept(ctx, idArg(fs, 0))
	} else {
		p, err = s.ProposalReject(ctx, idArg(fs, 0), *reason)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(safeOut(e.stdout), "proposal %s %s: %s\n", p.ID, p.Status, p.Reason)
	return nil
}
