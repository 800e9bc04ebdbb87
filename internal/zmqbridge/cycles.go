package zmqbridge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"batos/internal/image"
	"batos/internal/vm"
)

// Learning and cycles are optional capabilities of a Backend, found by
// type assertion. A Backend without Learner refuses a send's "learn" and
// "timeout_ms" with bad_request; one without CycleViewer or
// CycleController answers the cycle commands with no_mind.

// LearnOptions say how a send treats a message nothing understands: the
// send command's "learn" and "timeout_ms".
type LearnOptions struct {
	// Handle answers the cycle's handle at once instead of waiting for
	// the cycle ("learn": "handle").
	Handle bool
	// Timeout bounds the wait; zero means the backend's default.
	Timeout time.Duration
}

// Learner is a Backend whose sends learn what nothing understands, each
// send choosing how.
type Learner interface {
	SendLearning(ctx context.Context, target, selector string, args []image.Value, kwargs []image.Slot, how LearnOptions) (vm.Result, error)
}

// CycleViewer is a Backend that shows its cognitive cycles. Results are
// plain data, as for Backend.
type CycleViewer interface {
	// ListCycles lists up to limit cycles (all for 0), newest first.
	ListCycles(ctx context.Context, limit int) (any, error)
	// ShowCycle shows one cycle with every recorded step.
	ShowCycle(ctx context.Context, id int64) (any, error)
}

// CycleController is a Backend that retries and cancels cycles.
type CycleController interface {
	RetryCycle(ctx context.Context, id int64) (any, error)
	CancelCycle(ctx context.Context, id int64) (any, error)
}

// Errors a Backend may wrap so that replies carry the right kind.
var (
	// ErrLearningFailed: the cycle learning the message failed
	// (kind learning_failed).
	ErrLearningFailed = errors.New("zmqbridge: learning failed")
	// ErrStillLearning: the cycle learning the message did not finish
	// within the send's timeout (kind still_learning).
	ErrStillLearning = errors.New("zmqbridge: still learning")
)

// cycleError is an error about one cycle; its reply's error carries
// "cycle": the ID, so a client can follow the cycle. An ID of 0 names
// no cycle, and the reply carries none.
type cycleError interface {
	error
	CycleID() int64
}

// errNoCycles answers cycle commands on a backend that keeps none.
var errNoCycles = fmt.Errorf("%w: this server keeps no cognitive cycles", vm.ErrNoMind)

// learnArgs reads a send's "learn" and "timeout_ms"; given says whether
// either was there.
func learnArgs(req map[string]any) (how LearnOptions, given bool, err error) {
	mode, err := stringArg(req, "learn", false)
	if err != nil {
		return how, false, err
	}
	switch {
	case req["learn"] == nil, mode == "wait":
	case mode == "handle":
		how.Handle = true
	default:
		return how, false, fmt.Errorf("%w: \"learn\" must be \"wait\" or \"handle\", got %q", ErrBadRequest, clipArg(mode))
	}
	if v := req["timeout_ms"]; v != nil {
		ms, ok := v.(int64)
		if !ok || ms < 0 || ms > math.MaxInt32 {
			return how, false, fmt.Errorf("%w: \"timeout_ms\" must be a non-negative integer of milliseconds (at most %d), got %s", ErrBadRequest, math.MaxInt32, argText(v))
		}
		if how.Handle {
			return how, false, fmt.Errorf("%w: \"timeout_ms\" bounds a wait, and \"learn\": \"handle\" does not wait", ErrBadRequest)
		}
		how.Timeout = time.Duration(ms) * time.Millisecond
	}
	return how, req["learn"] != nil || req["timeout_ms"] != nil, nil
}

// sendLearning runs a send with learning options, refusing them when the
// backend cannot learn.
func sendLearning(ctx context.Context, b Backend, target, selector string, args []image.Value, kwargs []image.Slot, how LearnOptions) (vm.Result, error) {
	l, ok := b.(Learner)
	if !ok {
		return vm.Result{}, fmt.Errorf("%w: this server cannot learn, so it takes no \"learn\" or \"timeout_ms\"", ErrBadRequest)
	}
	return l.SendLearning(ctx, target, selector, args, kwargs, how)
}

// idArg reads a cycle ID: a positive integer, or a string such as "12",
// "c12" or "#12".
func idArg(req map[string]any, name string) (int64, error) {
	v, ok := req[name]
	if !ok || v == nil {
		return 0, fmt.Errorf("%w: %q is required", ErrBadRequest, name)
	}
	switch x := v.(type) {
	case int64:
		if x > 0 {
			return x, nil
		}
	case string:
		s := strings.TrimPrefix(strings.TrimPrefix(x, "#"), "c")
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%w: %q must be a cycle ID (a positive integer, or a string like \"c12\"), got %s", ErrBadRequest, name, argText(v))
}

// argText shows a bad argument briefly.
func argText(v any) string {
	switch x := v.(type) {
	case int64, float64, bool:
		return fmt.Sprintf("%s %v", typeName(v), x)
	case string:
		return fmt.Sprintf("the string %q", clipArg(x))
	}
	return typeName(v)
}

func clipArg(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func init() {
	commands["cycle_list"] = func(ctx context.Context, b Backend, req map[string]any) (any, error) {
		limit, err := intArg(req, "limit", 20)
		if err != nil {
			return nil, err
		}
		v, ok := b.(CycleViewer)
		if !ok {
			return nil, errNoCycles
		}
		return v.ListCycles(ctx, limit)
	}
	commands["cycle_show"] = func(ctx context.Context, b Backend, req map[string]any) (any, error) {
		id, err := idArg(req, "cycle")
		if err != nil {
			return nil, err
		}
		v, ok := b.(CycleViewer)
		if !ok {
			return nil, errNoCycles
		}
		return v.ShowCycle(ctx, id)
	}
	commands["cycle_retry"] = func(ctx context.Context, b Backend, req map[string]any) (any, error) {
		id, err := idArg(req, "cycle")
		if err != nil {
			return nil, err
		}
		c, ok := b.(CycleController)
		if !ok {
			return nil, errNoCycles
		}
		return c.RetryCycle(ctx, id)
	}
	commands["cycle_cancel"] = func(ctx context.Context, b Backend, req map[string]any) (any, error) {
		id, err := idArg(req, "cycle")
		if err != nil {
			return nil, err
		}
		c, ok := b.(CycleController)
		if !ok {
			return nil, errNoCycles
		}
		return c.CancelCycle(ctx, id)
	}
}
