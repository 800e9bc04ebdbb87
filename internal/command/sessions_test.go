package command_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/command"
	"batos/internal/uvm/uvmtest"
)

// TestEvalSessions: evals naming a session see its earlier inputs'
// variables and functions, a failed input leaves it as it was, other
// sessions and evals naming none see nothing of it, and root names are
// bound anew each input.
func TestEvalSessions(t *testing.T) {
	ctx := context.Background()
	svc := command.NewLocal(uvmtest.Open(t, nil), "tester")
	steps := []struct {
		session, code string
		repr          string // "" when the eval must fail
	}{
		{"a", "x = 40", "None"},
		{"a", "def twice(n):\n    return 2 * n\n", "None"},
		{"a", "twice(x) + 2", "82"},
		{"a", "x = 1\nfail('not saved')", ""},
		{"a", "x", "40"},
		{"b", "x", ""},
		{"", "twice(1)", ""},
		{"b", "x = 'b'", "None"},
		{"a", "genesis = 3", "None"},
		{"a", "genesis.describe != None and x == 40", "True"},
		{"b", "x", `"b"`},
	}
	for _, s := range steps {
		res, err := svc.Eval(ctx, command.EvalRequest{Code: s.code, Session: s.session})
		switch {
		case s.repr == "" && err == nil:
			t.Errorf("session %q, %q: got %s, want an error", s.session, s.code, res.Repr)
		case s.repr != "" && (err != nil || res.Repr != s.repr):
			t.Errorf("session %q, %q: got %s, %v, want %s", s.session, s.code, res.Repr, err, s.repr)
		}
	}
	_, err := svc.Eval(ctx, command.EvalRequest{Code: "1", Session: strings.Repeat("s", command.MaxSessionID+1)})
	if !errors.Is(err, command.ErrBadRequest) {
		t.Errorf("a session id too long: got %v, want bad_request", err)
	}
}

// TestEvalSessionOneAtATime: evals of one session run one after the
// other, so none loses another's variable; different sessions run at
// once.
func TestEvalSessionOneAtATime(t *testing.T) {
	ctx := context.Background()
	svc := command.NewLocal(uvmtest.Open(t, nil), "tester")
	if _, err := svc.Eval(ctx, command.EvalRequest{Code: "n = 0", Session: "s"}); err != nil {
		t.Fatal(err)
	}
	const evals = 20
	var wg sync.WaitGroup
	for range evals {
		wg.Go(func() {
			if _, err := svc.Eval(ctx, command.EvalRequest{Code: "n += 1", Session: "s"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if res, err := svc.Eval(ctx, command.EvalRequest{Code: "n", Session: "s"}); err != nil || res.Repr != "20" {
		t.Errorf("after %d evals of n += 1: got %s, %v, want 20", evals, res.Repr, err)
	}
}

// TestEvalSessionWaitEnds: an eval waiting for its session's turn stops
// waiting when its context ends.
func TestEvalSessionWaitEnds(t *testing.T) {
	ctx := context.Background()
	svc := command.NewLocal(uvmtest.Open(t, nil), "tester")
	long, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := svc.Eval(long, command.EvalRequest{Code: "while True:\n    pass\n", Session: "s"})
		done <- err
	}()
	// Wait until the loop holds the session: another eval then waits.
	deadline := time.Now().Add(10 * time.Second)
	for {
		wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := svc.Eval(wctx, command.EvalRequest{Code: "1", Session: "s"})
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session never became busy: %v", err)
		}
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("the cancelled loop: got %v, want context.Canceled", err)
	}
	if res, err := svc.Eval(ctx, command.EvalRequest{Code: "2", Session: "s"}); err != nil || res.Repr != "2" {
		t.Errorf("after the loop: got %s, %v", res.Repr, err)
	}
}
