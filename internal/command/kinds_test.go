package command_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"batos/internal/catalog"
	"batos/internal/catalog/library"
	"batos/internal/command"
	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
)

// TestKindOf: every error the layers below return is classified as the
// protocol's table says, wrapped or not, and an error that came back from
// a server keeps its kind.
func TestKindOf(t *testing.T) {
	noSpace := &store.NoSpaceError{Path: "/img.wal", Op: "write-ahead log", Err: errors.New("ENOSPC")}
	cases := []struct {
		err  error
		kind command.Kind
	}{
		{command.ErrBadRequest, command.KindBadRequest},
		{fmt.Errorf("x: %w", cycle.ErrState), command.KindBadRequest},
		{cycle.ErrMission, command.KindBadRequest},
		{command.ErrUnknownCommand, command.KindUnknownCommand},
		{image.ErrNoTarget, command.KindNotFound},
		{store.ErrNotFound, command.KindNotFound},
		{store.ErrNoTransaction, command.KindNotFound},
		{cycle.ErrNoCycle, command.KindNotFound},
		{vm.ErrNoMind, command.KindNoMind},
		{&vm.LimitError{Limit: vm.StepLimit}, command.KindLimit},
		{store.ErrTooLarge, command.KindLimit},
		{store.ErrConflict, command.KindConflict},
		{&vm.Error{Msg: "boom"}, command.KindMethodError},
		{command.ErrShuttingDown, command.KindShuttingDown},
		{cycle.ErrClosed, command.KindShuttingDown},
		{&command.LearningError{Cycle: 3, Err: cycle.ErrClosed}, command.KindShuttingDown},
		{&command.LearningError{Cycle: 3, Err: fmt.Errorf("%w: x", command.ErrLearningFailed)}, command.KindLearningFailed},
		{&command.LearningError{Cycle: 3, Err: errors.New("context deadline exceeded")}, command.KindStillLearning},
		{fmt.Errorf("commit: %w", noSpace), command.KindNoSpace},
		{store.ErrCorrupt, command.KindCorrupt},
		{store.ErrReadOnly, command.KindReadOnly},
		{fmt.Errorf("commit: %w", store.ErrUnavailable), command.KindUnavailable},
		{fmt.Errorf("commit: %w", store.ErrOutcomeUnknown), command.KindOutcomeUnknown},
		{errors.New("something else"), command.KindInternal},
		{&command.Error{Kind: command.KindConflict, Message: "remote"}, command.KindConflict},
		{fmt.Errorf("show: %w: \"d1\"", catalog.ErrNoDocument), command.KindNotFound},
		{fmt.Errorf("%w: the text is 20 MiB", catalog.ErrTooLarge), command.KindLimit},
		{fmt.Errorf("%w: x has no text", catalog.ErrEmpty), command.KindBadRequest},
		{fmt.Errorf("%w: the query has no words", library.ErrQuery), command.KindBadRequest},
		{&store.UndoError{TID: 5, Changed: map[store.OID]store.TID{3: 6}}, command.KindConflict},
		{fmt.Errorf("undo: %w", &store.UndoError{TID: 5, Reason: "it created the root"}), command.KindBadRequest},
		{fmt.Errorf("eval: %w", context.Canceled), command.KindCancelled},
		{fmt.Errorf("by the client: %w", command.ErrCancelled), command.KindCancelled},
		// A request the stopping server cancelled is shutting_down.
		{fmt.Errorf("%w: %w", command.ErrShuttingDown, context.Canceled), command.KindShuttingDown},
	}
	for _, tc := range cases {
		if got := command.KindOf(tc.err); got != tc.kind {
			t.Errorf("KindOf(%v) = %s, want %s", tc.err, got, tc.kind)
		}
	}
}

