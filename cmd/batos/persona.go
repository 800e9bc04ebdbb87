package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"batos/internal/command"
	"batos/internal/mind"
	"batos/internal/uvm"
)

func init() {
	g := &group{name: "persona", about: "The mind's personas: their models, adapters, prompts and tiers.", subs: []subcommand{
		{"list", "[-json]", "list the personas: model, adapter, tier and call totals", runPersonaList, false},
		{"show", "NAME [-json]", "show one persona whole, with its recent calls", runPersonaShow, false},
		{"set", "NAME [-model M] [-system-file F] [-role R] [-adapter FILE|none] [-temperature T] [-create]", "change (or -create) a persona", runPersonaSet, false},
		{"warm", "[NAME...]", "bring personas' adapters to the hot tier on the inference server", runPersonaWarm, false},
	}}
	commands["persona"] = cliCommand{"the mind's personas: persona list | show NAME | set NAME [-model M] [-system-file F] [-adapter FILE.gguf] [-temperature T] | warm [NAME...]", g.run}
}

// personaSession opens the session the persona commands run in. An image
// opened here sees the personas' tiers on the inference server the flags
// name (else the one the image records, else one found on the default
// ports); one that batos run serves sees them through its own mind, and
// the flags do not apply.
func personaSession(ctx context.Context, e *env, sf serverFlags, name string) (*session, error) {
	sess, err := openSession(ctx, e, readWrite)
	if err != nil {
		return nil, err
	}
	if sess.local == nil {
		if _, err := sf.config(ctx, nil); err != nil {
			sess.Close()
			return nil, err
		}
		if sf.given() {
			fmt.Fprintf(e.stderr, "batos %s: batos run serves %s; its mind sees the personas, not the -llm, -llm-api and -model given here\n", name, uvm.DisplayName(e.image))
		}
		return sess, nil
	}
	cfg, err := sf.config(ctx, sess.local.DB())
	if err != nil {
		sess.Close()
		return nil, err
	}
	db := sess.local.DB()
	sess.Service.(*command.Local).SetMind(func(ctx context.Context) (*mind.Mind, error) {
		server, err := mind.Connect(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return mind.New(db, server, &mind.Options{CacheDir: cacheDir(e)}), nil
	}, cfg.Model)
	return sess, nil
}

// personaNote is a report's note as the persona commands print it.
func personaNote(rep command.PersonaReport) string {
	if rep.Note != "" && rep.Server == "" {
		return rep.Note + " (batos doctor says more)"
	}
	return rep.Note
}

func runPersonaList(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "persona list", "[-json] [-llm URL -llm-api API]", `List the personas: model, adapter and its tier on the inference server (cold: only
in the image; warm: the server can use it; hot: active), and each persona's call
totals (calls, failures, tokens in and out, mean latency). While batos run holds
the image, the tiers are those its mind sees, and -llm does not apply.`)
	asJSON := jsonFlag(fs)
	sf := addServerFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("persona list takes no arguments")
	}
	sess, err := personaSession(ctx, e, sf, "persona list")
	if err != nil {
		return err
	}
	defer sess.Close()
	rep, err := sess.Personas(ctx, "")
	if err != nil {
		return err
	}
	views, note := rep.Personas, personaNote(rep)
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d/%d\t%.0f ms\t%s\n", v.Name, modelText(v), adapter, v.Tier,
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

// modelText is a persona's model as a person reads it.
func modelText(v command.PersonaView) string {
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
	fs := flags(e, "persona show", "NAME [-json]", `Show one persona whole: role, model, adapter and tier, options, system prompt,
call totals and its recent calls. While batos run holds the image, the tier is
the one its mind sees, and -llm does not apply.`)
	asJSON := jsonFlag(fs)
	sf := addServerFlags(fs)
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("persona show needs one NAME")
	}
	sess, err := personaSession(ctx, e, sf, "persona show")
	if err != nil {
		return err
	}
	defer sess.Close()
	rep, err := sess.Personas(ctx, idArg(fs, 0))
	if err != nil {
		return err
	}
	if len(rep.Personas) != 1 {
		return fmt.Errorf("asked for persona %s, got %d", idArg(fs, 0), len(rep.Personas))
	}
	v, note := rep.Personas[0], personaNote(rep)
	if *asJSON {
		return printJSON(e.stdout, v)
	}
	w := e.stdout
	fmt.Fprintf(w, "%s — %s\n", v.Name, v.Role)
	fmt.Fprintf(w, "model:        %s\n", modelText(v))
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
Files are checked before anything is stored; the change is one transaction.
While batos run holds the image, it reads the adapter itself: batos sends it
the adapter's absolute path, which must be readable where batos run runs.`)
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
	name := idArg(fs, 0)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	edit := command.PersonaEdit{Create: *create}
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
	switch {
	case set["adapter"] && *adapter == "":
		return usageError("-adapter needs a GGUF file, a PEFT directory, or none")
	case *adapter == "none":
		edit.ClearAdapter = true
	case *adapter != "":
		// The process holding the image reads the file: batos run, perhaps,
		// in another directory.
		abs, err := filepath.Abs(*adapter)
		if err != nil {
			return err
		}
		edit.Adapter = abs
	}
	sess, err := openSession(ctx, e, readWrite)
	if err != nil {
		return err
	}
	defer sess.Close()
	var bar *byteProgress
	if edit.Adapter != "" {
		bar = newByteProgress(e, "importing "+*adapter)
		edit.Progress = bar.update
	}
	c, err := sess.EditPersona(ctx, name, edit)
	if bar != nil {
		bar.done()
	}
	if command.KindOf(err) == command.KindNotFound && !*create {
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
	if a := c.Adapter; a != nil {
		fmt.Fprintf(e.stdout, "adapter %s (%s, %s) stored as %s\n", a.File, a.Format, formatBytes(a.Blob.Size), a.Blob.Digest)
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
is given. While batos run holds the image, its mind warms them on its server,
and -llm does not apply.`)
	sf := addServerFlags(fs)
	if err := parseFlags(fs, reorderFlags(fs, args)); err != nil {
		return err
	}
	sess, err := personaSession(ctx, e, sf, "persona warm")
	if err != nil {
		return err
	}
	defer sess.Close()
	names := fs.Args()
	label := "warming the personas"
	if len(names) > 0 {
		label = "warming " + strings.Join(names, ", ")
	}
	var results []command.WarmResult
	err = withProgress(e, label, func() (err error) { results, err = sess.WarmPersonas(ctx, names); return })
	if command.KindOf(err) == command.KindNoMind {
		return fmt.Errorf("%w (batos doctor says how to start one)", err)
	} else if err != nil {
		return err
	}
	var failed int
	for _, r := range results {
		if !r.Ready {
			failed++
			fmt.Fprintf(e.stdout, "%s: %s\n", r.Persona, r.Problem)
			continue
		}
		fmt.Fprintf(e.stdout, "%s: ready on %s (model %s%s)\n", r.Persona, r.Server, r.Model, loraText(r.LoRA))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d personas not ready", failed, len(results))
	}
	return nil
}

func loraText(ids []int) string {
	if len(ids) == 0 {
		return ""
	}
	return fmt.Sprintf(", lora id %d", ids[0])
}
