package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/command"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/store/pg/pgtest"
	"batos/internal/zmqbridge"
)

// failoverMind answers as scriptedMind does, keyed by persona and
// prompt, counting for each prompt the times it was asked and the times
// it was answered. ROBIN's first question is never answered: the node
// asking it is killed meanwhile.
type failoverMind struct {
	mu       sync.Mutex
	asked    map[string]int
	answered map[string]int
	blocked  chan struct{} // closed once ROBIN's first question waits
	once     sync.Once
}

func promptKey(persona, prompt string) string {
	sum := sha256.Sum256([]byte(prompt))
	return persona + " " + hex.EncodeToString(sum[:8])
}

func (f *failoverMind) respond(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	if len(req.Messages) < 2 {
		return llmtest.Reply{}, errors.New("failover mind: want a system prompt and a prompt")
	}
	persona, prompt := llmtest.Persona(req), req.Messages[len(req.Messages)-1].Content
	key := promptKey(persona, prompt)
	f.mu.Lock()
	f.asked[key]++
	first := persona == "ROBIN" && f.asked[key] == 1
	f.mu.Unlock()
	if first {
		f.once.Do(func() { close(f.blocked) })
		<-ctx.Done() // the asker dies
		return llmtest.Reply{}, ctx.Err()
	}
	var text string
	switch persona {
	case "BRICK":
		text = scriptedPlan(planFor.FindStringSubmatch(prompt)[1])
	case "ROBIN":
		text = scriptedMethod(writeFor.FindStringSubmatch(prompt)[1])
	default:
		text = persona + " says: genesis has a name slot; answer with it."
	}
	f.mu.Lock()
	f.answered[key]++
	f.mu.Unlock()
	return llmtest.Reply{Text: text}, nil
}

func (f *failoverMind) counts(key string) (asked, answered int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked[key], f.answered[key]
}

// startNode runs `batos run` as a process of its own (to be killed)
// and returns its endpoints and the process.
func startNode(t *testing.T, exe string, args ...string) (req, ev string, _ *exec.Cmd, _ *syncBuffer) {
	t.Helper()
	cmd := exec.Command(exe, append([]string{"run", "-listen", "tcp://127.0.0.1:*", "-events", "tcp://127.0.0.1:*", "-http", "off"}, args...)...)
	var out, errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	eventually(t, "the node process to serve", func() bool {
		if m := servingLine.FindStringSubmatch(out.String()); m != nil {
			req, ev = m[1], m[2]
			return true
		}
		return false
	})
	return req, ev, cmd, &errOut
}

