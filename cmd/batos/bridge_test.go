package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/zmqbridge"
)

// syncBuffer is a bytes.Buffer safe to read while run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var servingLine = regexp.MustCompile(`requests on (\S+), events on ([^\s,;]+)[,;]`)

// startRun runs `batos run` in-process on free ports, with extra flags
// if given, and returns its endpoints and a stop function that waits for
// a clean exit.
func startRun(t *testing.T, img string, extra ...string) (req, ev string, stop func()) {
	t.Helper()
	req, ev, _, stop = startRunLogged(t, img, extra...)
	return req, ev, stop
}

// startRunLogged is startRun that also gives what batos run logs.
func startRunLogged(t *testing.T, img string, extra ...string) (req, ev string, logs *syncBuffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	errOut := &syncBuffer{}
	done := make(chan int, 1)
	// HTTP on a free port: tests never take the default ones.
	args := append([]string{"-image", img, "run", "-listen", "tcp://127.0.0.1:*", "-events", "tcp://127.0.0.1:*", "-http", "127.0.0.1:0"}, extra...)
	go func() {
		done <- runIO(ctx, args, strings.NewReader(""), &out, errOut)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := servingLine.FindStringSubmatch(out.String()); m != nil {
			return m[1], m[2], errOut, func() {
				cancel()
				if code := <-done; code != 0 {
					t.Errorf("batos run exited %d: %s", code, errOut.String())
				}
			}
		}
		select {
		case code := <-done:
			t.Fatalf("batos run exited %d:\n%s%s", code, out.String(), errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	t.Fatalf("batos run did not start:\n%s%s", out.String(), errOut.String())
	return
}

// TestPythonClientInterop: Debian's python3-zmq and python3-msgpack, as a
// DEALER, send, evaluate, inspect, subscribe to events and get correct
// replies from a real `batos run`.
func TestPythonClientInterop(t *testing.T) {
	python := "/usr/bin/python3" // Debian's, where python3-zmq installs
	if _, err := os.Stat(python); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	if out, err := exec.Command(python, "-c", "import zmq, msgpack").CombinedOutput(); err != nil {
		t.Fatalf("the interop client needs python3-zmq and python3-msgpack (make deps installs them): %v\n%s", err, out)
	}
	img := filepath.Join(t.TempDir(), "live_image.db")
	req, ev, stop := startRun(t, img)
	defer stop()
	cmd := exec.Command(python, "testdata/interop.py", req, ev)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "interop ok") {
		t.Fatalf("python client: %v\n%s", err, out)
	}
}

// TestCLIUsesTheRunningServer: while batos run holds the image, send,
// eval and inspect go through its bridge, and the user never notices.
func TestCLIUsesTheRunningServer(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	_, _, stop := startRun(t, img)
	defer stop()
	if out := mustRun(t, "-image", img, "eval", "genesis.greet = method(\"def greet(self, name):\\n    return 'hi ' + name\")"); out != "" {
		t.Errorf("eval through the server printed %q", out)
	}
	if out := mustRun(t, "-image", img, "send", "genesis", "greet", `["ada"]`); out != "\"hi ada\"\n" {
		t.Errorf("send through the server: %q", out)
	}
	if out := mustRun(t, "-image", img, "inspect", "genesis"); !strings.Contains(out, "greet: method") || !strings.Contains(out, "(from oid:") {
		t.Errorf("inspect through the server:\n%s", out)
	}
	code, _, stderr := batos(t, "-image", img, "send", "genesis", "display_yourself")
	if code != 1 || !strings.Contains(stderr, "no mind: no inference server has answered yet") {
		t.Errorf("not understood through the server: exit %d %q", code, stderr)
	}
	if out := repl(t, img, "genesis.greet('bob')\n"); !strings.Contains(out, `"hi bob"`) || !strings.Contains(out, "through its running server") {
		t.Errorf("repl through the server:\n%s", out)
	}
	logOut := mustRun(t, "-image", img, "log", "-n", "2")
	if strings.Count(logOut, "\n") != 2 || !strings.Contains(logOut, "eval") {
		t.Errorf("log through the server:\n%s", logOut)
	}
	// The eval's transaction: the server may have committed one of its
	// own since (the method telemetry it keeps in the image).
	var tid string
	for line := range strings.Lines(logOut) {
		if strings.Contains(line, "eval: genesis.greet") {
			tid = strings.Fields(line)[0]
		}
	}
	if tid == "" {
		t.Fatalf("the eval is not among the last two transactions:\n%s", logOut)
	}
	if out := mustRun(t, "-image", img, "history", "oid:3"); !strings.Contains(out, tid) {
		t.Errorf("history through the server lacks %s:\n%s", tid, out)
	}
	if out := mustRun(t, "-image", img, "undo", tid); !strings.Contains(out, "undid "+tid) {
		t.Errorf("undo through the server: %q", out)
	}
}

// freeTCP returns a loopback endpoint with a port free right now.
func freeTCP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "tcp://" + l.Addr().String()
}

// TestRestartWhileClientWaits: a client keeps its connection while batos
// run restarts. A request sent while the server is down may be lost with
// the old server's queue, so the client retries it, as ZeroMQ's lazy
// pirate pattern does; the retry is answered by the new server, and
// everything committed before survives.
func TestRestartWhileClientWaits(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	req, ev := freeTCP(t), freeTCP(t)
	start := func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		var out, errOut syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- runIO(ctx, []string{"-image", img, "run", "-listen", req, "-events", ev, "-http", "off"}, strings.NewReader(""), &out, &errOut)
		}()
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "serving"); {
			if time.Now().After(deadline) {
				t.Fatalf("run did not start: %s%s", out.String(), errOut.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		return func() {
			cancel()
			if code := <-done; code != 0 {
				t.Errorf("run exited %d: %s", code, errOut.String())
			}
		}
	}
	stop := start()
	c, err := zmqbridge.Dial(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	call := func(code string, timeout time.Duration) (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return c.Call(ctx, "eval", map[string]any{"code": code})
	}
	if _, err := call("genesis.count = 41", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	stop()
	// The server is down: the client sends, and retries until answered.
	answered := make(chan error, 1)
	go func() {
		var err error
		for range 20 {
			if _, err = call("genesis.note = 'after the restart'", time.Second); err == nil {
				break
			}
		}
		answered <- err
	}()
	time.Sleep(300 * time.Millisecond)
	stop = start()
	defer stop()
	if err := <-answered; err != nil {
		t.Fatalf("request sent while the server restarted: %v", err)
	}
	res, err := call("[genesis.count, genesis.note]", 10*time.Second)
	if err != nil || res.(map[string]any)["repr"] != `[41, "after the restart"]` {
		t.Fatalf("after the restart: %v (%v), want [41, \"after the restart\"]: nothing committed may be lost", res, err)
	}
}

// TestBridgeFileNamesBothEndpoints: the file batos run leaves beside the
// image names the request endpoint and the event endpoint, so a client
// finds a server started on ports the system chose.
func TestBridgeFileNamesBothEndpoints(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	req, ev, stop := startRun(t, img)
	defer stop()
	b, err := os.ReadFile(bridgeFile(img))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 || lines[0] != req || lines[1] != "events "+ev {
		t.Errorf("bridge file %q, want %s then events %s", b, req, ev)
	}
}
