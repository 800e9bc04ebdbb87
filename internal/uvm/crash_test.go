package uvm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/store/bolt"
	"batos/internal/uvm"
)

// The environment of the child process TestCrashCycleChild: the image it
// opens and the inference server it speaks to. Set only in the children
// TestCrashDuringDelegation starts and kills.
const (
	crashCycleImageEnv = "BATOS_CYCLE_CRASH_IMAGE"
	crashCycleURLEnv   = "BATOS_CYCLE_CRASH_URL"
)

// The scripted personas' answers. The plan has two sub-questions; the
// crash happens after BABS's answer is recorded and while ALFRED's is
// being asked.
const (
	crashPlan = `{"intent": "say who the receiver is", "selector": "display_yourself", "signature": "def display_yourself(self)",
 "sub_questions": [{"persona": "BABS", "question": "Which slots does genesis have?"},
                   {"persona": "ALFRED", "question": "Anything to avoid?"}],
 "tests": [{"name": "names itself", "expr": "self.display_yourself() == 'I am ' + self.name"}]}`
	crashMethod = `{"source": "def display_yourself(self):\n    \"\"\"Say who I am.\"\"\"\n    return 'I am ' + self.name\n",
 "tests": [{"name": "a string", "expr": "type(self.display_yourself()) == 'string'"}]}`
	crashBABSQuestion   = "Which slots does genesis have?"
	crashALFREDQuestion = "Anything to avoid?"
)

// The steps of the cycle, as the crash brain keys them.
var (
	crashPlanKey   = "BRICK plan"
	crashBABSKey   = "BABS: " + crashBABSQuestion
	crashALFREDKey = "ALFRED: " + crashALFREDQuestion
	crashMethodKey = "ROBIN method"
)

// crashBrain answers the seeded personas by their system prompts and
// counts, per step, the calls asked and the calls answered. The first
// time ALFRED's sub-question is asked it does not answer: the call blocks
// until release (the asking process is killed meanwhile). It is safe for
// concurrent use.
type crashBrain struct {
	mu       sync.Mutex
	asked    map[string]int
	answered map[string]int
	blocked  chan struct{} // closed when ALFRED's first call is waiting
	released chan struct{}
	release  func()
}

func newCrashBrain() *crashBrain {
	released := make(chan struct{})
	return &crashBrain{
		asked: map[string]int{}, answered: map[string]int{},
		blocked: make(chan struct{}), released: released,
		release: sync.OnceFunc(func() { close(released) }),
	}
}

func (b *crashBrain) respond(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	key, text, err := crashStep(req)
	if err != nil {
		return llmtest.Reply{}, err
	}
	b.mu.Lock()
	b.asked[key]++
	block := key == crashALFREDKey && b.asked[key] == 1
	b.mu.Unlock()
	if block {
		close(b.blocked)
		select {
		case <-b.released:
		case <-ctx.Done():
		}
		return llmtest.Reply{}, errors.New("crash brain: the asker was killed")
	}
	b.mu.Lock()
	b.answered[key]++
	b.mu.Unlock()
	return llmtest.Reply{Text: text}, nil
}

// crashStep names the step a request asks for and gives its answer.
func crashStep(req *llm.ChatRequest) (key, answer string, err error) {
	if len(req.Messages) < 2 || req.Messages[0].Role != llm.RoleSystem {
		return "", "", fmt.Errorf("crash brain: want a system prompt and a task, got %d messages", len(req.Messages))
	}
	persona := llmtest.Persona(req)
	if persona == "" {
		return "", "", errors.New("crash brain: the system prompt names no persona")
	}
	task := req.Messages[len(req.Messages)-1].Content
	switch persona {
	case "BRICK":
		return crashPlanKey, crashPlan, nil
	case "ROBIN":
		return crashMethodKey, crashMethod, nil
	}
	_, question, ok := strings.Cut(task, "Your question: ")
	if !ok {
		return "", "", fmt.Errorf("crash brain: %s was asked no sub-question: %q", persona, task)
	}
	question, _, _ = strings.Cut(question, "\n")
	return persona + ": " + question, persona + " says: genesis has a name slot; use it.", nil
}

func (b *crashBrain) counts() (asked, answered map[string]int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return copyCounts(b.asked), copyCounts(b.answered)
}

func copyCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestCrashDuringDelegation kills a process with SIGKILL while its cycle
// is DELEGATING with one sub-answer recorded, then reopens the image: the
// cycle resumes, completes, installs the method, and no step the image
// had recorded is asked of the model again.
func TestCrashDuringDelegation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a child process")
	}
	brain := newCrashBrain()
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: &llmtest.Model{Respond: brain.respond}, Flavor: llmtest.Generic})
	// Registered after the fake server, so it runs before the server
	// closes and waits for its handlers.
	t.Cleanup(brain.release)
	path := filepath.Join(t.TempDir(), "live_image.db")

	events := killCycleChild(t, path, fake.URL, brain)
	brain.release() // the blocked call's asker is dead
	t.Logf("the child printed before the kill:\n%s", events)
	if !strings.Contains(events, `"state":"DELEGATING"`) {
		t.Errorf("the child reported no transition to DELEGATING before the kill:\n%s", events)
	}
	asked, answered := brain.counts()
	if diff := cmp.Diff(answered, map[string]int{crashPlanKey: 1, crashBABSKey: 1}); diff != "" {
		t.Errorf("answered before the kill (-got +want):\n%s", diff)
	}
	if asked[crashALFREDKey] != 1 {
		t.Errorf("ALFRED's question was asked %d times before the kill, want 1 (in flight)", asked[crashALFREDKey])
	}

	crashed := crashedCycle(t, path)
	if crashed.State != cycle.Delegating {
		t.Fatalf("after the kill the cycle is %s, want DELEGATING", crashed.State)
	}
	if got, want := stepKeys(crashed), []string{"plan BRICK", "delegate 0 BABS"}; !cmp.Equal(got, want) {
		t.Fatalf("steps recorded before the kill %v, want %v", got, want)
	}

	// Restart: the cycle resumes where it was and completes.
	server, err := mind.Connect(t.Context(), mind.ServerConfig{URL: fake.URL, API: mind.APIOpenAI, Model: "scripted"})
	if err != nil {
		t.Fatal(err)
	}
	u, _, err := uvm.Open(t.Context(), path, &uvm.Options{Mind: server})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	wctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	done, err := u.Cycles().Wait(wctx, crashed.ID)
	if err != nil {
		t.Fatalf("wait for cycle %d after the restart: %v", crashed.ID, err)
	}
	if done.State != cycle.Complete {
		t.Fatalf("cycle %d ended %s: %s", done.ID, done.State, done.Reason)
	}
	if got, want := stepKeys(done), []string{"plan BRICK", "delegate 0 BABS", "delegate 1 ALFRED", "synthesize 1 ROBIN"}; !cmp.Equal(got, want) {
		t.Errorf("steps %v, want %v", got, want)
	}
	if diff := cmp.Diff(done.Steps[:2], crashed.Steps); diff != "" {
		t.Errorf("the steps recorded before the kill changed (-after +before):\n%s", diff)
	}
	res, err := u.Send(t.Context(), "genesis", "display_yourself", nil, nil)
	if err != nil || res.Repr != `"I am genesis"` {
		t.Errorf("send display_yourself: %s %v, want the installed method's answer", res.Repr, err)
	}
	checkProvenance(t, u, done.ID)

	asked, answered = brain.counts()
	want := map[string]int{crashPlanKey: 1, crashBABSKey: 1, crashALFREDKey: 1, crashMethodKey: 1}
	if diff := cmp.Diff(answered, want); diff != "" {
		t.Errorf("answered per step (-got +want):\n%s", diff)
	}
	// Only the call the kill cut short was asked again.
	want[crashALFREDKey] = 2
	if diff := cmp.Diff(asked, want); diff != "" {
		t.Errorf("asked per step (-got +want):\n%s", diff)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	verifyImage(t, path)
}

