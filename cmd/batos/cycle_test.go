package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/command"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/zmqbridge"
)

// scriptedMind answers the seeded personas, told apart by their system
// prompts: BRICK plans the selector the mission names (or
// "describe_briefly" for a brief), ROBIN writes it as a method answering
// a line that names the receiver, the others add a research note. A
// selector starting "never" gets a method that fails its tests every
// time; ROBIN waits for Release before writing a held selector. Calls
// are counted per persona and selector.
type scriptedMind struct {
	mu    sync.Mutex
	calls map[string]int
	held  map[string]chan struct{}
	asked chan string // held selectors ROBIN was asked for
}

func newScriptedMind() *scriptedMind {
	return &scriptedMind{calls: map[string]int{}, held: map[string]chan struct{}{}, asked: make(chan string, 16)}
}

var (
	planFor  = regexp.MustCompile(`Plan the method (\w+) that answers it`)
	writeFor = regexp.MustCompile(`Write the method (\w+) for`)
)

func (s *scriptedMind) respond(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	if len(req.Messages) < 2 {
		return llmtest.Reply{}, errors.New("scripted mind: want a system prompt and a prompt")
	}
	persona, prompt := llmtest.Persona(req), req.Messages[len(req.Messages)-1].Content
	if persona == "" {
		return llmtest.Reply{}, fmt.Errorf("scripted mind: no persona in %q", req.Messages[0].Content)
	}
	switch persona {
	case "BRICK":
		sel := "describe_briefly"
		if m := planFor.FindStringSubmatch(prompt); m != nil {
			sel = m[1]
		}
		s.count(persona, sel)
		return llmtest.Reply{Text: scriptedPlan(sel), Usage: llm.Usage{PromptTokens: 100, CompletionTokens: 40}}, nil
	case "ROBIN":
		m := writeFor.FindStringSubmatch(prompt)
		if m == nil {
			return llmtest.Reply{}, fmt.Errorf("scripted mind: ROBIN's prompt names no method: %q", prompt)
		}
		sel := m[1]
		s.count(persona, sel)
		if gate := s.gate(sel); gate != nil {
			s.asked <- sel
			select {
			case <-gate:
			case <-ctx.Done():
				return llmtest.Reply{}, ctx.Err()
			}
		}
		return llmtest.Reply{Text: scriptedMethod(sel), Usage: llm.Usage{PromptTokens: 200, CompletionTokens: 60}}, nil
	}
	s.count(persona, "")
	return llmtest.Reply{Text: persona + " says: genesis has a name slot; answer with it."}, nil
}

func (s *scriptedMind) count(persona, sel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[persona+" "+sel]++
}

func (s *scriptedMind) callsOf(persona, sel string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[persona+" "+sel]
}

// Hold makes ROBIN wait before writing sel until Release.
func (s *scriptedMind) Hold(sel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held[sel] = make(chan struct{})
}

func (s *scriptedMind) Release(sel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.held[sel]; ok {
		close(g)
		delete(s.held, sel)
	}
}

func (s *scriptedMind) gate(sel string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[sel]
}

