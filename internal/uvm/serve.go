package uvm

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"batos/internal/command"
	"batos/internal/cycle"
	"batos/internal/httpapi"
	"batos/internal/mind"
	"batos/internal/zmqbridge"
)

// ServeOptions configures Serve.
type ServeOptions struct {
	// UVM configures the image and its VM; Serve sets its Events, which
	// the bridge publishes.
	UVM Options
	// Bridge configures the ZeroMQ bridge.
	Bridge zmqbridge.Options
	// HTTP, when set, serves the same commands and events over HTTP
	// beside the bridge.
	HTTP *httpapi.Options
	// Prepare, if set, runs once the image is open, before anything is
	// served; its error closes the image and is Serve's.
	Prepare func(ctx context.Context, u *UVM) error
	// FindMind looks for the inference server the personas speak through
	// (it logs what it finds). Nil serves without a mind. When it fails
	// at start-up, Serve goes on without a mind and keeps calling it in
	// the background; the first server it answers becomes the mind.
	FindMind func(ctx context.Context, u *UVM) (*mind.Server, error)
	// MindOptions and Cycle configure the mind once there is one.
	MindOptions *mind.Options
	Cycle       *cycle.Options
	// Ready, if set, is called once the bridge serves, with its
	// endpoints, and the HTTP server's address ("" without one).
	Ready func(u *UVM, requests, events, http string)
	// Heartbeat is how often ALFRED audits the image; 0 never.
	Heartbeat time.Duration
	// ShutdownGrace is how long requests in flight get to finish once ctx
	// ends, before the bridge cancels them; default 10 s.
	ShutdownGrace time.Duration
	Logger        *slog.Logger
}

// Serve opens the image at path (creating it on first run), serves it on
// the bridge until ctx ends, and closes it. The order is what makes the
// guarantees: the mind is enabled before the bridge takes requests when
// its server answers at once; at the end the background search for a
// mind stops first (a mind must never arrive at a closing image), then
// cycles stop where they are (they resume on the next start, and sends
// waiting for them answer now), then the bridge answers the requests in
// flight, and only then is the image closed.
// imageCloseWait bounds the wait for sends still running in the image
// once the bridge has stopped (its own requests are cancelled by then).
const imageCloseWait = 5 * time.Second

func Serve(ctx context.Context, path string, opts *ServeOptions) error {
	o := *opts
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 10 * time.Second
	}
	var bridge atomic.Pointer[zmqbridge.Server]
	var web atomic.Pointer[httpapi.Server]
	o.UVM.Events = func(topic string, payload map[string]any) {
		if s := bridge.Load(); s != nil {
			s.Publish(topic, payload)
		}
		if s := web.Load(); s != nil {
			s.Publish(topic, payload)
		}
	}
	u, created, err := Open(ctx, path, &o.UVM)
	if err != nil {
		return err
	}
	if created {
		log.Info("created image", "image", path)
	}
	if o.Prepare != nil {
		if err := o.Prepare(ctx, u); err != nil {
			u.Close()
			return err
		}
	}
	enable := func(ctx context.Context, server *mind.Server) error {
		if err := u.EnableMind(ctx, server, o.MindOptions, o.Cycle); err != nil {
			return err
		}
		if n := u.unfinishedCycles(ctx); n > 0 {
			log.Info("cycles: resuming unfinished cycles", "count", n)
		}
		return nil
	}
	var mindErr error // the search for a mind at start-up failed
	if o.FindMind != nil {
		var server *mind.Server
		if server, mindErr = o.FindMind(ctx, u); mindErr == nil {
			if err := enable(ctx, server); err != nil {
				u.Close()
				return err
			}
		} else {
			log.Warn("mind: no inference server yet: nothing is learned until one answers; batos keeps looking (batos doctor helps)", "err", mindErr)
		}
	}
	svc := command.NewLocal(u, o.UVM.User)
	// The persona commands see the personas through the mind enabled
	// here, once there is one.
	svc.SetMind(func(context.Context) (*mind.Mind, error) {
		if m := u.Mind(); m != nil {
			return m, nil
		}
		return nil, mind.ErrNoServer
	}, "")
	s, err := zmqbridge.Listen(svc, &o.Bridge)
	if err != nil {
		u.Close()
		return err
	}
	var h *httpapi.Server
	if o.HTTP != nil {
		if h, err = httpapi.Listen(svc, *o.HTTP); err != nil {
			s.Close()
			u.Close()
			return err
		}
		web.Store(h)
	}
	bridge.Store(s)
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	webServed := make(chan struct{})
	go func() {
		defer close(webServed)
		if h != nil {
			if err := h.Serve(); err != nil {
				log.Error("http: stopped serving", "err", err)
			}
		}
	}()
	stopMindSearch := func() {}
	if mindErr != nil {
		stopMindSearch = awaitMind(ctx, func(ctx context.Context) (*mind.Server, error) { return o.FindMind(ctx, u) }, enable, log)
	}
	if st, err := u.Store().Stats(ctx); err == nil {
		log.Info("image awake", "image", path, "objects", st.Objects, "transactions", st.Transactions)
	}
	u.flushEvery(TelemetryFlush)
	beatCtx, stopBeat := context.WithCancel(ctx)
	beatDone := make(chan struct{})
	go func() {
		defer close(beatDone)
		if o.Heartbeat > 0 {
			log.Info("heartbeat: ALFRED audits the image", "every", o.Heartbeat)
		}
		u.RunHeartbeat(beatCtx, o.Heartbeat)
	}()
	if o.Ready != nil {
		reqAddr, evAddr := s.Endpoints()
		httpAddr := ""
		if h != nil {
			httpAddr = h.Addr()
		}
		o.Ready(u, reqAddr, evAddr, httpAddr)
	}
	<-ctx.Done()
	log.Info("shutting down")
	stopMindSearch()
	stopBeat()
	<-beatDone
	if m := u.Cycles(); m != nil {
		m.Close()
	}
	// The bridge gives requests in flight the grace period, then cancels
	// those still running; the image then waits only for what the bridge
	// did not run (a cycle's last commit, the heartbeat's).
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownGrace)
	defer cancel()
	if h != nil {
		go h.Shutdown(sctx) // at once with the bridge: one grace for both
	}
	s.Shutdown(sctx)
	<-served
	if h != nil {
		h.Close() // what the grace did not see finish is cut
		<-webServed
	}
	uctx, cancelClose := context.WithTimeout(context.Background(), imageCloseWait)
	defer cancelClose()
	if err := u.Shutdown(uctx); err != nil {
		return fmt.Errorf("close image: %w", err)
	}
	return nil
}
