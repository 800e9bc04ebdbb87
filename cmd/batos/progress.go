package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether w is a terminal; progress is shown only there.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// withProgress runs fn; on a terminal, a line on stderr shows that label is
// still running and for how long, and is cleared when fn returns.
func withProgress(e *env, label string, fn func() error) error {
	if !isTerminal(e.stderr) {
		return fn()
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		start := time.Now()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		shown := false
		for {
			select {
			case <-done:
				if shown {
					fmt.Fprint(e.stderr, "\r\033[K")
				}
				return
			case <-tick.C:
				fmt.Fprintf(e.stderr, "\r%s… %s", label, time.Since(start).Round(time.Second))
				shown = true
			}
		}
	}()
	err := fn()
	close(done)
	<-finished
	return err
}