// waitAsked waits until ROBIN is asked for held selector sel.
func (s *scriptedMind) waitAsked(t *testing.T, sel string) {
	t.Helper()
	select {
	case got := <-s.asked:
		if got != sel {
			t.Fatalf("ROBIN was asked for %s, want %s", got, sel)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("ROBIN was never asked for %s", sel)
	}
}

func scriptedPlan(sel string) string {
	b, _ := json.Marshal(map[string]any{
		"intent": "answer " + sel + " with a line naming the receiver", "selector": sel, "signature": "def " + sel + "(self)",
		"sub_questions": []any{map[string]any{"persona": "BABS", "question": "What slots does the receiver have?"}},
		"tests":         []any{map[string]any{"name": "names genesis", "expr": "'genesis' in self." + sel + "()"}},
	})
	return string(b)
}

func scriptedMethod(sel string) string {
	body := fmt.Sprintf("return 'I am %%s, and I learned %s' %% self.name", sel)
	if strings.HasPrefix(sel, "never") {
		body = "return 'nothing to say'"
	}
	src := fmt.Sprintf("def %s(self):\n    \"\"\"One line naming me.\"\"\"\n    %s\n", sel, body)
	b, _ := json.Marshal(map[string]any{"source": src, "tests": []any{map[string]any{"name": "a string", "expr": "type(self." + sel + "()) == 'string'"}}})
	return string(b)
}

// startMind starts a fake OpenAI-compatible server (a generic one, over
// real HTTP) answering from a scripted mind, and returns batos run's
// flags for it.
func startMind(t *testing.T) (*scriptedMind, *llmtest.OpenAI, []string) {
	t.Helper()
	s := newScriptedMind()
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Flavor: llmtest.Generic, Responder: &llmtest.Model{Respond: s.respond}})
	return s, fake, []string{"-llm", fake.URL, "-llm-api", "openai", "-model", "scripted"}
}

