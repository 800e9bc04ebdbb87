package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"batos/internal/command"
	"batos/internal/cycle"
	"batos/internal/mind"
	"batos/internal/uvm"
)

func init() {
	commands["cycle"] = cliCommand{"cognitive cycles: cycle list [-all] | show ID | retry ID | cancel ID", runCycle}
}

func runCycle(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageError("batos cycle list [-json] [-all] | show [-json] ID | retry ID | cancel ID")
	}
	switch args[0] {
	case "list":
		return runCycleList(ctx, e, args[1:])
	case "show":
		return runCycleShow(ctx, e, args[1:])
	case "retry":
		return runCycleRetry(ctx, e, args[1:])
	case "cancel":
		return runCycleCancel(ctx, e, args[1:])
	}
	return usageError("unknown cycle command %q: want list, show, retry or cancel", args[0])
}

// cycleID reads the one ID argument of show, retry and cancel.
func cycleID(fs interface {
	NArg() int
	Arg(int) string
}, what string) (int64, error) {
	if fs.NArg() != 1 {
		return 0, usageError("cycle %s takes one cycle ID (batos cycle list shows them)", what)
	}
	id, err := cycle.ParseID(fs.Arg(0))
	if err != nil {
		return 0, usageError("%v", err)
	}
	return id, nil
}

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

func runCycleCancel(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "cycle cancel", "ID", `Cancel an unfinished cycle: it is recorded FAILED with the reason "cancelled",
nothing is installed, and a model call in flight for it is abandoned. A sender
waiting for it gets the failure.`)
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	id, err := cycleID(fs, "cancel")
	if err != nil {
		return err
	}
	was, err := cancelCycle(ctx, e, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "cycle %d cancelled (it was %s); nothing was installed\n", id, was)
	return nil
}

func cancelCycle(ctx context.Context, e *env, id int64) (was string, err error) {
	s, err := openSession(ctx, e, readWrite)
	if err != nil {
		return "", err
	}
	defer s.Close()
	c, err := s.CancelCycle(ctx, id)
	return c.Was, err
}

func runCycleRetry(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "cycle retry", "[-timeout D] [-llm URL -llm-api API -model NAME] ID", `Run a FAILED cycle again from the state it failed in, with fresh attempts. Every
answer it recorded is kept: no model is asked again for a step the cycle has.
When batos run serves the image, its mind runs the retry; otherwise the retry
runs here, through the inference server batos run recorded (or the one -llm
names), and waits for the cycle to finish. Unfinished cycles of the image
resume meanwhile, and stop where they are when the retry ends.`)
	timeout := fs.Duration("timeout", command.DefaultLearnTimeout, "how long to wait for the cycle")
	sf := addServerFlags(fs)
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	id, err := cycleID(fs, "retry")
	if err != nil {
		return err
	}
	if *timeout <= 0 {
		return usageError("-timeout %s: want a positive duration such as 5m", *timeout)
	}
	if _, err := os.Stat(e.image); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no image at %s", e.image)
	}
	p := &cycleProgress{e: e, id: id, on: isTerminal(e.stderr)}
	u, err := awakenImage(ctx, e, readWrite, &uvm.Options{User: currentUser(), Events: p.event})
	if err != nil {
		r, rerr := reachServer(e, err)
		if rerr != nil {
			return rerr
		}
		defer r.Close()
		if *sf.url != "" {
			fmt.Fprintf(e.stderr, "batos cycle retry: batos run serves %s; its mind runs the retry, not -llm %s\n", e.image, *sf.url)
		}
		v, err := retry(ctx, r, p, id, *timeout)
		return reportRetry(e, v, err, *timeout, true)
	}
	defer u.Close()
	local := command.NewLocal(u, currentUser())
	// Refuse what cannot be retried before looking for a server.
	if err := local.Retryable(ctx, id); err != nil {
		return err
	}
	cfg, err := sf.config(ctx, u.DB())
	if err != nil {
		return err
	}
	server, err := mind.Connect(ctx, cfg)
	if err != nil {
		return fmt.Errorf("retrying cycle %d needs a mind: %w (batos doctor says how to start an inference server)", id, err)
	}
	if err := u.EnableMind(ctx, server, &mind.Options{CacheDir: cacheDir(e)}, nil); err != nil {
		return err
	}
	v, err := retry(ctx, local, p, id, *timeout)
	return reportRetry(e, v, err, *timeout, false)
}

