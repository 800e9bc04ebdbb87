package protocol

import (
	"errors"
	"testing"

	"batos/internal/command"
)

// TestServerClosing: a request arriving while the server stops is told
// so once, with the kind a client retries on.
func TestServerClosing(t *testing.T) {
	e := ErrorMap(ErrServerClosing)
	want := "the server is stopping; retry against the next one"
	if e["kind"] != string(command.KindShuttingDown) || e["message"] != want || !errors.Is(ErrServerClosing, command.ErrShuttingDown) {
		t.Errorf("got %v (matching ErrShuttingDown: %t), want shutting_down %q", e, errors.Is(ErrServerClosing, command.ErrShuttingDown), want)
	}
}
