package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"batos/internal/command"
	"batos/internal/cycle"
)

// showCycle reads one cycle from the image, or from the server holding it.
func showCycle(ctx context.Context, e *env, id int64) (*command.CycleView, error) {
	s, err := openSession(ctx, e, readOnly)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.ShowCycle(ctx, id)
}

func runCycleShow(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "cycle show", "[-json] ID", `Show a cycle with everything it recorded: the mission, BRICK's plan, every model
answer (persona, model, tokens, latency, the full prompt and the answer), the
code and tests of the last attempt, every failure verbatim, why it failed, and
the provenance of the method it installed.`)
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	id, err := cycleID(fs, "show")
	if err != nil {
		return err
	}
	v, err := showCycle(ctx, e, id)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, v)
	}
	printCycle(e.stdout, v)
	return nil
}

// printCycle writes a cycle as cycle show does.
func printCycle(w io.Writer, v *command.CycleView) {
	fmt.Fprintf(w, "cycle %d: %s\n", v.ID, v.State)
	printSummary(w, v)
	if v.Plan != nil {
		printPlan(w, v.Plan)
	}
	for i, s := range v.Steps {
		printStep(w, i, s)
	}
	if v.Code != "" {
		fmt.Fprintf(w, "\ncode (attempt %d)\n", v.Attempt)
		writeIndented(w, v.Code)
	}
	if len(v.Tests) > 0 {
		fmt.Fprintf(w, "\ntests\n")
		for _, t := range v.Tests {
			fmt.Fprintf(w, "  %s: %s\n", t.Name, t.Expr)
		}
	}
	for _, f := range v.Failures {
		fmt.Fprintf(w, "\nfailure of attempt %d (%s)\n", f.Attempt, f.Kind)
		writeIndented(w, f.Message)
	}
	if v.Provenance != nil {
		printProvenance(w, v.Provenance)
	}
}

// field writes one "  name:     value" line.
func field(w io.Writer, name, format string, args ...any) {
	fmt.Fprintf(w, "  %-10s "+format+"\n", append([]any{name + ":"}, args...)...)
}

func printSummary(w io.Writer, v *command.CycleView) {
	if v.Call != "" {
		field(w, "message", "%s", v.Call)
	}
	if v.Brief != "" {
		field(w, "brief", "%s", v.Brief)
	}
	field(w, "receiver", "%s", receiverText(v))
	if v.Deliver {
		field(w, "answer", "the cycle answers the message itself (its sender took the handle)")
	}
	field(w, "attempt", "%d of %d", v.Attempt, v.MaxAttempts)
	if v.Runner != "" {
		field(w, "runner", "%s", v.Runner)
	}
	field(w, "personas", "%s", orDash(strings.Join(v.Personas, ", ")))
	field(w, "model", "%d calls, %d prompt + %d completion tokens, %s in the model", v.StepCount, v.PromptTokens, v.CompletionTokens, msText(v.ModelMS))
	field(w, "created", "%s", formatTime(v.Created))
	field(w, "updated", "%s (%s after it opened)", formatTime(v.Updated), v.Updated.Sub(v.Created).Round(time.Millisecond))
	if v.State == cycle.Failed.String() {
		field(w, "failed in", "%s", v.FailedIn)
		field(w, "reason", "%s", v.Reason)
	}
	for _, d := range v.Deliveries {
		text := d.State
		if d.Answer != "" {
			text += ": " + d.Answer
		}
		field(w, "delivery", "%s → %s", d.Call, text)
	}
}

func printPlan(w io.Writer, p *cycle.Plan) {
	fmt.Fprintf(w, "\nplan\n")
	field(w, "intent", "%s", p.Intent)
	field(w, "selector", "%s", p.Selector)
	field(w, "signature", "%s", p.Signature)
	for i, q := range p.SubQuestions {
		fmt.Fprintf(w, "  question %d for %s: %s\n", i+1, q.Persona, q.Question)
	}
	for _, t := range p.Tests {
		fmt.Fprintf(w, "  test %s: %s\n", t.Name, t.Expr)
	}
}

// printStep writes step i with its full prompt and answer, verbatim.
func printStep(w io.Writer, i int, s command.StepView) {
	fmt.Fprintf(w, "\nstep %d: %s", i+1, s.Kind)
	switch s.Kind {
	case "synthesize":
		fmt.Fprintf(w, " (attempt %d)", s.Attempt)
	case "delegate":
		if s.Index < 0 {
			// ALFRED's review of a failed attempt (cycle/review.go).
			fmt.Fprintf(w, " (review of attempt %d)", -1-s.Index)
		} else {
			fmt.Fprintf(w, " (question %d)", s.Index+1)
		}
	}
	fmt.Fprintf(w, " by %s, model %s", s.Persona, orDash(s.Model))
	if s.Adapter != "" {
		fmt.Fprintf(w, " with adapter %s", s.Adapter)
	}
	fmt.Fprintf(w, ", %d prompt + %d completion tokens, %s, at %s\n", s.PromptTokens, s.CompletionTokens, msText(s.LatencyMS), formatTime(s.At))
	if s.Rejected != "" {
		fmt.Fprintf(w, "  refused: %s\n", s.Rejected)
	}
	if s.Repaired != "" {
		fmt.Fprintf(w, "  repaired: %s\n", s.Repaired)
	}
	for i, src := range s.Sources {
		fmt.Fprintf(w, "  source [%d]: %s (document %s, chunk %s)\n", i+1, src.Cite(), src.Doc, src.Chunk)
	}
	for _, m := range s.Prompt {
		fmt.Fprintf(w, "  prompt (%s):\n", m.Role)
		writeIndented(w, m.Content)
	}
	fmt.Fprintf(w, "  answer:\n")
	writeIndented(w, s.Answer)
}

func printProvenance(w io.Writer, p *command.Provenance) {
	fmt.Fprintf(w, "\nprovenance\n")
	if !p.Current {
		field(w, "installed", "%s, since replaced or reverted", p.Slot)
		return
	}
	at := p.InstalledAt
	if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
		at = formatTime(t)
	}
	field(w, "installed", "%s at %s", p.Slot, at)
	field(w, "personas", "%s", strings.Join(p.Personas, ", "))
	field(w, "models", "%s", strings.Join(p.Models, ", "))
	field(w, "attempts", "%d", p.Attempts)
	for _, t := range p.Tests {
		field(w, "test", "%s", t)
	}
	for _, src := range p.Sources {
		field(w, "source", "%s", src)
	}
	field(w, "previous", "%s (batos method revert %s restores it)", orDash(p.Previous), strings.Replace(p.Slot, ".", " ", 1))
}

// shortReceiver is the receiver's root name, or its OID.
func shortReceiver(v *command.CycleView) string {
	if v.ReceiverName != "" {
		return v.ReceiverName
	}
	return v.Receiver
}

func receiverText(v *command.CycleView) string {
	if v.ReceiverName != "" {
		return fmt.Sprintf("%s (%s)", v.ReceiverName, v.Receiver)
	}
	return v.Receiver
}

func msText(x float64) string {
	return (time.Duration(x * float64(time.Millisecond))).Round(time.Microsecond).String()
}

// writeIndented writes text verbatim, each line indented.
func writeIndented(w io.Writer, text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(w, "    %s\n", line)
	}
}
