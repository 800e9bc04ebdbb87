package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"batos/internal/command"
	"batos/internal/cycle"
	"batos/internal/mind"
	"batos/internal/uvm"
)

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
		r, rerr := reachServer(ctx, e, err)
		if rerr != nil {
			return rerr
		}
		defer r.Close()
		if *sf.url != "" {
			fmt.Fprintf(e.stderr, "batos cycle retry: batos run serves %s; its mind runs the retry, not -llm %s\n", uvm.DisplayName(e.image), *sf.url)
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