// eventually polls cond until it holds, or fails the test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// showCycleJSON reads a cycle through batos cycle show -json.
func showCycleJSON(t *testing.T, img string, id int64) command.CycleView {
	t.Helper()
	var v command.CycleView
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "cycle", "show", "-json", fmt.Sprint(id))), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestLearnOverTheBridge is the end-to-end test: batos run with
// an OpenAI-compatible server (the real HTTP backend against a fake
// server); batos send of a message nothing understands, over the bridge,
// answers with the method a cycle learned; -handle answers at once and
// the cycle answers later; cycles list, show, cancel and retry through
// the running server.
func TestLearnOverTheBridge(t *testing.T) {
	mind, fake, llmFlags := startMind(t)
	img := filepath.Join(t.TempDir(), "live_image.db")
	reqAddr, _, stopRun := startRun(t, img, llmFlags...)
	var once sync.Once
	stop := func() { once.Do(stopRun) }
	defer stop()

	out := mustRun(t, "-image", img, "send", "genesis", "display_yourself")
	if out != "\"I am genesis, and I learned display_yourself\"\n" {
		t.Fatalf("send display_yourself: %q, want the learned method's answer", out)
	}
	if len(fake.Requests()) == 0 || !strings.Contains(strings.Join(fake.ModelsUsed(), " "), "scripted") {
		t.Errorf("the fake server saw %d requests, models %v: the mind did not go through HTTP", len(fake.Requests()), fake.ModelsUsed())
	}
	// Learned once: the second send answers from the installed method.
	if out := mustRun(t, "-image", img, "send", "genesis", "display_yourself"); !strings.Contains(out, "I am genesis") || mind.callsOf("BRICK", "display_yourself") != 1 {
		t.Errorf("second send: %q, BRICK asked %d times", out, mind.callsOf("BRICK", "display_yourself"))
	}

	list := mustRun(t, "-image", img, "cycle", "list")
	if !regexp.MustCompile(`(?m)^1\s+COMPLETE\s+genesis\.display_yourself\(\)\s+1/3\s+BRICK,BABS,ROBIN\s`).MatchString(list) {
		t.Errorf("cycle list:\n%s", list)
	}
	show := mustRun(t, "-image", img, "cycle", "show", "1")
	for _, want := range []string{
		"cycle 1: COMPLETE", "message:   genesis.display_yourself()", "receiver:  genesis (oid:",
		"step 1: plan by BRICK, model scripted, 100 prompt + 40 completion tokens",
		"Plan the method display_yourself that answers it", // the full prompt
		`"intent":"answer display_yourself`,                // the full answer
		"step 3: synthesize (attempt 1) by ROBIN", "code (attempt 1)", "def display_yourself(self):",
		"provenance", "installed: genesis.display_yourself at", "previous:  nothing (batos method revert genesis display_yourself restores it)",
	} {
		if !strings.Contains(show, want) {
			t.Errorf("cycle show lacks %q:\n%s", want, show)
		}
	}

	// -handle: the cycle's number at once; the cycle answers later.
	out = mustRun(t, "-image", img, "send", "-handle", "genesis", "summarize_yourself")
	if out != "learning: started cycle 2; it answers the message when done (batos cycle show 2)\n" {
		t.Errorf("send -handle: %q", out)
	}
	eventually(t, "cycle 2 to answer", func() bool { v := showCycleJSON(t, img, 2); return v.State == "COMPLETE" && v.Answer != "" })
	if v := showCycleJSON(t, img, 2); v.Answer != `"I am genesis, and I learned summarize_yourself"` || !v.Deliver || v.Provenance == nil || !v.Provenance.Current {
		t.Errorf("cycle 2: %+v", v)
	}

	// The seed's initiate_cognitive_cycle, and the kinds of learning errors.
	c, err := zmqbridge.Dial(reqAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	call := func(command string, args map[string]any) (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return c.Call(ctx, command, args)
	}
	// The brief teaches a method genesis has: the old one is kept for revert.
	mustRun(t, "-image", img, "eval", "genesis.describe_briefly = method(\"def describe_briefly(self):\\n    return 'old'\")")
	res, err := call("initiate_cognitive_cycle", map[string]any{"target_oid": "genesis", "mission_brief": "learn to describe yourself briefly"})
	if m, _ := res.(map[string]any); err != nil || m["cycle"] != int64(3) {
		t.Fatalf("initiate_cognitive_cycle: %v %v, want cycle 3", res, err)
	}
	eventually(t, "the brief's cycle", func() bool { return showCycleJSON(t, img, 3).State == "COMPLETE" })
	if out := mustRun(t, "-image", img, "send", "genesis", "describe_briefly"); !strings.Contains(out, "I learned describe_briefly") {
		t.Errorf("the method the brief taught: %q", out)
	}

	code, _, errOut := batos(t, "-image", img, "send", "genesis", "never_works")
	if code != 1 || !strings.Contains(errOut, "learning failed: cycle 4 could not learn never_works") {
		t.Errorf("send never_works: exit %d %q", code, errOut)
	}
	if v := showCycleJSON(t, img, 4); v.State != "FAILED" || len(v.Failures) != 3 || !strings.Contains(v.Failures[2].Message, "names genesis") {
		t.Errorf("cycle 4: %s, %d failures %+v", v.State, len(v.Failures), v.Failures)
	}
	_, err = call("send", map[string]any{"target": "genesis", "selector": "never_works", "learn": "wait"})
	if re := (*command.Error)(nil); !errors.As(err, &re) || re.Kind != command.KindLearningFailed {
		t.Errorf("never_works over the bridge: %v, want learning_failed", err)
	}

	// A cycle still learning when the send gives up; cancel; retry.
	mind.Hold("slow_thing")
	code, _, errOut = batos(t, "-image", img, "send", "-learn-timeout", "300ms", "genesis", "slow_thing")
	if code != 1 || !strings.Contains(errOut, "still learning: cycle 6 is") || !strings.Contains(errOut, "batos cycle show 6") {
		t.Errorf("send -learn-timeout: exit %d %q", code, errOut)
	}
	mind.waitAsked(t, "slow_thing")
	if out := mustRun(t, "-image", img, "cycle", "cancel", "6"); out != "cycle 6 cancelled (it was SYNTHESIZING); nothing was installed\n" {
		t.Errorf("cycle cancel: %q", out)
	}
	if code, _, errOut := batos(t, "-image", img, "cycle", "cancel", "6"); code != 1 || !strings.Contains(errOut, "already FAILED") {
		t.Errorf("cancel twice: exit %d %q", code, errOut)
	}
	if code, _, errOut := batos(t, "-image", img, "cycle", "retry", "1"); code != 1 || !strings.Contains(errOut, "cycle 1 is COMPLETE; only a FAILED cycle can be retried") {
		t.Errorf("retry a COMPLETE cycle: exit %d %q", code, errOut)
	}
	if code, _, errOut := batos(t, "-image", img, "cycle", "show", "99"); code != 1 || !strings.Contains(errOut, "no such cycle") {
		t.Errorf("show an unknown cycle: exit %d %q", code, errOut)
	}
	mind.Release("slow_thing")
	out = mustRun(t, "-image", img, "cycle", "retry", "c6")
	if out != "cycle 6 COMPLETE: installed genesis.slow_thing (attempt 2)\n" {
		t.Errorf("cycle retry: %q", out)
	}
	if n := mind.callsOf("BRICK", "slow_thing"); n != 1 {
		t.Errorf("BRICK was asked %d times for slow_thing; the retry must reuse the recorded plan", n)
	}
	list = mustRun(t, "-image", img, "cycle", "list", "-n", "2")
	if lines := strings.Split(strings.TrimSpace(list), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[1], "6 ") || !strings.HasPrefix(lines[2], "5 ") {
		t.Errorf("cycle list -n 2, newest first:\n%s", list)
	}

	// Revert (on the closed image) restores the method the brief replaced.
	stop()
	if out := mustRun(t, "-image", img, "method", "revert", "genesis", "describe_briefly"); !strings.Contains(out, "reverted genesis.describe_briefly to the previous method") {
		t.Errorf("method revert: %q", out)
	}
	if out := mustRun(t, "-image", img, "send", "genesis", "describe_briefly"); out != "\"old\"\n" {
		t.Errorf("after revert describe_briefly() = %q", out)
	}
}

// TestCycleCommandsOnAClosedImage: with no server, list and show read
// the image, cancel records the cancellation, retry runs the cycle here
// through the recorded inference server, and method revert restores
// what a cycle replaced.
func TestCycleCommandsOnAClosedImage(t *testing.T) {
	mind, _, llmFlags := startMind(t)
	img := filepath.Join(t.TempDir(), "live_image.db")
	_, _, stop := startRun(t, img, llmFlags...)
	mustRun(t, "-image", img, "send", "genesis", "display_yourself")
	mind.Hold("stuck_thing")
	if out := mustRun(t, "-image", img, "send", "-handle", "genesis", "stuck_thing"); !strings.Contains(out, "started cycle 2") {
		t.Fatalf("send -handle: %q", out)
	}
	mind.waitAsked(t, "stuck_thing")
	stop() // the cycle stops where it is

	if v := showCycleJSON(t, img, 2); v.State != "SYNTHESIZING" || v.StepCount != 2 {
		t.Fatalf("cycle 2 after the server stopped: %s with %d steps", v.State, v.StepCount)
	}
	var views []command.CycleView
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "cycle", "list", "-json", "-all")), &views); err != nil || len(views) != 2 || views[0].ID != 2 {
		t.Fatalf("cycle list -json: %v %+v", err, views)
	}
	if out := mustRun(t, "-image", img, "cycle", "cancel", "2"); !strings.Contains(out, "cycle 2 cancelled (it was SYNTHESIZING)") {
		t.Errorf("cancel on a closed image: %q", out)
	}
	if v := showCycleJSON(t, img, 2); v.State != "FAILED" || v.Reason != "cancelled" || v.FailedIn != "SYNTHESIZING" {
		t.Errorf("after cancel: %s in %s: %q", v.State, v.FailedIn, v.Reason)
	}

	// Retry here, through the server batos run recorded.
	mind.Release("stuck_thing")
	out := mustRun(t, "-image", img, "cycle", "retry", "2")
	if !strings.Contains(out, "cycle 2 COMPLETE: installed genesis.stuck_thing (attempt 2)") || !strings.Contains(out, `answered genesis.stuck_thing(): "I am genesis, and I learned stuck_thing"`) {
		t.Errorf("retry on a closed image: %q", out)
	}
	if n := mind.callsOf("BRICK", "stuck_thing"); n != 1 {
		t.Errorf("BRICK asked %d times for stuck_thing", n)
	}

	// Revert: the slot held nothing before the cycle.
	if out := mustRun(t, "-image", img, "method", "revert", "genesis", "display_yourself"); !strings.Contains(out, "reverted genesis.display_yourself to nothing (the slot was removed) in transaction") {
		t.Errorf("method revert: %q", out)
	}
	if v := showCycleJSON(t, img, 1); v.Provenance == nil || v.Provenance.Current {
		t.Errorf("after revert, cycle 1's provenance: %+v", v.Provenance)
	}
	for _, args := range [][]string{
		{"method", "revert", "genesis", "display_yourself"},
		{"method", "revert", "genesis", "describe"}, // batos's own method: no cycle installed it
	} {
		if code, _, errOut := batos(t, append([]string{"-image", img}, args...)...); code != 1 || !strings.Contains(errOut, "no previous version") {
			t.Errorf("%v: exit %d %q", args, code, errOut)
		}
	}
	if code, _, errOut := batos(t, "-image", img, "method", "revert", "nobody", "x"); code != 1 || !strings.Contains(errOut, "nobody") {
		t.Errorf("revert on an unknown target: exit %d %q", code, errOut)
	}
	if out := mustRun(t, "-image", img, "verify"); !strings.Contains(out, "ok") {
		t.Errorf("verify: %q", out)
	}
}

