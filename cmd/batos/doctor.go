package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"batos/internal/mind"
	"batos/internal/store"
)

func init() {
	commands["doctor"] = cliCommand{"report the mind's state: server reachable, models present, personas' tiers", runDoctor}
}

// doctorReport is what batos doctor found.
type doctorReport struct {
	Image     string        `json:"image"`
	ImageNote string        `json:"image_note,omitempty"`
	Server    *serverReport `json:"server"`
	NoServer  string        `json:"no_server,omitempty"`
	BaseModel string        `json:"base_model,omitempty"`
	Personas  []personaView `json:"personas,omitempty"`
	Problems  []string      `json:"problems,omitempty"`
}

type serverReport struct {
	URL          string   `json:"url"`
	API          string   `json:"api"`
	Version      string   `json:"version,omitempty"`
	DefaultModel string   `json:"default_model,omitempty"`
	Models       []string `json:"models"`
}

// errDoctorProblems makes batos doctor exit 1 after printing its report.
var errDoctorProblems = errors.New("problems found (listed above)")

func runDoctor(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "doctor", "[-json] [-llm URL -llm-api API -model M]", `Check the mind: whether the inference server answers (the one given, the one
batos run recorded in the image, or Ollama and llama-server on their default
ports), which models it has, the base model in the image, and each persona's
adapter tier. Exits 1 if something stands in the way of the personas.`)
	asJSON := jsonFlag(fs)
	sf := addServerFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("doctor takes no arguments")
	}
	rep := &doctorReport{Image: e.image}
	u, err := awakenImage(ctx, e, readWrite, nil)
	var cfg mind.ServerConfig
	if err != nil {
		// The server can be checked without the image (missing, or held
		// by a running batos).
		u = nil
		rep.ImageNote = err.Error() + "; personas not checked"
		if errors.Is(err, store.ErrInUse) {
			rep.ImageNote = "in use by a running batos; personas not checked"
		}
		if cfg, err = sf.config(ctx, nil); err != nil {
			return err
		}
	} else {
		defer u.Close()
		if cfg, err = sf.config(ctx, u.DB()); err != nil {
			return err
		}
		if base, err := mind.LoadWeights(ctx, u.DB()); err != nil {
			return err
		} else if base != nil {
			rep.BaseModel = fmt.Sprintf("%s (%s, %s, %s)", base.File, base.Architecture, formatBytes(base.Blob.Size), base.Blob.Digest)
		}
	}
	server, err := mind.Connect(ctx, cfg)
	if err != nil {
		rep.NoServer = noServerParagraph(cfg, err)
		rep.Problems = append(rep.Problems, "no inference server reachable")
	} else {
		sr := &serverReport{URL: server.URL, API: string(server.API), Version: server.Version, DefaultModel: server.DefaultModel}
		sr.Models, err = server.Models(ctx)
		if err != nil {
			rep.Problems = append(rep.Problems, "cannot list the server's models: "+err.Error())
		}
		if err == nil && len(sr.Models) == 0 && rep.BaseModel == "" {
			rep.Problems = append(rep.Problems, "the server has no models and the image has no base model (pull one, or batos model import FILE.gguf)")
		}
		if sr.DefaultModel != "" && err == nil && !hasModel(sr.Models, sr.DefaultModel) {
			rep.Problems = append(rep.Problems, fmt.Sprintf("default model %s is not on the server", sr.DefaultModel))
		}
		rep.Server = sr
	}
	if u != nil && server != nil {
		views, note, err := personaViews(ctx, e, u, sf, "")
		if err != nil {
			return err
		}
		rep.Personas = views
		if note != "" {
			rep.Problems = append(rep.Problems, note)
		}
		for _, v := range views {
			if v.Problem != "" {
				rep.Problems = append(rep.Problems, v.Name+": "+v.Problem)
			}
		}
	}
	if *asJSON {
		for i := range rep.Personas {
			rep.Personas[i].SystemPrompt = ""
		}
		if err := printJSON(e.stdout, rep); err != nil {
			return err
		}
	} else {
		printDoctor(e, rep)
	}
	if len(rep.Problems) > 0 {
		return errDoctorProblems
	}
	return nil
}

func hasModel(models []string, name string) bool {
	for _, m := range models {
		if m == name || strings.TrimSuffix(m, ":latest") == name {
			return true
		}
	}
	return false
}

func printDoctor(e *env, rep *doctorReport) {
	w := e.stdout
	fmt.Fprintf(w, "image:      %s\n", rep.Image)
	if rep.ImageNote != "" {
		fmt.Fprintf(w, "            %s\n", rep.ImageNote)
	}
	if rep.BaseModel != "" {
		fmt.Fprintf(w, "base model: %s\n", rep.BaseModel)
	} else {
		fmt.Fprintln(w, "base model: none in the image")
	}
	if rep.Server == nil {
		fmt.Fprintf(w, "\n%s\n", rep.NoServer)
		return
	}
	s := rep.Server
	version := ""
	if s.Version != "" {
		version = ", version " + s.Version
	}
	fmt.Fprintf(w, "server:     %s at %s%s\n", s.API, s.URL, version)
	fmt.Fprintf(w, "models:     %s\n", strings.Join(s.Models, ", "))
	if s.DefaultModel != "" {
		fmt.Fprintf(w, "default:    %s\n", s.DefaultModel)
	}
	if len(rep.Personas) > 0 {
		fmt.Fprintln(w, "personas:")
		for _, v := range rep.Personas {
			fmt.Fprintf(w, "  %-8s %-5s %s\n", v.Name, v.Tier, v.Where)
		}
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintln(w, "problems:")
		for _, p := range rep.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	} else {
		fmt.Fprintln(w, "all well")
	}
}

// noServerParagraph says, in one paragraph, that no server answered,
// what that means and how to start one.
func noServerParagraph(cfg mind.ServerConfig, err error) string {
	var tried string
	var probe *mind.ProbeError
	if errors.As(err, &probe) {
		var parts []string
		for _, t := range probe.Tried {
			parts = append(parts, fmt.Sprintf("%s at %s (%s)", t.API, t.URL, reason(t.Err)))
		}
		tried = "No inference server is reachable: batos tried " + strings.Join(parts, " and ") + "."
	} else {
		tried = fmt.Sprintf("The inference server at %s did not answer (%s).", cfg.URL, reason(err))
	}
	return tried + " batos works without one — objects, methods, history, the REPL and the bridge all do — " +
		"but a message nothing understands cannot be learned until a mind is reachable. To start one: " +
		"`ollama serve`, then `ollama pull llama3.2:1b` and `batos run -llm http://127.0.0.1:11434 -llm-api ollama -model llama3.2:1b`; " +
		"or `llama-server -m MODEL.gguf --port 8080` and `batos run -llm http://127.0.0.1:8080 -llm-api openai`. " +
		"A base model kept in the image (`batos model import FILE.gguf`) is handed to Ollama by batos itself."
}

// reason shortens a connection error to what a user needs to read.
func reason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: nothing is listening"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "no answer in time"
	}
	return err.Error()
}
