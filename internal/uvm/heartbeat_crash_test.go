package uvm_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/heartbeat"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/uvm"
)

// The environment of TestCrashImproveChild, set only in the child
// TestCrashDuringImprovement starts and kills.
const (
	crashImproveImageEnv = "BATOS_IMPROVE_CRASH_IMAGE"
	crashImproveURLEnv   = "BATOS_IMPROVE_CRASH_URL"
)

// improveCrashBrain is auditBrain whose first ROBIN call never answers
// (its process is killed meanwhile); it counts the calls per persona.
type improveCrashBrain struct {
	auditBrain
	mu      sync.Mutex
	robin   int
	blocked chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *improveCrashBrain) respond(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	if llmtest.Persona(req) == "ROBIN" {
		b.mu.Lock()
		b.robin++
		first := b.robin == 1
		b.mu.Unlock()
		if first {
			close(b.blocked)
			select {
			case <-b.release:
			case <-ctx.Done():
			}
			return llmtest.Reply{}, errors.New("the asker was killed")
		}
	}
	return b.auditBrain.respond(ctx, req)
}

// TestCrashDuringImprovement: SIGKILL while ROBIN writes an improvement
// cycle's replacement; the restarted image resumes the cycle from its
// recorded plan (BRICK is not asked again, nor ALFRED for the audit),
// and the proposal ends applied.
func TestCrashDuringImprovement(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a child process")
	}
	brain := &improveCrashBrain{auditBrain: auditBrain{kind: "fix", plan: fixPlan, methods: []string{fixedAverage}},
		blocked: make(chan struct{}), release: make(chan struct{})}
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: &llmtest.Model{Respond: brain.respond}, Flavor: llmtest.Generic})
	t.Cleanup(func() { brain.once.Do(func() { close(brain.release) }) })
	path := filepath.Join(t.TempDir(), "live_image.db")

	// The image: calc.average called with good and bad lists, policy auto.
	u, _, err := uvm.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Eval(t.Context(), `root.calc = new(None, name = "calc")
heartbeat.policy = "auto"`); err != nil {
		t.Fatal(err)
	}
	if err := setMethod(t, u, "calc", "average", averageSource); err != nil {
		t.Fatal(err)
	}
	callAverages(t, u, append(goodCalls, badCalls...), 1)
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashImproveChild$")
	cmd.Env = append(os.Environ(), crashImproveImageEnv+"="+path, crashImproveURLEnv+"="+fake.URL)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-brain.blocked:
	case err := <-exited:
		t.Fatalf("the child exited before ROBIN was asked: %v\n%s", err, out.String())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("ROBIN was not asked within 30s\n%s", out.String())
	}
	cmd.Process.Kill()
	var ee *exec.ExitError
	if err := <-exited; !errors.As(err, &ee) || !killedBySIGKILL(ee) {
		t.Fatalf("child ended with %v, want killed by SIGKILL\n%s", err, out.String())
	}
	brain.once.Do(func() { close(brain.release) })

	server, err := mind.Connect(t.Context(), mind.ServerConfig{URL: fake.URL, API: mind.APIOpenAI, Model: "scripted"})
	if err != nil {
		t.Fatal(err)
	}
	u, _, err = uvm.Open(t.Context(), path, &uvm.Options{Mind: server})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	beat, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); u.RunHeartbeat(beat, 0) }()
	a, err := u.Heartbeat().Wait(ctx, 1)
	stop()
	<-done
	if err != nil {
		t.Fatalf("wait for the audit after the restart: %v", err)
	}
	if p := a.Proposals[0]; p.Status != heartbeat.ProposalApplied {
		t.Fatalf("after the restart the proposal is %s: %s", p.Status, p.Reason)
	}
	if !strings.Contains(averageSourceNow(t, u).Source, "return 0.0") {
		t.Fatal("the fix is not installed after the restart")
	}
	brain.auditBrain.mu.Lock()
	asked := brain.auditBrain.asked
	brain.auditBrain.mu.Unlock()
	if asked["BRICK"] != 1 || asked["ALFRED"] != 1 || asked["ROBIN"] != 1 || brain.robin != 2 {
		t.Fatalf("calls per persona %v, ROBIN asked %d times; want BRICK and ALFRED once, ROBIN twice (the killed call again)", asked, brain.robin)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	verifyImage(t, path)
}

// TestCrashImproveChild is the process TestCrashDuringImprovement kills:
// it audits the image, whose proposal starts an improvement cycle, and
// waits. Without BATOS_IMPROVE_CRASH_IMAGE it does nothing.
func TestCrashImproveChild(t *testing.T) {
	path := os.Getenv(crashImproveImageEnv)
	if path == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	server, err := mind.Connect(ctx, mind.ServerConfig{URL: os.Getenv(crashImproveURLEnv), API: mind.APIOpenAI, Model: "scripted"})
	if err != nil {
		crashCycleChildFail(err)
	}
	u, _, err := uvm.Open(ctx, path, &uvm.Options{Mind: server})
	if err != nil {
		crashCycleChildFail(err)
	}
	if _, err := u.Heartbeat().Audit(ctx, "crash child"); err != nil {
		crashCycleChildFail(err)
	}
	<-ctx.Done()
	crashCycleChildFail(errors.New("not killed within 60s"))
}
