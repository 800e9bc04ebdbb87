package uvm_test

import (
	"batos/internal/command"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
)

// A message nothing understands, sent to (or with) an object the same
// send created, cannot be learned: the send is undone first. The error
// says so, instead of "start cycle: reference to a missing object".
func TestLearnHostileObjectOfTheSameSend(t *testing.T) {
	b := &personaBrain{}
	u := openLearning(t, b, nil)
	for _, code := range []string{`new(name = "n").display_yourself()`, `genesis.display_yourself(new(x = 1))`} {
		_, err := u.Eval(ctx, code)
		if !errors.Is(err, image.ErrDangling) || !strings.Contains(err.Error(), "create the object in a send of its own") {
			t.Errorf("%s: %v, want an explanation wrapping ErrDangling", code, err)
		}
	}
	if b.count("BRICK") != 0 {
		t.Errorf("BRICK asked %d times", b.count("BRICK"))
	}
}

// A cycle object edited into garbage does not keep the image from
// opening with a mind (it used to fail Open with "resume cycles"); it is
// logged, and the other cycles still resume.
func TestLearnHostileOpenWithUnreadableCycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live_image.db")
	b := &personaBrain{}
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: b.respond}}
	u, _, err := uvm.Open(ctx, path, &uvm.Options{Mind: server})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Send(ctx, "genesis", "display_yourself", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Eval(ctx, `set_slot(cycles.c1, "id", "garbage")`); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	u, _, err = uvm.Open(ctx, path, &uvm.Options{Mind: server, MindOptions: &mind.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}})
	if err != nil {
		t.Fatalf("reopen with an unreadable cycle: %v", err)
	}
	defer u.Close()
	if !strings.Contains(logs.String(), `slot id is \"garbage\"`) {
		t.Errorf("log %q does not report the unreadable cycle", logs.String())
	}
	// Learning still works.
	if res, err := u.Send(ctx, "traits", "display_yourself", nil, nil); err != nil || !strings.HasPrefix(res.Repr, `"I am `) {
		t.Errorf("send after reopening: %s %v", res.Repr, err)
	}
}

// Shutdown while a send waits for its cycle: the send returns at once
// with a LearningError, and the shutdown completes.
func TestLearnHostileShutdownWhileWaiting(t *testing.T) {
	b := &personaBrain{gate: make(chan struct{})}
	defer close(b.gate)
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: b.respond}}
	u := uvmtest.Open(t, &uvm.Options{Mind: server})
	errs := make(chan error, 1)
	go func() {
		_, err := u.Send(ctx, "genesis", "display_yourself", nil, nil)
		errs <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); b.count("BRICK") == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := u.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	var le *command.LearningError
	if err := <-errs; !errors.As(err, &le) {
		t.Errorf("waiting send: %v, want a LearningError", err)
	}
	if _, err := u.Send(ctx, "genesis", "display_yourself", nil, nil); !errors.Is(err, uvm.ErrShutdown) {
		t.Errorf("send after Shutdown: %v, want ErrShutdown", err)
	}
}

// A message whose selector no method can have is refused before any
// model is asked.
func TestLearnHostileBadSelectorRefused(t *testing.T) {
	b := &personaBrain{}
	u := openLearning(t, b, nil)
	for _, code := range []string{`send(genesis, "foo bar")`, `send(genesis, "ünï")`} {
		if _, err := u.Eval(ctx, code); !errors.Is(err, cycle.ErrMission) {
			t.Errorf("%s: %v, want cycle.ErrMission", code, err)
		}
	}
	if b.count("BRICK") != 0 {
		t.Errorf("BRICK asked %d times", b.count("BRICK"))
	}
}