// TestCycleFailoverOnPostgres: three nodes on one database. A send on
// node A opens a cycle A runs; sends on B (taking the handle) and on C
// (waiting) join it. A is killed with SIGKILL while ROBIN's question is
// in flight, after the plan and the research were recorded. B or C takes
// the lease once it expires, resumes from the last recorded step,
// completes the cycle, answers B's message itself, and C's waiting
// sender gets the method's answer. Every recorded step's prompt was
// answered once: only the question in flight at the kill was asked
// twice, and its first asking was never answered.
func TestCycleFailoverOnPostgres(t *testing.T) {
	exe := batosBinary(t)
	url := pgtest.NewDatabase(t)
	mustRun(t, "-store", url, "image", "init")
	mind := &failoverMind{asked: map[string]int{}, answered: map[string]int{}, blocked: make(chan struct{})}
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Flavor: llmtest.Generic, Responder: &llmtest.Model{Respond: mind.respond}})
	const lease = 2 * time.Second
	flags := func(node string) []string {
		return []string{"-llm", fake.URL, "-llm-api", "openai", "-model", "scripted", "-lease", lease.String(), "-node", node, "-heartbeat", "0"}
	}
	reqA, _, nodeA, logA := startNode(t, exe, append([]string{"-store", url}, flags("node-a")...)...)
	reqB, _, stopB := startRun(t, url, flags("node-b")...)
	defer stopB()
	reqC, _, stopC := startRun(t, url, flags("node-c")...)
	defer stopC()
	dial := func(addr string) *zmqbridge.Client {
		c, err := zmqbridge.Dial(addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b, c := dial(reqA), dial(reqB), dial(reqC)
	call := func(cl *zmqbridge.Client, command string, args map[string]any) any {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := cl.Call(ctx, command, args)
		if err != nil {
			t.Fatalf("%s %v: %v", command, args, err)
		}
		return res
	}
	send := map[string]any{"target": "genesis", "selector": "display_yourself", "learn": "handle"}
	handle := func(res any) any { return res.(map[string]any)["value"] }
	if h, _ := handle(call(a, "send", send)).(map[string]any); h["cycle"] != int64(1) || h["joined"] != false {
		t.Fatalf("the send on A: %v, want cycle 1 opened", h)
	}
	select {
	case <-mind.blocked:
	case <-time.After(30 * time.Second):
		t.Fatalf("ROBIN was never asked; node A's log:\n%s", logA.String())
	}
	show := func(cl *zmqbridge.Client) command.CycleView {
		t.Helper()
		var v command.CycleView
		b, _ := json.Marshal(call(cl, "cycle_show", map[string]any{"cycle": 1}))
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := show(b); v.State != "SYNTHESIZING" || !strings.HasPrefix(v.Runner, "node-a/") {
		t.Fatalf("before the kill, seen from B: %s run by %q; want SYNTHESIZING on node-a", v.State, v.Runner)
	}
	// B's send joins A's cycle and leaves its message with it; C's waits.
	if h, _ := handle(call(b, "send", send)).(map[string]any); h["cycle"] != int64(1) || h["joined"] != true {
		t.Fatalf("the send on B: %v, want cycle 1 joined", h)
	}
	waited := make(chan any, 1)
	waiter := dial(reqC) // a client of its own: one call at a time each
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := waiter.Call(ctx, "send", map[string]any{"target": "genesis", "selector": "display_yourself"})
		if err != nil {
			waited <- err
			return
		}
		waited <- handle(res)
	}()
	// While A holds the lease no other node drives the cycle: ROBIN's
	// question stays the one A asked.
	time.Sleep(lease)
	if v := show(c); v.State != "SYNTHESIZING" || !strings.HasPrefix(v.Runner, "node-a/") {
		t.Fatalf("while A runs, seen from C: %s run by %q", v.State, v.Runner)
	}

	killed := time.Now()
	if err := nodeA.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	nodeA.Wait()
	var takenBy string
	var takeover time.Duration
	eventually(t, "another node to take the cycle up", func() bool {
		v := show(b)
		if v.Runner != "" && !strings.HasPrefix(v.Runner, "node-a") {
			takenBy, takeover = v.Runner, time.Since(killed)
			return true
		}
		return false
	})
	t.Logf("cycle taken up by %s %s after the kill (lease %s)", takenBy, takeover.Round(time.Millisecond), lease)
	if takeover > 3*lease {
		t.Errorf("taken up %s after the kill; the lease is %s", takeover, lease)
	}
	select {
	case got := <-waited:
		if got != "I am genesis, and I learned display_yourself" {
			t.Errorf("C's waiting send: %v", got)
		}
	case <-time.After(time.Minute):
		t.Fatal("C's waiting send never returned")
	}
	var v command.CycleView
	eventually(t, "the cycle to answer B's message", func() bool {
		v = show(c)
		return v.State == "COMPLETE" && v.Pending == 0
	})
	if len(v.Deliveries) != 2 {
		t.Errorf("deliveries %+v: want A's and B's messages", v.Deliveries)
	}
	for _, d := range v.Deliveries {
		if d.State != "answered" || !strings.Contains(d.Answer, "I learned display_yourself") {
			t.Errorf("delivery %+v", d)
		}
	}
	// Every recorded step's prompt was answered once; only ROBIN's was
	// asked twice, the first time by the killed node, never answered.
	robin := 0
	for _, s := range v.Steps {
		if len(s.Prompt) == 0 {
			t.Fatalf("step %+v carries no prompt", s)
		}
		key := promptKey(s.Persona, s.Prompt[len(s.Prompt)-1].Content)
		asked, answered := mind.counts(key)
		if answered != 1 {
			t.Errorf("%s step %s was answered %d times (asked %d)", s.Kind, s.Persona, answered, asked)
		}
		want := 1
		if s.Persona == "ROBIN" {
			robin++
			want = 2
		}
		if asked != want {
			t.Errorf("%s step %s was asked %d times, want %d", s.Kind, s.Persona, asked, want)
		}
	}
	if robin != 1 {
		t.Errorf("%d synthesis steps recorded, want 1", robin)
	}
}

// TestHeartbeatOnOneNode: of two nodes on one database, one runs the
// heartbeat; when it stops, the other takes it up.
func TestHeartbeatOnOneNode(t *testing.T) {
	url := pgtest.NewDatabase(t)
	mustRun(t, "-store", url, "image", "init")
	const runs = "heartbeat: this node runs it"
	flags := func(node string) []string {
		return []string{"-heartbeat", "1h", "-lease", "1s", "-node", node, "-llm", "http://127.0.0.1:1"}
	}
	var logs [2]*syncBuffer
	var stops [2]func()
	for i, node := range []string{"node-a", "node-b"} {
		_, _, logs[i], stops[i] = startRunLogged(t, url, flags(node)...)
	}
	first := -1
	eventually(t, "a node to run the heartbeat", func() bool {
		for i, l := range logs {
			if strings.Contains(l.String(), runs) {
				first = i
			}
		}
		return first >= 0
	})
	other := 1 - first
	defer stops[other]()
	time.Sleep(2 * time.Second) // a lease and more: the other node is still waiting
	if strings.Contains(logs[other].String(), runs) {
		t.Fatalf("both nodes run the heartbeat:\n%s\n%s", logs[0].String(), logs[1].String())
	}
	stops[first]()
	eventually(t, "the other node to take the heartbeat up", func() bool { return strings.Contains(logs[other].String(), runs) })
}
