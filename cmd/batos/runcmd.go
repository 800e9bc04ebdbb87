package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/mind"
	"batos/internal/store/bolt"
	"batos/internal/uvm"
	"batos/internal/zmqbridge"
)

// findMind connects to the inference server the flags or the image name,
// or probes the default ones, and logs what it found (nothing when none
// answers: the caller says so once). A server given by flag is recorded
// in the image.
func findMind(ctx context.Context, e *env, u *uvm.UVM, cfg mind.ServerConfig, sf serverFlags, log *slog.Logger) (*mind.Server, error) {
	server, err := mind.Connect(ctx, cfg)
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

func unfinishedCycles(ctx context.Context, u *uvm.UVM) []*cycle.Cycle {
	var out []*cycle.Cycle
	_ = u.DB().View(ctx, func(tx *image.Tx) error {
		cs, err := cycle.List(tx)
		for _, c := range cs {
			if !c.State.Terminal() {
				out = append(out, c)
			}
		}
		return err
	})
	return out
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

func init() {
	commands["run"] = command{"awaken the image and serve it over ZeroMQ until interrupted", runRun}
}

// runRun awakens the image (creating it on first run), serves it on the
// bridge until SIGINT or SIGTERM, then answers the requests in flight and
// closes the image cleanly.
func runRun(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "run", "[-listen ADDR] [-events ADDR] [-curve-key FILE -allow FILE] [-llm URL -llm-api API -model NAME]", `Awaken the image, creating it on first run, and serve it: requests on a ZeroMQ
ROUTER socket, events on a PUB socket (msgpack; see docs/protocol.md). Ctrl-C or
SIGTERM answers the requests in flight and closes the image. While it runs,
other batos processes get an error naming it. The mind's inference server is the
one -llm names (recorded in the image for later runs), else the recorded one, else
Ollama or llama-server found on their default ports; if none answers at start-up,
batos keeps trying in the background and learns once one does.`)
	listen := fs.String("listen", "tcp://127.0.0.1:5555", "ROUTER endpoint for requests (loopback unless CURVE is configured)")
	eventsAddr := fs.String("events", "tcp://127.0.0.1:5556", "PUB endpoint for events")
	curveKey := fs.String("curve-key", "", "the server's CURVE secret key file (batos key gen); required beyond loopback")
	allow := fs.String("allow", "", "file of client CURVE public keys allowed in, one per line")
	sf := addServerFlags(fs)
	attempts := fs.Int("cycle-attempts", 3, "synthesis attempts a cycle gets before it fails (VALIDATING → SYNTHESIZING at most this many times)")
	running := fs.Int("cycles", 4, "cycles that run at once; the rest wait in IDLE")
	limits := addLimitFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("run takes no arguments")
	}
	if *attempts < 1 || *attempts > 20 || *running < 1 || *running > 256 {
		return usageError("-cycle-attempts wants 1 to 20 and -cycles 1 to 256")
	}
	curve, err := loadCurve(*curveKey, *allow)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	var server atomic.Pointer[zmqbridge.Server]
	u, created, err := uvm.Open(ctx, e.image, &uvm.Options{User: currentUser(), Store: &bolt.Options{Logger: log}, VM: limits.vm(), Events: func(topic string, payload map[string]any) {
		if s := server.Load(); s != nil {
			s.Publish(topic, payload)
		}
	}})
	if err != nil {
		return err
	}
	if created {
		log.Info("created image", "image", e.image)
	}
	cfg, err := sf.config(ctx, u.DB())
	if err != nil {
		u.Close()
		return err
	}
	// batos serves the image with or without a mind; one found later, in
	// the background, is enabled as one found now.
	enableMind := func(ctx context.Context, server *mind.Server) error {
		if err := u.EnableMind(ctx, server, &mind.Options{CacheDir: cacheDir(e), Logger: log}, &cycle.Options{MaxAttempts: *attempts, MaxRunning: *running, Logger: log}); err != nil {
			return err
		}
		if n := len(unfinishedCycles(ctx, u)); n > 0 {
			log.Info("cycles: resuming unfinished cycles", "count", n)
		}
		return nil
	}
	mindServer, mindErr := findMind(ctx, e, u, cfg, sf, log)
	if mindErr == nil {
		if err := enableMind(ctx, mindServer); err != nil {
			u.Close()
			return err
		}
	} else {
		log.Warn("mind: no inference server yet; messages nothing understands cannot be learned until one answers, and batos keeps looking (batos doctor says how to start one)", "err", mindErr)
	}
	s, err := zmqbridge.Listen(u.Backend(), &zmqbridge.Options{RequestAddr: *listen, EventAddr: *eventsAddr, Curve: curve, Logger: log})
	if err != nil {
		u.Close()
		return err
	}
	server.Store(s)
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	stopMindSearch := func() {}
	if mindErr != nil {
		stopMindSearch = awaitMind(ctx, func(ctx context.Context) (*mind.Server, error) { return findMind(ctx, e, u, cfg, sf, log) }, enableMind, log)
	}
	reqAddr, evAddr := s.Endpoints()
	// Other batos processes find the server here while the image is held.
	if err := os.WriteFile(bridgeFile(e.image), []byte(reqAddr+"\n"), 0o644); err != nil {
		log.Warn("cannot record the bridge endpoint; other batos commands will not find this server", "err", err)
	}
	defer os.Remove(bridgeFile(e.image))
	st, err := u.Store().Stats(ctx)
	if err == nil {
		log.Info("image awake", "image", e.image, "objects", st.Objects, "transactions", st.Transactions)
	}
	fmt.Fprintf(e.stdout, "batos: serving %s: requests on %s, events on %s; Ctrl-C to stop\n", e.image, reqAddr, evAddr)
	<-ctx.Done()
	log.Info("shutting down")
	// A mind found from now on would arrive at a closing image.
	stopMindSearch()
	// Cycles stop where they are (they resume on the next start), so that
	// sends waiting for one answer now rather than hold up the shutdown.
	if m := u.Cycles(); m != nil {
		m.Close()
	}
	// Requests and sends in flight get a few seconds to finish.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.Shutdown(sctx)
	<-served
	if err := u.Shutdown(sctx); err != nil {
		return fmt.Errorf("close image: %w", err)
	}
	fmt.Fprintln(e.stdout, "batos: image closed")
	return nil
}