// TestCycleUsage: wrong arguments are usage errors, caught before the
// image is touched.
func TestCycleUsage(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	for name, args := range map[string][]string{
		"cycle alone":           {"cycle"},
		"cycle unknown":         {"cycle", "frob"},
		"show no id":            {"cycle", "show"},
		"show bad id":           {"cycle", "show", "first"},
		"show zero":             {"cycle", "show", "0"},
		"show two ids":          {"cycle", "show", "1", "2"},
		"list argument":         {"cycle", "list", "x"},
		"list negative":         {"cycle", "list", "-n", "-1"},
		"retry bad timeout":     {"cycle", "retry", "-timeout", "0s", "1"},
		"cancel no id":          {"cycle", "cancel"},
		"revert one arg":        {"method", "revert", "genesis"},
		"method unknown":        {"method", "frob"},
		"send negative timeout": {"send", "-learn-timeout", "-1s", "genesis", "x"},
		"send handle timeout":   {"send", "-handle", "-learn-timeout", "1s", "genesis", "x"},
	} {
		if code, _, errOut := batos(t, append([]string{"-image", img}, args...)...); code != 2 {
			t.Errorf("%s: exit %d (%q), want 2", name, code, errOut)
		}
	}
	if out := mustRun(t, "-image", img, "cycle", "list"); !strings.HasPrefix(out, "no cycles yet") {
		t.Errorf("cycle list on a new image: %q", out)
	}
	if out := mustRun(t, "-image", img, "cycle", "list", "-json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("cycle list -json on a new image: %q", out)
	}
	if code, _, errOut := batos(t, "-image", img, "cycle", "retry", "1"); code != 1 || !strings.Contains(errOut, "no such cycle") {
		t.Errorf("retry an unknown cycle: exit %d %q", code, errOut)
	}
}

