package main

import (
	"batos/internal/command"
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A send waiting over the bridge for a cycle returns as soon as the
// server holding the image dies (SIGKILL), with an error saying so,
// instead of waiting out its eleven minutes for a reply that cannot come.
func TestHostileSendReturnsWhenTheServerDies(t *testing.T) {
	exe := buildBenchBinary(t)
	mind, _, llmFlags := startMind(t)
	img := filepath.Join(t.TempDir(), "live_image.db")
	server := exec.Command(exe, append([]string{"-image", img, "run", "-listen", "tcp://127.0.0.1:*", "-events", "tcp://127.0.0.1:*"}, llmFlags...)...)
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