// killCycleChild runs TestCrashCycleChild on path, waits until it has
// recorded BABS's answer while ALFRED's call is in flight, kills it with
// SIGKILL and returns the events it printed.
func killCycleChild(t *testing.T, path, url string, brain *crashBrain) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashCycleChild$")
	cmd.Env = append(os.Environ(), crashCycleImageEnv+"="+path, crashCycleURLEnv+"="+url)
	stdout := &eventLines{delegated: make(chan struct{})}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(20 * time.Second)
	for _, ready := range []chan struct{}{stdout.delegated, brain.blocked} {
		select {
		case <-ready:
		case err := <-exited:
			t.Fatalf("child exited before the kill: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		case <-deadline:
			cmd.Process.Kill()
			<-exited
			t.Fatalf("child did not reach DELEGATING with one answer recorded within 20s\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	}
	cmd.Process.Kill() // an error means it exited by itself, reported below
	err := <-exited
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !killedBySIGKILL(ee) {
		t.Fatalf("child ended with %v, want killed by SIGKILL\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("child's stderr:\n%s", stderr.String())
	}
	return stdout.String()
}

func killedBySIGKILL(ee *exec.ExitError) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// eventLines collects a child's stdout, one "event {json}" line per
// cycle event, and closes delegated at the first recorded sub-answer.
type eventLines struct {
	mu        sync.Mutex
	buf       []byte
	seen      int // bytes of buf already looked at
	once      sync.Once
	delegated chan struct{}
}

func (l *eventLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf[l.seen:], '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(l.buf[l.seen : l.seen+i])
		l.seen += i + 1
		if ev, ok := parseCrashEvent(line); ok && ev.Topic == "cycle.step" && ev.Payload["kind"] == "delegate" {
			l.once.Do(func() { close(l.delegated) })
		}
	}
}

func (l *eventLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

// crashEvent is an event as the child prints it.
type crashEvent struct {
	Topic   string         `json:"topic"`
	Payload map[string]any `json:"payload"`
}

func parseCrashEvent(line string) (crashEvent, bool) {
	var ev crashEvent
	rest, ok := strings.CutPrefix(line, "event ")
	return ev, ok && json.Unmarshal([]byte(rest), &ev) == nil
}

// crashedCycle opens the image a child was killed on without a mind,
// checks it, and returns its only cycle.
func crashedCycle(t *testing.T, path string) *cycle.Cycle {
	t.Helper()
	verifyImage(t, path)
	s, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatalf("open after the kill: %v", err)
	}
	defer s.Close()
	var cycles []*cycle.Cycle
	err = image.New(s, nil).View(t.Context(), func(tx *image.Tx) (err error) {
		cycles, err = cycle.List(tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cycles) != 1 {
		t.Fatalf("the image holds %d cycles, want 1", len(cycles))
	}
	return cycles[0]
}

// verifyImage checks every record, reference and blob of the image at
// path, and bbolt's own pages.
func verifyImage(t *testing.T, path string) {
	t.Helper()
	s, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer s.Close()
	rep, err := image.New(s, nil).Verify(t.Context())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, p := range rep.Problems {
		t.Errorf("verify: %s", p)
	}
}

// stepKeys names a cycle's recorded steps: kind, attempt or index, persona.
func stepKeys(c *cycle.Cycle) []string {
	var out []string
	for _, s := range c.Steps {
		switch s.Kind {
		case "plan":
			out = append(out, "plan "+s.Persona)
		case "delegate":
			out = append(out, fmt.Sprintf("delegate %d %s", s.Index, s.Persona))
		default:
			out = append(out, fmt.Sprintf("%s %d %s", s.Kind, s.Attempt, s.Persona))
		}
	}
	return out
}

// checkProvenance checks that genesis's display_yourself came from cycle id.
func checkProvenance(t *testing.T, u *uvm.UVM, id int64) {
	t.Helper()
	err := u.DB().View(t.Context(), func(tx *image.Tx) error {
		oid, err := tx.Resolve("genesis")
		if err != nil {
			return err
		}
		g, err := tx.Object(oid)
		if err != nil {
			return err
		}
		v, _ := g.Get("display_yourself")
		m, ok := v.(*image.Method)
		if !ok || m.Meta == nil {
			return fmt.Errorf("genesis.display_yourself is %s, want a method with provenance", image.Repr(v))
		}
		if c, _ := m.Meta.Get(image.String("cycle")); !image.Equal(c, image.Int(id)) {
			return fmt.Errorf("the method's provenance names cycle %s, want %d", image.Repr(c), id)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestCrashCycleChild is the process TestCrashDuringDelegation kills: it
// opens the image with the mind and sends genesis display_yourself,
// printing every cycle event. Without BATOS_CYCLE_CRASH_IMAGE it does
// nothing.
func TestCrashCycleChild(t *testing.T) {
	path := os.Getenv(crashCycleImageEnv)
	if path == "" {
		return
	}
	// The parent kills this process; the deadline only ends a child whose
	// parent died first.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	server, err := mind.Connect(ctx, mind.ServerConfig{URL: os.Getenv(crashCycleURLEnv), API: mind.APIOpenAI, Model: "scripted"})
	if err != nil {
		crashCycleChildFail(err)
	}
	u, _, err := uvm.Open(ctx, path, &uvm.Options{Mind: server, Events: printCrashEvent})
	if err != nil {
		crashCycleChildFail(err)
	}
	res, err := u.Send(ctx, "genesis", "display_yourself", nil, nil)
	crashCycleChildFail(fmt.Errorf("the send returned %s, %v before the kill", res.Repr, err))
}

var crashPrintMu sync.Mutex

// printCrashEvent prints an event as one line, in one write.
func printCrashEvent(topic string, payload map[string]any) {
	line, err := json.Marshal(crashEvent{Topic: topic, Payload: payload})
	if err != nil {
		crashCycleChildFail(err)
	}
	crashPrintMu.Lock()
	defer crashPrintMu.Unlock()
	os.Stdout.WriteString("event " + string(line) + "\n")
}

// crashCycleChildFail reports on stderr and exits before the parent's
// kill can hide the failure.
func crashCycleChildFail(err error) {
	fmt.Fprintf(os.Stderr, "crash child: %v\n", err)
	os.Exit(2)
}
