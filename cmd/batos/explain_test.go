package main

import (
	"batos/internal/command"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/store/bolt"
	"batos/internal/vm"
	"batos/internal/zmqbridge"
)

const noSpaceAdvice = "what could not be written was not saved, and nothing unsaved was reported saved"

// TestExplainStoreErrors: a full file system is explained naming the full
// file's path, whether the store said so here or the server's reply did;
// corrupt data points to batos verify, a damaged file to batos recover;
// other errors are left as they are.
func TestExplainStoreErrors(t *testing.T) {
	const wal = "/images/live_image.db.wal.00000003"
	noSpace := &store.NoSpaceError{Path: wal, Op: "write-ahead log", Err: syscall.ENOSPC}
	cases := []struct {
		name string
		err  error
		want []string // in the explained message; nil: unchanged
	}{
		{"no space here", fmt.Errorf("commit: %w", noSpace), []string{command.Message(noSpace), "the file system holding " + wal + " is full", noSpaceAdvice}},
		{"no space at the server", &command.Error{Kind: command.KindNoSpace, Message: noSpace.Error(), Path: wal}, []string{"the file system holding " + wal + " is full", noSpaceAdvice}},
		{"no space, path unknown", &command.Error{Kind: command.KindNoSpace, Message: "store: no space"}, []string{"the file system holding the image is full", noSpaceAdvice}},
		{"corrupt here", &store.CorruptError{OID: 3, TID: 9, Detail: "checksum mismatch"}, []string{"corrupt record of object oid:3", "batos verify"}},
		{"corrupt at the server", &command.Error{Kind: command.KindCorrupt, Message: "store: corrupt record"}, []string{"store: corrupt record", "batos verify"}},
		{"damaged file", &store.DamageError{Path: wal, Offset: -1, Detail: "bad frame"}, []string{wal + " is damaged", "batos recover"}},
		{"method limit", &command.Error{Kind: command.KindLimit, Message: "vm: step limit exceeded"}, nil},
		// The library says what happened; the CLI says which batos command
		// gets a mind.
		{"no mind", &vm.NotUnderstoodError{Receiver: "oid:3", Selector: "x"}, []string{"and cannot learn it: no mind: no inference server has answered yet", "batos doctor says how to start one"}},
		{"no mind at the server", &command.Error{Kind: command.KindNoMind, Message: "no mind"}, []string{"no mind", "batos doctor says more"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := explain(tc.err)
			if !errors.Is(got, tc.err) {
				t.Errorf("explained %q does not match the error it explains", got)
			}
			if tc.want == nil {
				if got.Error() != tc.err.Error() {
					t.Errorf("explain changed %q into %q", tc.err, got)
				}
				return
			}
			for _, w := range tc.want {
				if !strings.Contains(got.Error(), w) {
					t.Errorf("explained: %q lacks %q", got, w)
				}
			}
			if errors.Unwrap(got) != tc.err {
				t.Errorf("explained error does not wrap the original: %#v", got)
			}
		})
	}
}

// diskFullService is a service whose store is out of space: every send
// and eval fails as the store fails then (it serves nothing else).
type diskFullService struct {
	command.Service
	err error
}

func (b diskFullService) Send(ctx context.Context, req command.SendRequest) (vm.Result, error) {
	return vm.Result{}, b.err
}
func (b diskFullService) Eval(ctx context.Context, req command.EvalRequest) (vm.Result, error) {
	return vm.Result{}, b.err
}

// TestNoSpaceThroughTheServer: when the server holding the image answers
// no_space, batos send and eval exit 1 naming the full file and saying
// that nothing unsaved was reported saved.
func TestNoSpaceThroughTheServer(t *testing.T) {
	img := newImage(t)
	wal := img + ".wal.00000007"
	s, err := zmqbridge.Listen(diskFullService{err: fmt.Errorf("commit: %w", &store.NoSpaceError{Path: wal, Op: "write-ahead log", Err: syscall.ENOSPC})},
		&zmqbridge.Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*"})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-served
	}()
	// Held as batos run holds it, with its endpoint beside it.
	held, err := bolt.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr, _ := s.Endpoints()
	if err := os.WriteFile(bridgeFile(img), []byte(addr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"send", "genesis", "greet"}, {"eval", "genesis.x = 1"}} {
		code, _, errOut := batos(t, append([]string{"-image", img}, args...)...)
		for _, want := range []string{"no space left for the write-ahead log on " + wal, "the file system holding " + wal + " is full", noSpaceAdvice} {
			if code != 1 || !strings.Contains(errOut, want) {
				t.Errorf("%s: exit %d %q, want 1 and %q", args[0], code, errOut, want)
			}
		}
	}
}

// TestCorruptThroughTheServer: a record damaged on disk, read by an eval
// that batos run serves, comes back as kind corrupt (not internal) naming
// the object, and the CLI says how to find every damaged record.
func TestCorruptThroughTheServer(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	oid, _ := addObject(t, img, "marker", image.String("MARKER-0123456789"))
	flipByte(t, img, []byte("MARKER-0123456789"))
	req, _, stop := startRun(t, img)
	defer stop()
	c, err := zmqbridge.Dial(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.Call(ctx, "eval", map[string]any{"code": "marker.marker"})
	var re *command.Error
	if !errors.As(err, &re) || re.Kind != command.KindCorrupt || !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("eval of a corrupt object: %v, want kind corrupt", err)
	}
	code, _, errOut := batos(t, "-image", img, "eval", "marker.marker")
	if code != 1 || !strings.Contains(errOut, oid.String()) || !strings.Contains(errOut, "batos verify") {
		t.Errorf("batos eval of a corrupt object: exit %d %q, want 1 naming %s and batos verify", code, errOut, oid)
	}
}

// TestErrorsWithoutGoPrefixes: the CLI shows an error as a client of the
// server is shown it: a syntax error with its line and column, an undo
// conflict, neither with a Go package's prefix.
func TestErrorsWithoutGoPrefixes(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	code, _, errOut := batos(t, "-image", img, "eval", "x = 1\ny = (")
	if code != 1 || !strings.Contains(errOut, "syntax error at line 2, column 6") || strings.Contains(errOut, "vm: ") {
		t.Errorf("eval of bad syntax: exit %d, %q; want the line and column, without vm:", code, errOut)
	}
	code, _, errOut = batos(t, "-image", img, "eval", "genesis.nosuch")
	if code != 1 || !strings.Contains(errOut, "has no slot nosuch") || strings.Contains(errOut, "vm: ") {
		t.Errorf("eval of a missing slot: exit %d, %q", code, errOut)
	}
	mustRun(t, "-image", img, "eval", "genesis.x = 1")
	mustRun(t, "-image", img, "eval", "genesis.x = 2")
	out := mustRun(t, "-image", img, "log", "-n", "2")
	older := strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[1])[0]
	code, _, errOut = batos(t, "-image", img, "undo", older)
	if code != 1 || !strings.Contains(errOut, "later transactions changed") || strings.Contains(errOut, "store: ") {
		t.Errorf("undo of an overwritten change: exit %d, %q", code, errOut)
	}
}
