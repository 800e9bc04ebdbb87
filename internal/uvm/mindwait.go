package uvm

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"batos/internal/mind"
)

// MindRetry spaces the tries to reach an inference server that did not
// answer when Serve started: First after the failure, then twice as long
// each time, at most Max. Tests shorten it.
var MindRetry = struct{ First, Max time.Duration }{time.Second, 30 * time.Second}

// awaitMind keeps trying, in the background, to reach the inference
// server Serve could not reach at start-up, so that batos and the
// server may start in either order; connect logs what it finds and
// nothing when it fails. Once a server answers, enable gives the image
// its mind and the search ends. The returned stop ends the search and
// waits for it: Serve calls it before it closes the image, so a mind
// never arrives at an image that is closing.
func awaitMind(ctx context.Context, connect func(context.Context) (*mind.Server, error), enable func(context.Context, *mind.Server) error, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		server := retryConnect(ctx, connect)
		if server == nil || ctx.Err() != nil {
			return
		}
		err := enable(ctx, server)
		switch {
		case err == nil:
			// Said once the mind is in place, not when the server is
			// found: a send after this line learns.
			log.Info("mind: ready; messages nothing understands are learned from now on")
		case !errors.Is(err, ErrShutdown) && ctx.Err() == nil:
			log.Error("mind: cannot enable the mind", "err", err)
		}
	}()
	return func() { cancel(); <-done }
}

// retryConnect calls connect after a growing wait until it answers a
// server, or returns nil when ctx ends.
func retryConnect(ctx context.Context, connect func(context.Context) (*mind.Server, error)) *mind.Server {
	wait := MindRetry.First
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if server, err := connect(ctx); err == nil {
			return server
		}
		wait = min(2*wait, MindRetry.Max)
	}
}
