package main

import (
	"fmt"
	"io"
	"os"
	"strings"
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

// byteProgress draws a progress bar for work of known size on a
// terminal, at most ten times a second; elsewhere it stays quiet. amount
// writes "done / total" (sizes in bytes by default).
type byteProgress struct {
	e      *env
	label  string
	on     bool
	last   time.Time
	shown  bool
	amount func(done, total int64) string
}

func newByteProgress(e *env, label string) *byteProgress {
	return &byteProgress{e: e, label: label, on: isTerminal(e.stderr), amount: func(done, total int64) string {
		return formatBytes(done) + " / " + formatBytes(total)
	}}
}

// newCountProgress is a bar counting units (transactions) rather than
// bytes.
func newCountProgress(e *env, label, unit string) *byteProgress {
	p := newByteProgress(e, label)
	p.amount = func(done, total int64) string { return fmt.Sprintf("%d / %d %s", done, total, unit) }
	return p
}

func (p *byteProgress) update(done, total int64) {
	if !p.on || (time.Since(p.last) < 100*time.Millisecond && done < total) {
		return
	}
	p.last = time.Now()
	const width = 30
	frac := 1.0
	if total > 0 {
		// done can pass total: a PEFT directory's archive adds headers
		// to the sizes of its files.
		frac = min(max(float64(done)/float64(total), 0), 1)
	}
	n := int(frac * width)
	fmt.Fprintf(p.e.stderr, "\r%s [%s%s] %3.0f%% %s", p.label, strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, p.amount(done, total))
	p.shown = true
}

func (p *byteProgress) done() {
	if p.shown {
		fmt.Fprint(p.e.stderr, "\r\033[K")
	}
}

// formatBytes writes a size the way people read them.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
