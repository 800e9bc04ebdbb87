package main

import (
	"batos/internal/uvm"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"batos/internal/llm/llmtest"
)

// fastMindRetry makes batos run look for its inference server every
// 50–200 ms for the test.
func fastMindRetry(t *testing.T) {
	saved := uvm.MindRetry
	t.Cleanup(func() { uvm.MindRetry = saved })
	uvm.MindRetry.First, uvm.MindRetry.Max = 50*time.Millisecond, 200*time.Millisecond
}

// TestRunBeforeItsInferenceServer is issue 10's item 11: batos run
// started with -llm while nothing answers there serves the image without
// a mind, keeps looking in the background (saying so once, not per
// try), and once the server starts on that port learns as if it had been
// there from the start: a message nothing understands is learned by the
// scripted personas over the bridge.
func TestRunBeforeItsInferenceServer(t *testing.T) {
	fastMindRetry(t)
	mind := newScriptedMind()
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Flavor: llmtest.Generic, Responder: &llmtest.Model{Respond: mind.respond}, RestartDelay: 2 * time.Second})
	fake.Restart(t) // down for 2 s, then back on the same port
	img := filepath.Join(t.TempDir(), "live_image.db")
	_, _, logs, stop := startRunLogged(t, img, "-llm", fake.URL, "-llm-api", "openai", "-model", "scripted")
	defer stop()
	if !strings.Contains(logs.String(), "no inference server yet") {
		t.Fatalf("batos run found its server at start-up, before the fake came back; the test needs it down:\n%s", logs.String())
	}
	code, _, errOut := batos(t, "-image", img, "send", "genesis", "display_yourself")
	if mindArrived := strings.Contains(logs.String(), "mind: found"); !mindArrived && (code != 1 || !strings.Contains(errOut, "no mind: no inference server has answered yet")) {
		t.Errorf("send before the server started: exit %d %q, want no mind", code, errOut)
	}

	eventually(t, "batos run to find its server and enable the mind", func() bool { return strings.Contains(logs.String(), "mind: ready") })
	out := mustRun(t, "-image", img, "send", "genesis", "display_yourself")
	if out != "\"I am genesis, and I learned display_yourself\"\n" {
		t.Fatalf("send once the server started: %q, want the learned method's answer", out)
	}
	if mind.callsOf("BRICK", "display_yourself") != 1 || len(fake.Requests()) == 0 {
		t.Errorf("BRICK planned display_yourself %d times, the fake saw %d requests", mind.callsOf("BRICK", "display_yourself"), len(fake.Requests()))
	}
	if out := mustRun(t, "-image", img, "cycle", "list"); !strings.Contains(out, "COMPLETE") {
		t.Errorf("cycle list:\n%s", out)
	}
	log := logs.String()
	if n := strings.Count(log, "no inference server yet"); n != 1 {
		t.Errorf("batos run said %d times that it has no server, want once:\n%s", n, log)
	}
	if n := strings.Count(log, "mind: found"); n != 1 {
		t.Errorf("batos run said %d times that it found its server, want once:\n%s", n, log)
	}
	if strings.Count(log, "level=WARN") != 1 || strings.Contains(log, "level=ERROR") {
		t.Errorf("batos run's log has warnings or errors beyond the one about the missing server:\n%s", log)
	}
}

// TestRunStopsWhileLookingForItsMind: batos run whose inference server
// never starts stops promptly and cleanly on Ctrl-C, search and all.
func TestRunStopsWhileLookingForItsMind(t *testing.T) {
	fastMindRetry(t)
	img := filepath.Join(t.TempDir(), "live_image.db")
	url := "http://" + strings.TrimPrefix(freeTCP(t), "tcp://")
	_, _, logs, stop := startRunLogged(t, img, "-llm", url)
	if !strings.Contains(logs.String(), "no inference server yet") {
		t.Fatalf("batos run found a server at %s:\n%s", url, logs.String())
	}
	time.Sleep(500 * time.Millisecond) // a few tries in the background
	start := time.Now()
	stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("batos run took %v to stop while looking for its server", d)
	}
	if n := strings.Count(logs.String(), "no inference server yet"); n != 1 {
		t.Errorf("said %d times that it has no server, want once:\n%s", n, logs.String())
	}
	if out := mustRun(t, "-image", img, "stats"); !strings.Contains(out, "objects") {
		t.Errorf("the image after the stop: %q", out)
	}
}
