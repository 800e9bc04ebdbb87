package main

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestInterruptsRouting: SIGINT cancels the command unless a handler
// took it over; restoring gives it back.
func TestInterruptsRouting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The routing alone, fed by hand: a real SIGINT would reach every
	// test in the process.
	i := &interrupts{cancel: cancel, sig: make(chan os.Signal, 1), done: make(chan struct{})}
	go i.loop()
	defer i.stop()

	taken := make(chan struct{}, 1)
	restore := i.takeOver(func() { taken <- struct{}{} })
	i.sig <- os.Interrupt
	select {
	case <-taken:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler that took SIGINT over was not called")
	}
	if ctx.Err() != nil {
		t.Fatal("SIGINT cancelled the command while a handler had it")
	}
	restore()
	i.sig <- os.Interrupt
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("after restore, SIGINT did not cancel the command")
	}
	// No routing (a test calling run): nothing to take over, nothing to
	// restore.
	(*interrupts)(nil).takeOver(func() {})()
}
