package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
)

// interrupts routes the process's SIGINT (Ctrl-C on a terminal). It
// cancels the command's context, as SIGTERM does, unless a handler has
// taken it over: the REPL on a terminal does, so that Ctrl-C stops the
// input running and not the session.
type interrupts struct {
	cancel context.CancelFunc
	sig    chan os.Signal
	done   chan struct{}

	mu      sync.Mutex
	handler func() // guarded by mu; nil: cancel
}

// watchInterrupts routes SIGINT until stop; by default it calls cancel.
func watchInterrupts(cancel context.CancelFunc) *interrupts {
	i := &interrupts{cancel: cancel, sig: make(chan os.Signal, 1), done: make(chan struct{})}
	signal.Notify(i.sig, os.Interrupt)
	go i.loop()
	return i
}

func (i *interrupts) loop() {
	defer close(i.done)
	for range i.sig {
		i.mu.Lock()
		h := i.handler
		i.mu.Unlock()
		if h == nil {
			h = i.cancel
		}
		h()
	}
}

// takeOver has handler called for each SIGINT instead, until the
// restore it returns is called. A nil i (no signals watched: a test
// calling run) takes nothing over.
func (i *interrupts) takeOver(handler func()) (restore func()) {
	if i == nil {
		return func() {}
	}
	i.mu.Lock()
	prev := i.handler
	i.handler = handler
	i.mu.Unlock()
	return func() {
		i.mu.Lock()
		i.handler = prev
		i.mu.Unlock()
	}
}

// stop stops watching, back to the default action of SIGINT, and waits
// for the routing goroutine to end.
func (i *interrupts) stop() {
	signal.Stop(i.sig)
	close(i.sig)
	<-i.done
}