// On a closed image, send and eval learn through the server batos run
// recorded, without resuming other cycles.
func TestLearnOnAClosedImage(t *testing.T) {
	mind, _, llmFlags := startMind(t)
	img := filepath.Join(t.TempDir(), "live_image.db")
	_, _, stop := startRun(t, img, llmFlags...)
	mind.Hold("left_open")
	if out := mustRun(t, "-image", img, "send", "-handle", "genesis", "left_open"); !strings.Contains(out, "started cycle 1") {
		t.Fatalf("send -handle: %q", out)
	}
	mind.waitAsked(t, "left_open")
	stop()

	out := mustRun(t, "-image", img, "send", "genesis", "display_yourself")
	if !strings.Contains(out, `"I am genesis, and I learned display_yourself"`) {
		t.Errorf("send on the closed image: %q", out)
	}
	if out := mustRun(t, "-image", img, "eval", "genesis.display_yourself()"); !strings.Contains(out, "I learned display_yourself") {
		t.Errorf("eval: %q", out)
	}
	// The cycle left open by the server stays for the server to resume.
	if v := showCycleJSON(t, img, 1); v.State == "COMPLETE" || v.State == "FAILED" {
		t.Errorf("cycle 1 was run by a one-shot send: %s", v.State)
	}
	if out := mustRun(t, "-image", img, "send", "-handle", "genesis", "later_thing"); !strings.Contains(out, "when batos run serves the image") {
		t.Errorf("send -handle on a closed image: %q", out)
	}
}

