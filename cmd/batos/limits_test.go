package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"batos/internal/command"
	"batos/internal/zmqbridge"
)

// limitServer is a real `batos run`, a process of its own (the test
// binary's memory says nothing of the server's, and -race inflates it),
// with a small memory budget.
type limitServer struct {
	cmd  *exec.Cmd
	req  string
	peak atomic.Uint64 // the most VmRSS seen since the last reset, bytes
	stop chan struct{}
	done chan struct{}
}

const (
	limitBudget   = 256 << 20 // batos run -max-memory
	limitHeadroom = 256 << 20 // RSS allowed above it
)

func startLimitServer(t *testing.T) *limitServer {
	t.Helper()
	exe := batosBinary(t)
	img := filepath.Join(t.TempDir(), "live_image.db")
	req, ev, llm := freeTCP(t), freeTCP(t), freeTCP(t)
	cmd := exec.Command(exe, "-image", img, "run", "-listen", req, "-events", ev, "-http", "off",
		"-llm", "http"+strings.TrimPrefix(llm, "tcp"), "-llm-api", "ollama",
		"-max-memory", strconv.Itoa(limitBudget>>20)+"MiB", "-max-reply", "16MiB")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &limitServer{cmd: cmd, req: req, stop: make(chan struct{}), done: make(chan struct{})}
	serving := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "serving") {
				close(serving)
				break
			}
		}
		io.Copy(io.Discard, out) // the pipe must not fill up

	}()
	select {
	case <-serving:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("batos run did not start: %s", stderr.String())
	}
	go s.watch()
	t.Cleanup(func() {
		close(s.stop)
		<-s.done
		cmd.Process.Signal(os.Interrupt)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("batos run: %v\n%s", err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Errorf("batos run did not stop")
		}
	})
	return s
}

// watch records the server's peak RSS every 2 ms.
func (s *limitServer) watch() {
	defer close(s.done)
	path := fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid)
	for {
		select {
		case <-s.stop:
			return
		case <-time.After(2 * time.Millisecond):
		}
		rss := readRSS(path)
		for cur := s.peak.Load(); rss > cur && !s.peak.CompareAndSwap(cur, rss); cur = s.peak.Load() {
		}
	}
}