// TestRemoteErrorMatchesItsSentinel: an error reply matches the sentinel
// of its kind, so callers classify it as they would the local error;
// kind limit matches neither of the limits' sentinels.
func TestRemoteErrorMatchesItsSentinel(t *testing.T) {
	for kind, sentinel := range map[command.Kind]error{
		command.KindNoSpace: store.ErrNoSpace, command.KindCorrupt: store.ErrCorrupt, command.KindReadOnly: store.ErrReadOnly,
		command.KindConflict: store.ErrConflict, command.KindNoMind: vm.ErrNoMind, command.KindNotFound: command.ErrNotFound,
		command.KindBadRequest: command.ErrBadRequest, command.KindShuttingDown: command.ErrShuttingDown,
		command.KindCancelled: command.ErrCancelled, command.KindUnavailable: store.ErrUnavailable,
		command.KindOutcomeUnknown: store.ErrOutcomeUnknown,
		command.KindLearningFailed: command.ErrLearningFailed, command.KindStillLearning: command.ErrStillLearning,
	} {
		err := fmt.Errorf("call: %w", &command.Error{Kind: kind, Message: "m"})
		if !errors.Is(err, sentinel) {
			t.Errorf("a %s reply does not match %v", kind, sentinel)
		}
		if errors.Is(err, store.ErrTooLarge) {
			t.Errorf("a %s reply matches store.ErrTooLarge", kind)
		}
	}
	if errors.Is(&command.Error{Kind: command.KindLimit}, store.ErrTooLarge) {
		t.Error("a limit reply matches store.ErrTooLarge")
	}
}

// TestCycleAndPathOf: the cycle and the file an error is about, local or
// remote.
func TestCycleAndPathOf(t *testing.T) {
	le := fmt.Errorf("send: %w", &command.LearningError{Cycle: 9, Err: errors.New("deadline")})
	if command.CycleOf(le) != 9 || command.CycleOf(errors.New("x")) != 0 {
		t.Errorf("CycleOf: %d", command.CycleOf(le))
	}
	if command.CycleOf(&command.Error{Cycle: 4}) != 4 {
		t.Error("CycleOf a reply")
	}
	ns := fmt.Errorf("commit: %w", &store.NoSpaceError{Path: "/a/img.wal", Err: errors.New("ENOSPC")})
	de := &store.DamageError{Path: "/a/img.db"}
	if command.PathOf(ns) != "/a/img.wal" || command.PathOf(de) != "/a/img.db" || command.PathOf(&command.Error{Path: "/p"}) != "/p" || command.PathOf(errors.New("x")) != "" {
		t.Errorf("PathOf: %q %q", command.PathOf(ns), command.PathOf(de))
	}
}

// TestRequestChecks: what no server can carry out is refused as a bad
// request before anything runs.
func TestRequestChecks(t *testing.T) {
	for _, r := range []command.SendRequest{
		{Target: "genesis"},
		{Target: "genesis", Selector: "x", Learn: command.Learn{Handle: true, Timeout: time.Second}},
		{Target: "genesis", Selector: "x", Learn: command.Learn{Timeout: -time.Second}},
	} {
		if err := r.Check(); command.KindOf(err) != command.KindBadRequest {
			t.Errorf("%+v: %v, want bad_request", r, err)
		}
	}
	if err := (command.SendRequest{Target: "genesis", Selector: "x", Learn: command.Learn{Handle: true}}).Check(); err != nil {
		t.Errorf("a handle send: %v", err)
	}
	if err := (command.PackRequest{}).Check(); command.KindOf(err) != command.KindBadRequest {
		t.Errorf("an empty pack: %v, want bad_request", err)
	}
	if err := (command.PackRequest{Compact: true}).Check(); err != nil {
		t.Errorf("a compaction alone: %v", err)
	}
}

// TestLearningHandleRoundTrip: the handle a send answers is read back as
// such, and no other dict passes for one.
func TestLearningHandleRoundTrip(t *testing.T) {
	res, err := command.LearningHandle(12, true)
	if err != nil {
		t.Fatal(err)
	}
	if id, joined, ok := command.ParseLearningHandle(res); !ok || id != 12 || !joined {
		t.Errorf("ParseLearningHandle = %d, %v, %v", id, joined, ok)
	}
	other := &image.Dict{}
	other.Set(image.String("cycle"), image.Int(1))
	if _, _, ok := command.ParseLearningHandle(vm.Result{Value: other}); ok {
		t.Error("a dict with only a cycle passes for a handle")
	}
}
