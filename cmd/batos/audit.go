package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"batos/internal/command"
	"batos/internal/heartbeat"
)

func init() {
	g := &group{name: "audit", about: "Self-audits: ALFRED's findings and proposals. batos audit alone runs one.", bare: runAuditRun, subs: []subcommand{
		{"run", "[-json]", "run a self-audit now and print it (what batos audit alone does)", runAuditRun, false},
		{"list", "[-json] [-n N]", "list the self-audits, newest first", runAuditList, false},
		{"show", "[-json] ID", "show an audit whole: facts, findings, proposals", runAuditShow, false},
	}}
	commands["audit"] = cliCommand{"self-audit: audit (run one now) | audit list | audit show ID", g.run}
}

func runAuditRun(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "audit run", "[-json]", `Run a self-audit now: gather the facts the image holds (failed cycles, methods
that fail or run slowly with their recorded calls, the personas' tokens and
latency, methods never called since a cycle installed them, image and catalog
growth), ask ALFRED for findings and proposals, keep the audit in the image and
print it. Proposals then become improvement cycles, which the heartbeat's policy
installs (auto) or holds for batos proposal accept (propose, the default).
"batos audit" alone runs one too; "batos audit list" and "batos audit show ID"
read past audits.`)
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("audit run takes no arguments (batos audit -h lists the audit commands)")
	}
	s, err := openSession(ctx, e, readWrite)
	if err != nil {
		return err
	}
	defer s.Close()
	learnLocally(ctx, e, s)
	v, err := s.AuditRun(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, v)
	}
	printAudit(safeOut(e.stdout), &v)
	if s.local != nil && hasProposalsInFlight(&v) {
		fmt.Fprintln(e.stderr, "batos: this process holds the image, and its improvement cycles stop as it exits; they resume when batos run next starts")
	}
	return nil
}

func hasProposalsInFlight(v *command.AuditView) bool {
	for _, p := range v.Proposals {
		if p.Status == heartbeat.ProposalPending || p.Status == heartbeat.ProposalInCycle {
			return true
		}
	}
	return false
}

func runAuditList(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "audit list", "[-json] [-n N]", `List the self-audits, newest first: state, who asked, findings, proposals and
the tokens they spent.`)
	asJSON := jsonFlag(fs)
	n := fs.Int("n", 20, "list at most N audits (0: all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("audit list takes no arguments")
	}
	if *n < 0 {
		return usageError("-n %d: want 0 (all) or more", *n)
	}
	s, err := openSession(ctx, e, readOnly)
	if err != nil {
		return err
	}
	defer s.Close()
	vs, err := s.AuditList(ctx, *n)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, vs)
	}
	if len(vs) == 0 {
		fmt.Fprintln(e.stdout, "no audits yet: batos audit runs one, and batos run -heartbeat schedules them")
		return nil
	}
	tw := tabwriter.NewWriter(safeOut(e.stdout), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tBY\tSTARTED\tFINDINGS\tPROPOSALS\tTOKENS")
	for _, v := range vs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%d\n", v.ID, v.State, v.By, formatTime(v.Started), len(v.Findings), proposalCounts(v.Proposals), v.Tokens)
	}
	return tw.Flush()
}

// proposalCounts says how many proposals stand where: "2 (1 awaiting
// approval, 1 applied)".
func proposalCounts(ps []heartbeat.Proposal) string {
	if len(ps) == 0 {
		return "0"
	}
	var order []string
	count := map[string]int{}
	for _, p := range ps {
		if count[p.Status] == 0 {
			order = append(order, p.Status)
		}
		count[p.Status]++
	}
	parts := make([]string, len(order))
	for i, st := range order {
		parts[i] = fmt.Sprintf("%d %s", count[st], st)
	}
	return fmt.Sprintf("%d (%s)", len(ps), strings.Join(parts, ", "))
}

func runAuditShow(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "audit show", "[-json] ID", `Show an audit whole: the facts it saw, ALFRED's answer, the findings with their
evidence, and what became of each proposal.`)
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("audit show takes one audit ID (batos audit list shows them)")
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(idArg(fs, 0), "a"), 10, 64)
	if err != nil || id <= 0 {
		return usageError("audit ID %q: want a number like 3", oneLine(fs.Arg(0), 40))
	}
	s, err := openSession(ctx, e, readOnly)
	if err != nil {
		return err
	}
	defer s.Close()
	v, err := s.AuditShow(ctx, id)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, v)
	}
	printAudit(safeOut(e.stdout), &v)
	if v.Facts != nil {
		fmt.Fprintln(e.stdout, "\nfacts")
		raw, err := json.MarshalIndent(v.Facts, "", "  ")
		if err != nil {
			return err
		}
		writeIndented(e.stdout, string(raw))
	}
	return nil
}

// printAudit writes an audit as batos audit prints it.
func printAudit(w io.Writer, v *command.AuditView) {
	fmt.Fprintf(w, "audit %d: %s, by %s at %s, policy %s, %d tokens\n", v.ID, v.State, v.By, formatTime(v.Started), v.Policy, v.Tokens)
	for _, n := range v.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if v.Error != "" {
		fmt.Fprintf(w, "error: %s\n", v.Error)
	}
	if v.Summary != "" {
		fmt.Fprintln(w, "\nsummary")
		writeIndented(w, v.Summary)
	}
	if len(v.Findings) > 0 {
		fmt.Fprintln(w, "\nfindings")
		for _, f := range v.Findings {
			fmt.Fprintf(w, "  [%s] %s\n", f.Severity, f.Title)
			for _, ev := range f.Evidence {
				fmt.Fprintf(w, "      - %s\n", ev)
			}
		}
	}
	if len(v.Proposals) > 0 {
		fmt.Fprintln(w, "\nproposals")
		for _, p := range v.Proposals {
			fmt.Fprintf(w, "  %s  %s %s.%s: %s\n", heartbeat.ID(v.ID, p.N), p.Kind, p.Receiver, p.Selector, p.Goal)
			fmt.Fprintf(w, "      %s", p.Status)
			if p.Cycle != 0 {
				fmt.Fprintf(w, " (cycle %d)", p.Cycle)
			}
			if p.Reason != "" {
				fmt.Fprintf(w, ": %s", p.Reason)
			}
			fmt.Fprintln(w)
		}
	} else if v.State == heartbeat.AuditAnswered {
		fmt.Fprintln(w, "\nno proposals")
	}
}
