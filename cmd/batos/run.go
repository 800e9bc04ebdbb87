package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"batos/internal/catalog/library"
	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/mind"
	"batos/internal/store/bolt"
	"batos/internal/store/lease"
	"batos/internal/uvm"
	"batos/internal/zmqbridge"
)

// findMind connects to the inference server the flags or the image name,
// or probes the default ones, and logs what it found (nothing when none
// answers: the caller says so once). A server given by flag is recorded
// in the image.
func findMind(ctx context.Context, e *env, u *uvm.UVM, cfg mind.ServerConfig, sf serverFlags, log *slog.Logger) (*mind.Server, error) {
	server, err := mind.Connect(ctx, cfg)
	var probe *mind.ProbeError
	if errors.As(err, &probe) {
		return nil, probeSummary{probe}
	}
	if err != nil {
		return nil, err
	}
	log.Info("mind: found "+server.Describe(), "default_model", server.DefaultModel)
	if *sf.url != "" {
		cfg.API = server.API
		if err := mind.SaveServerConfig(ctx, u.DB(), cfg); err != nil {
			log.Warn("mind: cannot record the server in the image", "err", err)
		}
	}
	placements, err := mind.NewManager(u.DB(), server, cacheDir(e)).Observe(ctx, personasOf(ctx, u))
	if err != nil {
		log.Warn("mind: cannot see the personas' tiers", "err", err)
	}
	for _, pl := range placements {
		log.Info("mind: persona", "name", pl.Persona, "tier", pl.Tier, "where", pl.Where, "problem", pl.Problem)
	}
	return server, nil
}

// probeSummary is a ProbeError told briefly, for run's one-line start-up
// warning: each endpoint tried and the innermost reason it failed
// ("connection refused"), not the whole chain of wrapped errors.
type probeSummary struct{ *mind.ProbeError }

func (p probeSummary) Error() string {
	var b strings.Builder
	b.WriteString("tried ")
	for i, t := range p.Tried {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s at %s (%v)", t.API, t.URL, rootCause(t.Err))
	}
	return b.String()
}

func (p probeSummary) Unwrap() error { return p.ProbeError }

// rootCause is the innermost error err wraps; of an error wrapping
// several ("%w: %s: %w", a sentinel then the cause), the last one's.
func rootCause(err error) error {
	for err != nil {
		next := errors.Unwrap(err)
		if multi, ok := err.(interface{ Unwrap() []error }); ok {
			if errs := multi.Unwrap(); len(errs) > 0 {
				next = errs[len(errs)-1]
			}
		}
		if next == nil {
			break
		}
		err = next
	}
	return err
}

func personasOf(ctx context.Context, u *uvm.UVM) []*mind.Persona {
	var ps []*mind.Persona
	_ = u.DB().View(ctx, func(tx *image.Tx) error {
		var err error
		ps, err = mind.LoadPersonas(tx)
		return err
	})
	return ps
}

// prepareEmbedModel records the catalog's embedding model when -embed-model
// names one ("none": no model), and logs which one the catalog uses.
func prepareEmbedModel(ctx context.Context, u *uvm.UVM, name string, given bool, log *slog.Logger) error {
	model, err := mind.LoadEmbedModel(ctx, u.DB())
	if err != nil {
		return err
	}
	if name == "none" {
		name = ""
	}
	if given && name != model {
		if err := mind.SaveEmbedModel(ctx, u.DB(), name); err != nil {
			return fmt.Errorf("record the embedding model: %w", err)
		}
		model = name
	}
	if model == "" {
		log.Info("catalog: " + library.NoModelNote)
	} else {
		log.Info("catalog: embedding model "+model+" (chunks cut at its semantic breakpoints; hybrid search)", "embed_model", model)
	}
	return nil
}

func init() {
	commands["run"] = cliCommand{"awaken the image and serve it over ZeroMQ until interrupted", runRun}
}