// A send waiting over the bridge for a cycle returns as soon as the
// server holding the image dies (SIGKILL), with an error saying so,
// instead of waiting out its eleven minutes for a reply that cannot come.
func TestHostileSendReturnsWhenTheServerDies(t *testing.T) {
	exe := batosBinary(t)
	mind, _, llmFlags := startMind(t)
	img := filepath.Join(t.TempDir(), "live_image.db")
	server := exec.Command(exe, append([]string{"-image", img, "run", "-listen", "tcp://127.0.0.1:*", "-events", "tcp://127.0.0.1:*", "-http", "off"}, llmFlags...)...)
	var out, errOut syncBuffer
	server.Stdout, server.Stderr = &out, &errOut
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			server.Process.Kill()
			server.Wait()
		}
	}
	defer kill()
	eventually(t, "batos run to serve", func() bool { return strings.Contains(out.String(), "serving") })

	mind.Hold("never_answered")
	defer mind.Release("never_answered")
	type result struct {
		code   int
		stderr string
	}
	done := make(chan result, 1)
	go func() {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"-image", img, "send", "genesis", "never_answered"}, &stdout, &stderr)
		done <- result{code, stderr.String()}
	}()
	mind.waitAsked(t, "never_answered")
	kill()
	select {
	case r := <-done:
		if r.code != 1 || !strings.Contains(r.stderr, "the server stopped before answering send") {
			t.Errorf("send after the server died: exit %d %q", r.code, r.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("send still waits 20 s after its server died; server's log:\n%s", errOut.String())
	}
}

// -learn-timeout longer than the bridge's timeout_ms can carry (24 days)
// waits that long over the bridge, as it would on a closed image, rather
// than failing with an error about a request field the user never wrote.
func TestHostileLongLearnTimeoutOverTheBridge(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	_, _, stop := startRun(t, img)
	defer stop()
	code, out, errOut := batos(t, "-image", img, "send", "-learn-timeout", "1000h", "genesis", "describe")
	if code != 0 || out == "" {
		t.Errorf("send -learn-timeout 1000h: exit %d %q %q", code, out, errOut)
	}
}

// cycle retry reports each message the cycle answers itself as it ended:
// a delivery that failed is not "answered".
func TestHostileRetryReportsDeliveriesAsTheyEnded(t *testing.T) {
	var out bytes.Buffer
	v := &command.CycleView{ID: 3, State: "COMPLETE", ReceiverName: "genesis", Selector: "x", Attempt: 1, Call: "genesis.x(1)", Answer: "error: boom",
		Deliveries: []command.DeliveryView{{Call: "genesis.x(1)", State: "failed", Answer: "error: boom"}, {Call: "genesis.x(2)", State: "answered", Answer: "2"}}}
	if err := reportRetry(&env{stdout: &out}, v, nil, time.Minute, false); err != nil {
		t.Fatal(err)
	}
	want := "cycle 3 COMPLETE: installed genesis.x (attempt 1)\nfailed genesis.x(1): error: boom\nanswered genesis.x(2): 2\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}