// retry retries cycle id and follows it until it finishes.
func retry(ctx context.Context, svc command.Service, p *cycleProgress, id int64, timeout time.Duration) (*command.CycleView, error) {
	if _, err := svc.RetryCycle(ctx, id); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := command.AwaitCycle(wctx, svc, id, p.state)
	if v == nil && err != nil && wctx.Err() != nil {
		v, _ = svc.ShowCycle(context.WithoutCancel(ctx), id)
	}
	return v, err
}

// reportRetry tells how a retry ended.
func reportRetry(e *env, v *command.CycleView, err error, timeout time.Duration, remote bool) error {
	if errors.Is(err, context.DeadlineExceeded) && v != nil {
		if remote {
			return fmt.Errorf("cycle %d is still %s after %s; the server goes on with it (batos cycle show %d)", v.ID, v.State, timeout, v.ID)
		}
		return fmt.Errorf("cycle %d is still %s after %s; it resumes where it is when the image next opens with a mind (batos run)", v.ID, v.State, timeout)
	}
	if err != nil {
		return err
	}
	if v.State == cycle.Failed.String() {
		return fmt.Errorf("cycle %d FAILED again in %s: %s (batos cycle show %d)", v.ID, v.FailedIn, v.Reason, v.ID)
	}
	fmt.Fprintf(e.stdout, "cycle %d COMPLETE: installed %s.%s (attempt %d)\n", v.ID, shortReceiver(v), v.Selector, v.Attempt)
	// Each message the cycle answers itself, as it ended: a delivery that
	// failed or was forwarded was not answered.
	for _, d := range v.Deliveries {
		verb := "answered"
		if d.State != string(cycle.DeliveryAnswered) {
			verb = d.State
		}
		fmt.Fprintf(e.stdout, "%s %s: %s\n", verb, d.Call, d.Answer)
	}
	return nil
}

// cycleProgress shows, on a terminal, how one cycle moves.
type cycleProgress struct {
	e    *env
	id   int64
	on   bool
	mu   sync.Mutex
	last string
}

// event is the uvm's event sink: transitions and steps of the cycle.
func (p *cycleProgress) event(topic string, payload map[string]any) {
	if !p.on || payload["id"] != p.id {
		return
	}
	switch topic {
	case "cycle.transition":
		s, _ := payload["state"].(string)
		p.state(s)
	case "cycle.step":
		p.mu.Lock()
		defer p.mu.Unlock()
		fmt.Fprintf(p.e.stderr, "cycle %d: %v answered (%v, %.0f ms)\n", p.id, payload["persona"], payload["kind"], payload["latency_ms"])
	}
}

func (p *cycleProgress) state(s string) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s != p.last {
		fmt.Fprintf(p.e.stderr, "cycle %d: %s\n", p.id, s)
		p.last = s
	}
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
		fmt.Fprintf(w, " (question %d)", s.Index+1)
	}
	fmt.Fprintf(w, " by %s, model %s", s.Persona, orDash(s.Model))
	if s.Adapter != "" {
		fmt.Fprintf(w, " with adapter %s", s.Adapter)
	}
	fmt.Fprintf(w, ", %d prompt + %d completion tokens, %s, at %s\n", s.PromptTokens, s.CompletionTokens, msText(s.LatencyMS), formatTime(s.At))
	if s.Rejected != "" {
		fmt.Fprintf(w, "  refused: %s\n", s.Rejected)
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