// runRun awakens the image (creating it on first run), serves it on the
// bridge until SIGINT or SIGTERM, then answers the requests in flight and
// closes the image cleanly.
func runRun(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "run", "[-listen ADDR] [-events ADDR] [-curve-key FILE -allow FILE] [-llm URL -llm-api API -model NAME] [-embed-model NAME|none]", `Awaken the image, creating it on first run, and serve it: requests on a ZeroMQ
ROUTER socket, events on a PUB socket (msgpack; see docs/protocol.md). Ctrl-C or
SIGTERM answers the requests in flight and closes the image. While it runs,
other batos processes get an error naming it. The mind's inference server is the
one -llm names (recorded in the image for later runs), else the recorded one, else
Ollama or llama-server found on their default ports; if none answers at start-up,
batos keeps trying in the background and learns once one does. -embed-model names
the model the knowledge catalog embeds with on that server (recorded in the image;
none clears it).`)
	listen := fs.String("listen", "tcp://127.0.0.1:5555", "ROUTER endpoint for requests (loopback unless CURVE is configured)")
	eventsAddr := fs.String("events", "tcp://127.0.0.1:5556", "PUB endpoint for events")
	curveKey := fs.String("curve-key", "", "the server's CURVE secret key file (batos key gen); required beyond loopback")
	allow := fs.String("allow", "", "file of client CURVE public keys allowed in, one per line")
	sf := addServerFlags(fs)
	embedModel := fs.String("embed-model", "", "the knowledge catalog's embedding model on the inference server, recorded in the image for later runs ('none' clears it); without one, chunks are fixed-size and search is by text alone")
	attempts := fs.Int("cycle-attempts", 3, "synthesis attempts a cycle gets before it fails (VALIDATING → SYNTHESIZING at most this many times)")
	running := fs.Int("cycles", 4, "cycles that run at once; the rest wait in IDLE")
	beat := fs.Duration("heartbeat", time.Hour, "how often ALFRED audits the image (0: never); the next audit's time is kept in the image, so a restart neither resets nor repeats it")
	leaseTTL := fs.Duration("lease", cycle.DefaultLeaseTTL, "on a database several nodes share: how long this node's leases on its cycles and the heartbeat last unless renewed, so how long they wait for another node if this one dies")
	node := fs.String("node", "", "on a database several nodes share: this node's name in leases and cycle records (default host:pid; a random suffix tells processes named alike apart)")
	limits := addLimitFlags(fs)
	httpAddr := fs.String("http", "127.0.0.1:7424", "HTTP address of the JSON API and event stream (docs/protocol.md, \"HTTP\"); off: none")
	httpTokenFile := fs.String("http-token-file", "", "file holding the token every HTTP request needs (bearer header, or the login form's cookie); required beyond loopback")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("run takes no arguments")
	}
	web, err := httpOptions(*httpAddr, *httpTokenFile)
	if err != nil {
		return err
	}
	// The endpoints are checked before the image is opened: a mistyped
	// one is told at once, not after the start-up's work and warnings.
	secure := *curveKey != "" || *allow != ""
	if *listen, err = serveEndpoint("listen", *listen, secure); err != nil {
		return err
	}
	if *eventsAddr, err = serveEndpoint("events", *eventsAddr, secure); err != nil {
		return err
	}
	if *attempts < 1 || *attempts > 20 || *running < 1 || *running > 256 {
		return usageError("-cycle-attempts wants 1 to 20 and -cycles 1 to 256")
	}
	if *leaseTTL < 300*time.Millisecond || *leaseTTL > time.Hour {
		return usageError("-lease %s: want 300ms to 1h, like 15s", *leaseTTL)
	}
	if *node != "" && (len(*node) > 128 || lease.CheckName("node", *node) != nil) {
		return usageError("-node %q: want a name of at most 128 bytes of UTF-8, without control characters", *node)
	}
	if *beat < 0 || (*beat > 0 && *beat < time.Second) {
		return usageError("-heartbeat %s: want 0 (no audits) or at least 1s, like 1h", *beat)
	}
	setEmbed := false
	fs.Visit(func(f *flag.Flag) { setEmbed = setEmbed || f.Name == "embed-model" })
	if setEmbed && strings.TrimSpace(*embedModel) == "" {
		return usageError("-embed-model needs a model name, or none")
	}
	curve, err := loadCurve(*curveKey, *allow)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	var cfg mind.ServerConfig
	err = uvm.Serve(ctx, e.image, &uvm.ServeOptions{
		UVM: uvm.Options{User: currentUser(), Store: &bolt.Options{Logger: log}, VM: limits.vm(), Logger: log,
			Node: *node, LeaseTTL: *leaseTTL},
		Bridge: zmqbridge.Options{RequestAddr: *listen, EventAddr: *eventsAddr, Curve: curve, Logger: log},
		HTTP:   web.withLogger(log),
		Prepare: func(ctx context.Context, u *uvm.UVM) (err error) {
			// The server the flags name, else the one the image records.
			if cfg, err = sf.config(ctx, u.DB()); err != nil {
				return err
			}
			return prepareEmbedModel(ctx, u, *embedModel, setEmbed, log)
		},
		FindMind: func(ctx context.Context, u *uvm.UVM) (*mind.Server, error) {
			return findMind(ctx, e, u, cfg, sf, log)
		},
		MindOptions: &mind.Options{CacheDir: cacheDir(e), Logger: log},
		Cycle:       &cycle.Options{MaxAttempts: *attempts, MaxRunning: *running, Logger: log},
		Heartbeat:   *beat,
		Ready: func(u *uvm.UVM, reqAddr, evAddr, httpAddr string) {
			// The catalog's indexes are caught up (or rebuilt) now, in the
			// background, rather than by the first search.
			go func() {
				if _, err := u.Catalog(ctx); err != nil && ctx.Err() == nil {
					log.Warn("catalog: cannot open the knowledge catalog", "err", err)
				}
			}()
			// Other batos processes find the server here while the image
			// file is held. A database is held by nobody: they open it
			// themselves, as one more node.
			if !uvm.IsDatabase(e.image) {
				if err := os.WriteFile(bridgeFile(e.image), []byte(bridgeRecord(reqAddr, evAddr, curve)), 0o644); err != nil {
					log.Warn("cannot record the bridge endpoint; other batos commands will not find this server", "err", err)
				}
			}
			web := ""
			if httpAddr != "" {
				web = ", http://" + httpAddr
			}
			fmt.Fprintf(e.stdout, "batos: serving %s: requests on %s, events on %s%s; Ctrl-C to stop\n", uvm.DisplayName(e.image), reqAddr, evAddr, web)
		},
		Logger: log,
	})
	if !uvm.IsDatabase(e.image) {
		os.Remove(bridgeFile(e.image))
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "batos: image closed")
	return nil
}
