package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"batos/internal/image"
	"batos/internal/mind"
	"batos/internal/uvm"
)

func init() {
	commands["persona"] = cliCommand{"the mind's personas: persona list | show NAME | set NAME [-model M] [-system-file F] [-adapter FILE.gguf] [-temperature T] | warm [NAME...]", runPersona}
}

func runPersona(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageError("batos persona list | show NAME | set NAME [flags] | warm [NAME...]")
	}
	switch args[0] {
	case "list":
		return runPersonaList(ctx, e, args[1:])
	case "show":
		return runPersonaShow(ctx, e, args[1:])
	case "set":
		return runPersonaSet(ctx, e, args[1:])
	case "warm":
		return runPersonaWarm(ctx, e, args[1:])
	}
	return usageError("unknown persona command %q: want list, show, set or warm", args[0])
}

// personaView is a persona as the CLI shows it.
type personaView struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	Model string `json:"model"`
	// ModelIsDefault says the persona names no model of its own: Model is
	// the server's default (empty when there is none).
	ModelIsDefault bool           `json:"model_is_default,omitempty"`
	Adapter        string         `json:"adapter,omitempty"`
	AdapterFile    string         `json:"adapter_file,omitempty"`
	AdapterFormat  string         `json:"adapter_format,omitempty"`
	Temperature    *float64       `json:"temperature,omitempty"`
	Tier           string         `json:"tier"`
	Where          string         `json:"where,omitempty"`
	Problem        string         `json:"problem,omitempty"`
	Usage          usageView      `json:"usage"`
	SystemPrompt   string         `json:"system_prompt,omitempty"`
	RecentCalls    []callView     `json:"recent_calls,omitempty"`
	Options        map[string]any `json:"options,omitempty"`
}

