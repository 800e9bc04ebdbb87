package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"batos/internal/command"
	"batos/internal/mind"
	"batos/internal/store"
	"batos/internal/uvm"
)

func init() {
	commands["doctor"] = cliCommand{"report the mind's state: server reachable, models present, personas' tiers", runDoctor}
}

// doctorReport is what batos doctor found.
type doctorReport struct {
	Image     string                `json:"image"`
	ImageNote string                `json:"image_note,omitempty"`
	Server    *serverReport         `json:"server"`
	NoServer  string                `json:"no_server,omitempty"`
	BaseModel string                `json:"base_model,omitempty"`
	Personas  []command.PersonaView `json:"personas,omitempty"`
	Problems  []string              `json:"problems,omitempty"`
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
adapter tier. While batos run holds the image, the server is still checked from
here, and batos run answers for the image: its base model, and the personas'
tiers as its mind sees them. Exits 1 if something stands in the way of the
personas.`)
	asJSON := jsonFlag(fs)
	sf := addServerFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("doctor takes no arguments")
	}
	rep := &doctorReport{Image: uvm.DisplayName(e.image)}
	sess, cfg, remote, err := doctorSession(ctx, e, sf, rep)
	if err != nil {
		return err
	}
	if sess != nil {
		defer sess.Close()
	}
	// The server is checked from here: it is about what this machine
	// reaches. The image's part comes through the session, from batos run
	// while it holds the image.
	server, connErr := mind.Connect(ctx, cfg)
	var personas command.PersonaReport
	if remote != nil {
		personas = *remote
	}
	if sess != nil {
		if sess.local != nil {
			db := sess.local.DB()
			sess.Service.(*command.Local).SetMind(func(context.Context) (*mind.Mind, error) {
				if server == nil {
					return nil, connErr
				}
				return mind.New(db, server, &mind.Options{CacheDir: cacheDir(e)}), nil
			}, cfg.Model)
			if personas, err = sess.Personas(ctx, ""); err != nil {
				return err
			}
		}
		if b := personas.BaseModel; b != nil {
			rep.BaseModel = fmt.Sprintf("%s (%s, %s, %s)", b.File, b.Architecture, formatBytes(b.Size), b.Digest)
		}
	}
	checkServer(ctx, rep, cfg, server, connErr)
	if sess != nil && server != nil {
		rep.Personas = personas.Personas
		if note := personas.Note; note != "" {
			rep.Problems = append(rep.Problems, note)
		}
		for _, v := range personas.Personas {
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

// checkServer adds to rep what the server (or connErr, when it did not
// answer) says about this machine's mind.
func checkServer(ctx context.Context, rep *doctorReport, cfg mind.ServerConfig, server *mind.Server, connErr error) {
	if connErr != nil {
		rep.NoServer = noServerParagraph(cfg, connErr)
		rep.Problems = append(rep.Problems, "no inference server reachable")
		return
	}
	sr := &serverReport{URL: server.URL, API: string(server.API), Version: server.Version, DefaultModel: server.DefaultModel}
	var err error
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

// doctorSession opens the image's session and the configuration of the
// server to check: the one the flags name, else the one the image
// records, and, from batos run, the personas report (it carries the
// server the image records). Without a session (no image, or one held by
// a process that serves no bridge) the server is still checked, and rep
// says why the image was not.
func doctorSession(ctx context.Context, e *env, sf serverFlags, rep *doctorReport) (*session, mind.ServerConfig, *command.PersonaReport, error) {
	sess, err := openSession(ctx, e, readWrite)
	if err != nil {
		rep.ImageNote = err.Error() + "; personas not checked"
		if errors.Is(err, store.ErrInUse) {
			rep.ImageNote = "in use by a running batos; personas not checked"
		}
		cfg, err := sf.config(ctx, nil)
		return nil, cfg, nil, err
	}
	if sess.local != nil {
		cfg, err := sf.config(ctx, sess.local.DB())
		if err != nil {
			sess.Close()
			return nil, cfg, nil, err
		}
		return sess, cfg, nil, nil
	}
	if sf.given() {
		fmt.Fprintf(e.stderr, "batos doctor: batos run serves %s; the personas' tiers are those its mind sees, whatever -llm, -llm-api and -model say\n", uvm.DisplayName(e.image))
	}
	personas, err := sess.Personas(ctx, "")
	if err != nil {
		sess.Close()
		return nil, mind.ServerConfig{}, nil, err
	}
	// The server the image records is the one to check from here too.
	r := personas.Recorded
	cfg, err := sf.configFrom(func() (mind.ServerConfig, error) {
		return mind.ServerConfig{URL: r.URL, API: mind.API(r.API), Model: r.Model}, nil
	})
	if err != nil {
		sess.Close()
		return nil, cfg, nil, err
	}
	return sess, cfg, &personas, nil
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