func readRSS(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (s *limitServer) call(t *testing.T, command string, args map[string]any) (any, error) {
	t.Helper()
	c, err := zmqbridge.Dial(s.req, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return c.Call(ctx, command, args)
}

// TestServerMemoryLimits: the attacks of issue 10 on a server whose
// budget is 256 MiB. Each is a limit error well within the time limit,
// the server's RSS stays under the budget plus 256 MiB throughout, and the
// server answers the next request.
func TestServerMemoryLimits(t *testing.T) {
	s := startLimitServer(t)
	if _, err := s.call(t, "eval", map[string]any{"code": `genesis.chunks = method("def chunks(self, n):\n    x = []\n    for i in range(n):\n        x.append([0] * 1000000)\n    return len(x)")
genesis.small = method("def small(self):\n    x = []\n    for i in range(3000000):\n        x.append('y' * 1000)\n    return len(x)")
genesis.big = method("def big(self, n):\n    self.n = n\n    return 'x' * n")
genesis.deep = method("def deep(self, show):\n    l = []\n    for i in range(300000):\n        l = [l]\n    if show:\n        print(l)\n    return l")`}); err != nil {
		t.Fatal(err)
	}
	send := func(selector string, args ...any) func() (any, error) {
		return func() (any, error) {
			return s.call(t, "send", map[string]any{"target": "genesis", "selector": selector, "args": args})
		}
	}
	cases := []struct {
		name     string
		requests []func() (any, error)
		want     string // in each error's message
	}{
		{"a 100M-element repetition", []func() (any, error){func() (any, error) {
			return s.call(t, "eval", map[string]any{"code": "[0] * 100000000"})
		}}, "memory limit exceeded"},
		{"two 1.6 GB lists at once", []func() (any, error){send("chunks", 100), send("chunks", 100)}, "memory limit exceeded"},
		{"many small allocations", []func() (any, error){send("small")}, "limit exceeded"},
		{"a 300 MB result", []func() (any, error){send("big", 300_000_000)}, "memory limit exceeded"},
		{"a 100 MB result", []func() (any, error){send("big", 100_000_000)}, "the transaction committed as TID"},
		{"a 300k-deep list printed", []func() (any, error){send("deep", true)}, "nesting limit exceeded"},
		{"a 300k-deep list returned", []func() (any, error){send("deep", false)}, "reply limit exceeded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.peak.Store(0)
			start := time.Now()
			errs := make([]error, len(tc.requests))
			var wg sync.WaitGroup
			for i, r := range tc.requests {
				wg.Go(func() { _, errs[i] = r() })
			}
			wg.Wait()
			took := time.Since(start)
			peak := max(s.peak.Load(), readRSS(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid)))
			t.Logf("peak RSS %d MiB, %v", peak>>20, took.Round(time.Millisecond))
			for _, err := range errs {
				t.Logf("%s", strings.SplitN(fmt.Sprint(err), "\n", 2)[0])
				var re *command.Error
				if !errors.As(err, &re) || re.Kind != command.KindLimit || !strings.Contains(re.Message, tc.want) {
					t.Errorf("got %v, want a limit error saying %q", err, tc.want)
				}
				if re != nil && strings.Contains(re.Message, "time limit exceeded") {
					t.Errorf("got %v: the time limit stopped it, want another limit to stop it first", err)
				}
			}
			// Each error above names the limit that stopped the request,
			// not the 5 s time limit: it stopped before that. How long it
			// took is logged, not judged (timing never fails a test).
			if peak > limitBudget+limitHeadroom {
				t.Errorf("peak RSS %d MiB, over the budget of %d MiB + %d MiB", peak>>20, limitBudget>>20, limitHeadroom>>20)
			}
			res, err := s.call(t, "eval", map[string]any{"code": "1 + 1"})
			if m, _ := res.(map[string]any); err != nil || m["repr"] != "2" {
				t.Errorf("the next request: %v %v", res, err)
			}
		})
	}
	if res, err := s.call(t, "eval", map[string]any{"code": "genesis.n"}); err != nil || res.(map[string]any)["repr"] != "100000000" {
		t.Errorf("the change of the send whose result was too big: %v %v", res, err)
	}
	// Memory is given back: a memory limit returns what is free to the
	// system (at most once a second).
	time.Sleep(1100 * time.Millisecond)
	if _, err := s.call(t, "eval", map[string]any{"code": "[0] * 100000000"}); err == nil {
		t.Fatal("the repetition succeeded")
	}
	rss := readRSS(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	t.Logf("RSS after the attacks: %d MiB", rss>>20)
	if rss > 128<<20 {
		t.Errorf("RSS after the attacks: %d MiB, want the memory back", rss>>20)
	}
}

// TestHostileRunawaySendCLI: a send that recurses forever ends with the
// call-depth limit named, exit 1, and nothing committed.
func TestHostileRunawaySendCLI(t *testing.T) {
	img := newImage(t)
	mustRun(t, "-image", img, "eval", `genesis.r = method("def r(self):\n    self.touched = True\n    return self.r()")`)
	before := mustRun(t, "-image", img, "log", "-n", "1")
	code, _, stderr := batos(t, "-image", img, "send", "genesis", "r")
	if code != 1 || !strings.Contains(stderr, "call-depth limit exceeded") || !strings.Contains(stderr, "in r") {
		t.Errorf("runaway send: exit %d, stderr %q; want exit 1 naming the call-depth limit and r", code, tail(stderr, 400))
	}
	// The failed call is counted: the telemetry saved at close is the
	// only commit.
	if after := mustRun(t, "-image", img, "log", "-n", "2"); !strings.HasSuffix(after, before) || !strings.Contains(strings.TrimSuffix(after, before), "telemetry:") {
		t.Errorf("the runaway send committed:\n%s\n%s", before, after)
	}
	if out := mustRun(t, "-image", img, "eval", `has_slot(genesis, "touched")`); out != "False\n" {
		t.Errorf("touched after the failed send: %q", out)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
