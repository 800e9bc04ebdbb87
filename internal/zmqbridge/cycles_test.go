package zmqbridge_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/image"
	"batos/internal/uvm"
	"batos/internal/vm"
	"batos/internal/zmqbridge"
)

// learningBackend is fakeBackend that learns and keeps cycles: cycle 1
// exists, every other ID is unknown. Sends record how they were asked to
// learn; selectors "fails" and "slow" answer the learning errors.
type learningBackend struct {
	fakeBackend
	mu   sync.Mutex
	hows []zmqbridge.LearnOptions
}

// cycleErr is an error about a cycle, classified for the bridge.
type cycleErr struct {
	kind error
	id   int64
}

func (e *cycleErr) Error() string    { return fmt.Sprintf("cycle %d: %v", e.id, e.kind) }
func (e *cycleErr) Unwrap() error    { return e.kind }
func (e *cycleErr) CycleID() int64   { return e.id }
func errUnknownCycle(id int64) error { return fmt.Errorf("%w: no cycle %d", zmqbridge.ErrNotFound, id) }

func (l *learningBackend) SendLearning(ctx context.Context, target, selector string, args []image.Value, kwargs []image.Slot, how zmqbridge.LearnOptions) (vm.Result, error) {
	l.mu.Lock()
	l.hows = append(l.hows, how)
	l.mu.Unlock()
	switch selector {
	case "fails":
		return vm.Result{}, &cycleErr{zmqbridge.ErrLearningFailed, 7}
	case "slow":
		return vm.Result{}, &cycleErr{zmqbridge.ErrStillLearning, 8}
	}
	return vm.Result{Value: image.String(selector), Repr: fmt.Sprintf("%q", selector)}, nil
}

func (l *learningBackend) learned() []zmqbridge.LearnOptions {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]zmqbridge.LearnOptions(nil), l.hows...)
}

func (l *learningBackend) InitiateCycle(ctx context.Context, target, brief string) (any, error) {
	return map[string]any{"cycle": int64(2), "state": "IDLE"}, nil
}

func (l *learningBackend) ListCycles(ctx context.Context, limit int) (any, error) {
	return []any{map[string]any{"id": int64(1), "limit": int64(limit)}}, nil
}

func (l *learningBackend) ShowCycle(ctx context.Context, id int64) (any, error) {
	if id != 1 {
		return nil, errUnknownCycle(id)
	}
	return map[string]any{"id": id, "state": "COMPLETE"}, nil
}

func (l *learningBackend) RetryCycle(ctx context.Context, id int64) (any, error) {
	if id != 1 {
		return nil, errUnknownCycle(id)
	}
	return map[string]any{"cycle": id, "state": "SYNTHESIZING"}, nil
}

func (l *learningBackend) CancelCycle(ctx context.Context, id int64) (any, error) {
	if id != 1 {
		return nil, errUnknownCycle(id)
	}
	return map[string]any{"cycle": id, "state": "FAILED", "was": "DELEGATING"}, nil
}

// TestSendLearnOptions: "learn" and "timeout_ms" reach a backend that
// learns as LearnOptions; without them the plain Send runs.
func TestSendLearnOptions(t *testing.T) {
	b := &learningBackend{}
	_, addr, _ := startServer(t, b)
	d := dealer(t, addr)
	send := func(extra map[string]any) map[string]any {
		m := map[string]any{"id": int64(1), "command": "send", "target": "genesis", "selector": "x"}
		for k, v := range extra {
			m[k] = v
		}
		return req(t, d, m)
	}
	for _, extra := range []map[string]any{
		{"learn": "wait"},
		{"learn": "handle"},
		{"timeout_ms": int64(1500)},
		{"learn": "wait", "timeout_ms": int64(0)},
		{"learn": nil, "timeout_ms": nil}, // nil is absent: the plain Send
	} {
		if r := send(extra); r["ok"] != true {
			t.Errorf("send %v: %v", extra, r)
		}
	}
	want := []zmqbridge.LearnOptions{{}, {Handle: true}, {Timeout: 1500 * time.Millisecond}, {}}
	if diff := cmp.Diff(b.learned(), want); diff != "" {
		t.Errorf("learn options (-got +want):\n%s", diff)
	}
}

// TestLearningErrorKinds: a failed and an unfinished cycle get their own
// kinds, and the reply names the cycle.
func TestLearningErrorKinds(t *testing.T) {
	_, addr, _ := startServer(t, &learningBackend{})
	d := dealer(t, addr)
	for selector, want := range map[string]struct {
		kind  string
		cycle int64
	}{
		"fails": {zmqbridge.KindLearningFailed, 7},
		"slow":  {zmqbridge.KindStillLearning, 8},
	} {
		r := req(t, d, map[string]any{"id": int64(1), "command": "send", "target": "genesis", "selector": selector, "learn": "wait"})
		e, _ := r["error"].(map[string]any)
		if r["ok"] != false || e["kind"] != want.kind || e["cycle"] != want.cycle || !strings.Contains(e["message"].(string), fmt.Sprint(want.cycle)) {
			t.Errorf("%s: got %v, want kind %s naming cycle %d", selector, r, want.kind, want.cycle)
		}
	}
}

