package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"batos/internal/heartbeat"
)

func runMethodStats(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "method stats", "[-json] [-all] [TARGET]", `Show the method telemetry: for every method (of TARGET's own slots only, when
given), the calls to the version its slot holds now, the errors by kind, the
limit hits, latency p50 and p99, the Starlark steps a call takes (mean and max),
the recorded calls kept for replay, and when it was last called. -all adds the
versions a method had before. The figures are counted in memory and saved into
the image every 30 seconds, and before this command reads them.`)
	asJSON := jsonFlag(fs)
	all := fs.Bool("all", false, "include the versions methods had before")
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usageError("method stats takes at most one TARGET")
	}
	s, err := openSession(ctx, e, readWrite)
	if err != nil {
		return err
	}
	defer s.Close()
	r, err := s.MethodStats(ctx, idArg(fs, 0))
	if err != nil {
		return err
	}
	rows := r.Methods
	if !*all {
		rows = rows[:0:0]
		for _, m := range r.Methods {
			if m.Current {
				rows = append(rows, m)
			}
		}
	}
	if *asJSON {
		return printJSON(e.stdout, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(e.stdout, "no method calls counted yet")
		return nil
	}
	return printMethodStats(e.stdout, rows)
}

func printMethodStats(w io.Writer, rows []heartbeat.MethodStats) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "METHOD\tVERSION\tCALLS\tERRORS\tLIMITS\tP50\tP99\tSTEPS\tSAMPLES\tLAST")
	for _, m := range rows {
		label := oneLine(m.Label(), 80) // a name slot may hold lines and tabs
		switch {
		case m.Deprecated:
			label += " (deprecated)"
		case m.Missing:
			label += " (gone)"
		case !m.Current:
			label += " (old)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%.0f/%d\t%d (%d failed)\t%s\n", label, m.Version[:min(8, len(m.Version))],
			m.Calls, errorsText(m), m.LimitHits, latency(m.P50), latency(m.P99), m.MeanSteps, m.MaxSteps, m.Samples, m.FailedSamples, formatTime(m.Last))
	}
	return tw.Flush()
}

// errorsText is a method's errors, their rate and their kinds:
// "3 (30%: error 3)".
func errorsText(m heartbeat.MethodStats) string {
	if m.Errors == 0 {
		return "0"
	}
	var kinds []string
	for _, k := range slices.Sorted(maps.Keys(m.ErrorKinds)) {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, m.ErrorKinds[k]))
	}
	return fmt.Sprintf("%d (%.0f%%: %s)", m.Errors, 100*m.ErrorRate(), strings.Join(kinds, ", "))
}

func latency(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	default:
		return d.Round(10 * time.Microsecond).String()
	}
}