type usageView struct {
	Calls            int64   `json:"calls"`
	Failures         int64   `json:"failures"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	MeanLatencyMS    float64 `json:"mean_latency_ms"`
}

type callView struct {
	At               time.Time `json:"at"`
	Model            string    `json:"model"`
	Adapter          string    `json:"adapter,omitempty"`
	PromptTokens     int       `json:"prompt_tokens"`
	CompletionTokens int       `json:"completion_tokens"`
	LatencyMS        float64   `json:"latency_ms"`
	Outcome          string    `json:"outcome"`
}

// personaViews reads the personas and, when a server answers, their
// tiers. note explains a missing server.
func personaViews(ctx context.Context, e *env, u *uvm.UVM, sf serverFlags, only string) (views []personaView, note string, err error) {
	var personas []*mind.Persona
	var calls []mind.Call
	err = u.DB().View(ctx, func(tx *image.Tx) error {
		if only != "" {
			p, err := mind.LoadPersona(tx, only)
			if err != nil {
				return err
			}
			personas = []*mind.Persona{p}
			calls, err = mind.RecentCalls(tx, only)
			return err
		}
		personas, err = mind.LoadPersonas(tx)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	cfg, err := sf.config(ctx, u.DB())
	if err != nil {
		return nil, "", err
	}
	placements := map[string]mind.Placement{}
	server, err := mind.Connect(ctx, cfg)
	if err != nil {
		note = "tiers unknown: " + err.Error() + " (batos doctor says more)"
		if errors.Is(err, mind.ErrNoServer) {
			note = "tiers unknown: no inference server reachable (batos doctor says more)"
		}
	} else {
		pls, err := mind.NewManager(u.DB(), server, cacheDir(e)).Observe(ctx, personas)
		if err != nil {
			note = "tiers unknown: " + server.Describe() + ": " + err.Error()
		}
		for _, pl := range pls {
			placements[pl.Persona] = pl
		}
		cfg.Model = server.DefaultModel
	}
	for _, p := range personas {
		v := personaView{
			Name: p.Name, Role: p.Role, Model: p.Model, Temperature: p.Temperature, SystemPrompt: p.SystemPrompt,
			Usage: usageView{Calls: p.Usage.Calls, Failures: p.Usage.Failures, PromptTokens: p.Usage.PromptTokens,
				CompletionTokens: p.Usage.CompletionTokens, MeanLatencyMS: ms(p.Usage.MeanLatency())},
			Options: optionsView(p),
		}
		if v.Model == "" {
			v.Model, v.ModelIsDefault = cfg.Model, true
		}
		if p.HasAdapter() {
			v.Adapter, v.AdapterFile, v.AdapterFormat = p.Adapter.Digest.String(), p.AdapterFile, p.AdapterFormat
		}
		v.Tier = "?"
		if pl, ok := placements[p.Name]; ok {
			v.Tier, v.Where, v.Problem = pl.Tier.String(), pl.Where, pl.Problem
		} else if !p.HasAdapter() {
			v.Tier = mind.TierNone.String()
		}
		for _, c := range calls {
			v.RecentCalls = append(v.RecentCalls, callView{At: c.At, Model: c.Model, Adapter: c.Adapter, PromptTokens: c.PromptTokens,
				CompletionTokens: c.CompletionTokens, LatencyMS: ms(c.Latency), Outcome: c.Outcome})
		}
		views = append(views, v)
	}
	return views, note, nil
}

func optionsView(p *mind.Persona) map[string]any {
	o := map[string]any{}
	if p.Options.Seed != nil {
		o["seed"] = *p.Options.Seed
	}
	if p.Options.MaxTokens > 0 {
		o["max_tokens"] = p.Options.MaxTokens
	}
	if p.Options.TopK > 0 {
		o["top_k"] = p.Options.TopK
	}
	if p.Options.TopP > 0 {
		o["top_p"] = p.Options.TopP
	}
	if p.Options.ContextSize > 0 {
		o["num_ctx"] = p.Options.ContextSize
	}
	if len(p.Options.Stop) > 0 {
		o["stop"] = p.Options.Stop
	}
	if len(o) == 0 {
		return nil
	}
	return o
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func runPersonaList(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "persona list", "[-json] [-llm URL -llm-api API]", `List the personas: model, adapter and its tier on the inference server (cold: only
in the image; warm: the server can use it; hot: active), and each persona's call
totals (calls, failures, tokens in and out, mean latency).`)
	asJSON := jsonFlag(fs)
	sf := addServerFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("persona list takes no arguments")
	}
	u, err := awakenImage(ctx, e, readWrite, nil)
	if err != nil {
		return err
	}
	defer u.Close()
	views, note, err := personaViews(ctx, e, u, sf, "")
	if err != nil {
		return err
	}
	if *asJSON {
		for i := range views {
			views[i].SystemPrompt = ""
		}
		return printJSON(e.stdout, map[string]any{"personas": views, "note": note})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tMODEL\tADAPTER\tTIER\tCALLS\tFAILED\tTOKENS IN/OUT\tMEAN LATENCY\tROLE")
	for _, v := range views {
		adapter := "-"
		if v.Adapter != "" {
			adapter = v.AdapterFile + " " + shortDigest(v.Adapter)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d/%d\t%.0f ms\t%s\n", v.Name, v.modelText(), adapter, v.Tier,
			v.Usage.Calls, v.Usage.Failures, v.Usage.PromptTokens, v.Usage.CompletionTokens, v.Usage.MeanLatencyMS, v.Role)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, v := range views {
		if v.Problem != "" {
			fmt.Fprintf(e.stdout, "%s: %s\n", v.Name, v.Problem)
		}
	}
	if note != "" {
		fmt.Fprintln(e.stdout, note)
	}
	return nil
}

// modelText is the model as a person reads it.
func (v personaView) modelText() string {
	switch {
	case !v.ModelIsDefault:
		return v.Model
	case v.Model == "":
		return "(default)"
	}
	return v.Model + " (default)"
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

func runPersonaShow(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "persona show", "NAME [-json]", "Show one persona whole: role, model, adapter and tier, options, system prompt, call totals and its recent calls.")
	asJSON := jsonFlag(fs)
	sf := addServerFlags(fs)
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("persona show needs one NAME")
	}
	u, err := awakenImage(ctx, e, readWrite, nil)
	if err != nil {
		return err
	}
	defer u.Close()
	views, note, err := personaViews(ctx, e, u, sf, fs.Arg(0))
	if err != nil {
		return err
	}
	v := views[0]
	if *asJSON {
		return printJSON(e.stdout, v)
	}
	w := e.stdout
	fmt.Fprintf(w, "%s — %s\n", v.Name, v.Role)
	fmt.Fprintf(w, "model:        %s\n", v.modelText())
	if v.Adapter != "" {
		fmt.Fprintf(w, "adapter:      %s (%s) %s\n", v.AdapterFile, v.AdapterFormat, v.Adapter)
	} else {
		fmt.Fprintln(w, "adapter:      none")
	}
	fmt.Fprintf(w, "tier:         %s %s\n", v.Tier, v.Where)
	if v.Problem != "" {
		fmt.Fprintf(w, "problem:      %s\n", v.Problem)
	}
	if v.Temperature != nil {
		fmt.Fprintf(w, "temperature:  %g\n", *v.Temperature)
	}
	if len(v.Options) > 0 {
		fmt.Fprintf(w, "options:      %v\n", v.Options)
	}
	fmt.Fprintf(w, "usage:        %d calls, %d failed, %d tokens in, %d out, mean latency %.0f ms\n",
		v.Usage.Calls, v.Usage.Failures, v.Usage.PromptTokens, v.Usage.CompletionTokens, v.Usage.MeanLatencyMS)
	fmt.Fprintf(w, "system prompt:\n%s\n", indent(v.SystemPrompt))
	if len(v.RecentCalls) > 0 {
		fmt.Fprintln(w, "recent calls:")
		start := max(0, len(v.RecentCalls)-10)
		for _, c := range v.RecentCalls[start:] {
			fmt.Fprintf(w, "  %s  %s  %d/%d tokens  %.0f ms  %s\n", c.At.Format(time.RFC3339), c.Model, c.PromptTokens, c.CompletionTokens, c.LatencyMS, c.Outcome)
		}
	}
	if note != "" {
		fmt.Fprintln(w, note)
	}
	return nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

func runPersonaSet(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "persona set", "NAME [-model M] [-system-file F] [-role R] [-adapter FILE.gguf|DIR|none] [-temperature T] [-create]", `Change a persona. -model names the server's model ('' for the default);
-system-file reads the system prompt from F ('-' for standard input); -adapter
stores a GGUF LoRA adapter (a PEFT directory for vLLM) in the image and attaches
it ('none' detaches); -temperature is 0 to 2. -create makes a new persona.
Files are checked before anything is stored; the change is one transaction.`)
	model := fs.String("model", "", "the server's model name for this persona ('' = the default model)")
	systemFile := fs.String("system-file", "", "file holding the system prompt ('-' = standard input)")
	role := fs.String("role", "", "a short description of the persona's job")
	adapter := fs.String("adapter", "", "a GGUF LoRA adapter file, a PEFT adapter directory, or 'none'")
	temperature := fs.String("temperature", "", "sampling temperature, 0 to 2")
	create := fs.Bool("create", false, "create the persona if it does not exist")
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("persona set needs one NAME")
	}
	name := fs.Arg(0)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	edit := mind.Edit{Create: *create}
	if set["model"] {
		edit.Model = model
	}
	if set["role"] {
		edit.Role = role
	}
	if set["temperature"] {
		t, err := strconv.ParseFloat(*temperature, 64)
		if err != nil {
			return usageError("-temperature %q: want a number from 0 to 2", *temperature)
		}
		edit.Temperature = &t
	}
	if set["system-file"] {
		text, err := readSystemPrompt(e, *systemFile)
		if err != nil {
			return err
		}
		edit.SystemPrompt = &text
	}
	if len(set) == 0 {
		return usageError("persona set %s: nothing to change (give -model, -system-file, -role, -adapter or -temperature)", name)
	}
	if set["adapter"] && *adapter == "" {
		return usageError("-adapter needs a GGUF file, a PEFT directory, or none")
	}
	if err := edit.Validate(); err != nil {
		return fmt.Errorf("persona %s: %w", name, err)
	}
	u, err := awakenImage(ctx, e, readWrite, nil)
	if err != nil {
		return err
	}
	defer u.Close()
	// The model the adapter must fit: the one given now, else the
	// persona's own, else pLLM's base.
	personaModel := ""
	if set["adapter"] && *adapter != "none" {
		var p *mind.Persona
		err := u.DB().View(ctx, func(tx *image.Tx) (err error) { p, err = mind.LoadPersona(tx, name); return })
		switch {
		case errors.Is(err, mind.ErrNoPersona) && !*create:
			// Refused before its adapter is copied into the image for nothing.
			return fmt.Errorf("%w; -create makes one", err)
		case err == nil:
			personaModel = p.Model
		}
		if set["model"] {
			personaModel = *model
		}
	}
	if set["adapter"] {
		if *adapter == "none" {
			edit.ClearAdapter = true
		} else {
			bar := newByteProgress(e, "importing "+*adapter)
			imp, err := mind.ImportAdapterFor(ctx, u.DB(), *adapter, personaModel, bar.update)
			bar.done()
			if err != nil {
				return err
			}
			edit.Adapter = imp
		}
	}
	if err := mind.EditPersona(ctx, u.DB(), name, edit); errors.Is(err, mind.ErrNoPersona) {
		return fmt.Errorf("%w; -create makes one", err)
	} else if err != nil {
		return err
	}
	var changed []string
	for _, f := range []string{"model", "system-file", "role", "adapter", "temperature"} {
		if set[f] {
			changed = append(changed, f)
		}
	}
	if len(changed) == 0 {
		fmt.Fprintf(e.stdout, "persona %s: created\n", name)
	} else {
		fmt.Fprintf(e.stdout, "persona %s: set %s\n", name, strings.Join(changed, ", "))
	}
	if edit.Adapter != nil {
		fmt.Fprintf(e.stdout, "adapter %s (%s, %s) stored as %s\n", edit.Adapter.File, edit.Adapter.Format, formatBytes(edit.Adapter.Blob.Size), edit.Adapter.Blob.Digest)
	}
	return nil
}

// maxPrompt bounds a system prompt read from a file.
const maxPrompt = 1 << 20

func readSystemPrompt(e *env, path string) (string, error) {
	var r io.Reader
	if path == "-" {
		r = e.stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxPrompt+1))
	if err != nil {
		return "", err
	}
	if len(data) > maxPrompt {
		return "", fmt.Errorf("system prompt %s is over %d KiB", path, maxPrompt>>10)
	}
	text := strings.TrimSpace(string(data))
	if text == "" {
		return "", errors.New("system prompt is empty")
	}
	return text, nil
}

func runPersonaWarm(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "persona warm", "[NAME...] [-llm URL -llm-api API -model M]", `Bring personas' adapters to the hot tier on the inference server now, rather
than on their first call: push blobs and create models (Ollama), load adapters
(vLLM), or check the server has them (llama-server). All personas when no NAME
is given.`)
	sf := addServerFlags(fs)
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	u, err := awakenImage(ctx, e, readWrite, nil)
	if err != nil {
		return err
	}
	defer u.Close()
	cfg, err := sf.config(ctx, u.DB())
	if err != nil {
		return err
	}
	server, err := mind.Connect(ctx, cfg)
	if err != nil {
		return err
	}
	names := fs.Args()
	if len(names) == 0 {
		for _, p := range personasOf(ctx, u) {
			names = append(names, p.Name)
		}
	}
	m := mind.NewManager(u.DB(), server, cacheDir(e))
	var failed int
	for _, name := range names {
		var p *mind.Persona
		err := u.DB().View(ctx, func(tx *image.Tx) (err error) { p, err = mind.LoadPersona(tx, name); return })
		if err == nil {
			var route mind.Route
			err = withProgress(e, "warming "+name, func() (err error) { route, err = m.Prepare(ctx, p); return })
			if err == nil {
				fmt.Fprintf(e.stdout, "%s: ready on %s (model %s%s)\n", name, server.Describe(), route.Model, loraText(route))
				continue
			}
		}
		failed++
		fmt.Fprintf(e.stdout, "%s: %v\n", name, err)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d personas not ready", failed, len(names))
	}
	return nil
}

func loraText(r mind.Route) string {
	if len(r.LoRA) == 0 {
		return ""
	}
	return fmt.Sprintf(", lora id %d", r.LoRA[0].ID)
}