// TestCycleCommands: the cycle commands reach a backend that keeps
// cycles; unknown IDs are not_found.
func TestCycleCommands(t *testing.T) {
	_, addr, _ := startServer(t, &learningBackend{})
	d := dealer(t, addr)
	cases := []struct {
		m    map[string]any
		want any
		kind string
	}{
		{map[string]any{"command": "cycle_list"}, []any{map[string]any{"id": int64(1), "limit": int64(20)}}, ""},
		{map[string]any{"command": "cycle_list", "limit": int64(0)}, []any{map[string]any{"id": int64(1), "limit": int64(0)}}, ""},
		{map[string]any{"command": "cycle_show", "cycle": int64(1)}, map[string]any{"id": int64(1), "state": "COMPLETE"}, ""},
		{map[string]any{"command": "cycle_show", "cycle": "c1"}, map[string]any{"id": int64(1), "state": "COMPLETE"}, ""},
		{map[string]any{"command": "cycle_show", "cycle": "#1"}, map[string]any{"id": int64(1), "state": "COMPLETE"}, ""},
		{map[string]any{"command": "cycle_retry", "cycle": int64(1)}, map[string]any{"cycle": int64(1), "state": "SYNTHESIZING"}, ""},
		{map[string]any{"command": "cycle_cancel", "cycle": int64(1)}, map[string]any{"cycle": int64(1), "state": "FAILED", "was": "DELEGATING"}, ""},
		{map[string]any{"command": "initiate_cognitive_cycle", "target_oid": "genesis", "mission_brief": "learn to count"}, map[string]any{"cycle": int64(2), "state": "IDLE"}, ""},
		{map[string]any{"command": "cycle_show", "cycle": int64(99)}, nil, zmqbridge.KindNotFound},
		{map[string]any{"command": "cycle_retry", "cycle": "99"}, nil, zmqbridge.KindNotFound},
		{map[string]any{"command": "cycle_cancel", "cycle": int64(math.MaxInt64)}, nil, zmqbridge.KindNotFound},
	}
	for i, tc := range cases {
		r := req(t, d, tc.m)
		if tc.kind != "" {
			if r["ok"] != false || errKind(r) != tc.kind {
				t.Errorf("%d %v: got %v, want %s", i, tc.m, r, tc.kind)
			}
			continue
		}
		if r["ok"] != true {
			t.Errorf("%d %v: got %v", i, tc.m, r)
			continue
		}
		if diff := cmp.Diff(r["result"], tc.want); diff != "" {
			t.Errorf("%d %v (-got +want):\n%s", i, tc.m, diff)
		}
	}
}

// TestHostileLearnAndCycleArguments: wrong types, bad values and
// contradictions are bad_request, and nothing reaches the backend.
func TestHostileLearnAndCycleArguments(t *testing.T) {
	b := &learningBackend{}
	_, addr, _ := startServer(t, b)
	d := dealer(t, addr)
	send := map[string]any{"command": "send", "target": "genesis", "selector": "x"}
	with := func(base map[string]any, extra ...any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	cases := map[string]map[string]any{
		"learn int":             with(send, "learn", int64(1)),
		"learn bool":            with(send, "learn", true),
		"learn unknown":         with(send, "learn", "later"),
		"learn empty":           with(send, "learn", ""),
		"learn case":            with(send, "learn", "WAIT"),
		"learn huge":            with(send, "learn", strings.Repeat("h", 100000)),
		"learn array":           with(send, "learn", []any{"wait"}),
		"timeout negative":      with(send, "timeout_ms", int64(-1)),
		"timeout min":           with(send, "timeout_ms", int64(math.MinInt64)),
		"timeout huge":          with(send, "timeout_ms", int64(math.MaxInt64)),
		"timeout float":         with(send, "timeout_ms", 1.5),
		"timeout string":        with(send, "timeout_ms", "1000"),
		"timeout map":           with(send, "timeout_ms", map[string]any{}),
		"timeout with handle":   with(send, "learn", "handle", "timeout_ms", int64(10)),
		"show no cycle":         {"command": "cycle_show"},
		"show cycle zero":       {"command": "cycle_show", "cycle": int64(0)},
		"show cycle negative":   {"command": "cycle_show", "cycle": int64(-3)},
		"show cycle float":      {"command": "cycle_show", "cycle": 1.0},
		"show cycle bool":       {"command": "cycle_show", "cycle": true},
		"show cycle word":       {"command": "cycle_show", "cycle": "first"},
		"show cycle overflow":   {"command": "cycle_show", "cycle": "99999999999999999999"},
		"show cycle ref":        {"command": "cycle_show", "cycle": image.Ref(1)},
		"retry cycle array":     {"command": "cycle_retry", "cycle": []any{int64(1)}},
		"cancel cycle empty":    {"command": "cycle_cancel", "cycle": ""},
		"cancel cycle c":        {"command": "cycle_cancel", "cycle": "c"},
		"list limit negative":   {"command": "cycle_list", "limit": int64(-1)},
		"list limit string":     {"command": "cycle_list", "limit": "10"},
		"initiate brief empty":  {"command": "initiate_cognitive_cycle", "target_oid": "genesis", "mission_brief": "  \n"},
		"initiate brief int":    {"command": "initiate_cognitive_cycle", "target_oid": "genesis", "mission_brief": int64(4)},
		"initiate no brief":     {"command": "initiate_cognitive_cycle", "target_oid": "genesis"},
		"initiate target float": {"command": "initiate_cognitive_cycle", "target_oid": 1.5, "mission_brief": "x"},
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			m["id"] = name
			r := req(t, d, m)
			if r["ok"] != false || errKind(r) != zmqbridge.KindBadRequest || r["id"] != name {
				t.Errorf("got %v, want bad_request", r)
			}
		})
	}
	if got := b.learned(); len(got) != 0 {
		t.Errorf("refused sends reached the backend: %v", got)
	}
}

// TestWithoutLearning: a backend that cannot learn refuses "learn" and
// "timeout_ms", and answers the cycle commands no_mind.
func TestWithoutLearning(t *testing.T) {
	_, addr, _ := startServer(t, &fakeBackend{})
	d := dealer(t, addr)
	for _, m := range []map[string]any{
		{"command": "send", "target": "genesis", "selector": "x", "learn": "handle"},
		{"command": "send", "target": "genesis", "selector": "x", "timeout_ms": int64(5)},
	} {
		if r := req(t, d, m); errKind(r) != zmqbridge.KindBadRequest || !strings.Contains(r["error"].(map[string]any)["message"].(string), "cannot learn") {
			t.Errorf("%v: got %v, want bad_request saying it cannot learn", m, r)
		}
	}
	if r := req(t, d, map[string]any{"command": "send", "target": "genesis", "selector": "x"}); r["ok"] != true {
		t.Errorf("plain send: %v", r)
	}
	for _, m := range []map[string]any{
		{"command": "cycle_list"},
		{"command": "cycle_show", "cycle": int64(1)},
		{"command": "cycle_retry", "cycle": int64(1)},
		{"command": "cycle_cancel", "cycle": int64(1)},
	} {
		if r := req(t, d, m); errKind(r) != zmqbridge.KindNoMind {
			t.Errorf("%v: got %v, want no_mind", m, r)
		}
	}
}

// TestRealImageWithoutMind: the uvm's backend with no mind lists no
// cycles, knows none, and answers learning no_mind.
func TestRealImageWithoutMind(t *testing.T) {
	u, _, err := uvm.Open(context.Background(), filepath.Join(t.TempDir(), "img"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_, addr, _ := startServer(t, u.Backend())
	d := dealer(t, addr)
	cases := []struct {
		m    map[string]any
		kind string
	}{
		{map[string]any{"command": "cycle_list"}, ""},
		{map[string]any{"command": "cycle_show", "cycle": "c1"}, zmqbridge.KindNotFound},
		{map[string]any{"command": "cycle_retry", "cycle": int64(1)}, zmqbridge.KindNotFound},
		{map[string]any{"command": "cycle_cancel", "cycle": int64(1)}, zmqbridge.KindNotFound},
		{map[string]any{"command": "send", "target": "genesis", "selector": "nosuch", "learn": "handle"}, zmqbridge.KindNoMind},
		{map[string]any{"command": "send", "target": "genesis", "selector": "nosuch", "timeout_ms": int64(5)}, zmqbridge.KindNoMind},
		{map[string]any{"command": "send", "target": "nobody", "selector": "x", "learn": "wait"}, zmqbridge.KindNotFound},
		{map[string]any{"command": "send", "target": "genesis", "selector": "describe", "learn": "handle"}, ""},
		{map[string]any{"command": "initiate_cognitive_cycle", "target_oid": "genesis", "mission_brief": "learn to count"}, zmqbridge.KindNoMind},
	}
	for _, tc := range cases {
		r := req(t, d, tc.m)
		if tc.kind == "" && r["ok"] != true {
			t.Errorf("%v: got %v, want ok", tc.m, r)
		}
		if tc.kind != "" && errKind(r) != tc.kind {
			t.Errorf("%v: got %v, want %s", tc.m, r, tc.kind)
		}
	}
	if r := req(t, d, map[string]any{"command": "cycle_list"}); !cmp.Equal(r["result"], []any{}) {
		t.Errorf("cycle_list on a new image: %v, want []", r["result"])
	}
}
