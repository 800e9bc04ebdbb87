package zmqbridge_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/command"
	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
	"batos/internal/vm"
)

// learningService is fakeService that learns and keeps cycles: cycle 1
// exists, every other ID is unknown. It records every send's Learn and
// every other call; selectors "fails" and "slow" answer the learning
// errors of cycles 7 and 8.
type learningService struct {
	fakeService
	mu    sync.Mutex
	hows  []command.Learn
	calls []string
}

func errUnknownCycle(id int64) error { return fmt.Errorf("%w: no cycle %d", command.ErrNotFound, id) }

// cycleOne is cycle 1 as the service answers it.
var cycleOne = command.CycleView{
	ID: 1, State: "COMPLETE", Receiver: "oid:1", ReceiverName: "genesis", Selector: "count", Brief: "learn to count",
	Attempt: 1, MaxAttempts: 3, Personas: []string{"BRICK", "ROBIN"}, StepCount: 2, PromptTokens: 300, ModelMS: 12.5,
	Answer: "3", Created: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), Updated: time.Date(2026, 11, 29, 12, 0, 1, 5e8, time.UTC),
}

// cycleOneWire is cycleOne on the wire: its JSON form, with integers as
// integers.
var cycleOneWire = map[string]any{
	"id": int64(1), "state": "COMPLETE", "receiver": "oid:1", "receiver_name": "genesis", "selector": "count", "brief": "learn to count",
	"deliver": false, "attempt": int64(1), "max_attempts": int64(3), "personas": []any{"BRICK", "ROBIN"}, "step_count": int64(2),
	"prompt_tokens": int64(300), "completion_tokens": int64(0), "model_ms": 12.5, "answer": "3", "pending": int64(0),
	"created": "2026-11-29T12:00:00Z", "updated": "2026-11-29T12:00:01.5Z",
}

func (l *learningService) record(call string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, call)
}

func (l *learningService) Send(ctx context.Context, req command.SendRequest) (vm.Result, error) {
	l.mu.Lock()
	l.hows = append(l.hows, req.Learn)
	l.mu.Unlock()
	switch req.Selector {
	case "fails":
		return vm.Result{}, &command.LearningError{Cycle: 7, State: cycle.Failed,
			Err: fmt.Errorf("%w: cycle 7 failed in VALIDATING: its tests failed 3 times", command.ErrLearningFailed)}
	case "slow":
		return vm.Result{}, &command.LearningError{Cycle: 8, State: cycle.Synthesizing, Err: context.DeadlineExceeded}
	}
	return vm.Result{Value: image.String(req.Selector), Repr: fmt.Sprintf("%q", req.Selector)}, nil
}

func (l *learningService) learned() []command.Learn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]command.Learn(nil), l.hows...)
}

func (l *learningService) called() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

func (l *learningService) InitiateCycle(ctx context.Context, target, brief string) (command.CycleHandle, error) {
	l.record(fmt.Sprintf("InitiateCycle %s %q", target, brief))
	return command.CycleHandle{Cycle: 2, State: "IDLE"}, nil
}

func (l *learningService) ListCycles(ctx context.Context, limit int) ([]command.CycleView, error) {
	l.record(fmt.Sprintf("ListCycles %d", limit))
	return []command.CycleView{cycleOne}, nil
}

func (l *learningService) ShowCycle(ctx context.Context, id int64) (*command.CycleView, error) {
	l.record(fmt.Sprintf("ShowCycle %d", id))
	if id != 1 {
		return nil, errUnknownCycle(id)
	}
	v := cycleOne
	return &v, nil
}

func (l *learningService) RetryCycle(ctx context.Context, id int64) (command.CycleHandle, error) {
	l.record(fmt.Sprintf("RetryCycle %d", id))
	if id != 1 {
		return command.CycleHandle{}, errUnknownCycle(id)
	}
	return command.CycleHandle{Cycle: id, State: "SYNTHESIZING"}, nil
}

func (l *learningService) CancelCycle(ctx context.Context, id int64) (command.Cancelled, error) {
	l.record(fmt.Sprintf("CancelCycle %d", id))
	if id != 1 {
		return command.Cancelled{}, errUnknownCycle(id)
	}
	return command.Cancelled{Cycle: id, State: "FAILED", Was: "DELEGATING"}, nil
}

// TestSendLearnOptions: "learn" and "timeout_ms" reach the service as the
// send's command.Learn; absent (or nil) they are the zero Learn, a wait
// of the default length.
func TestSendLearnOptions(t *testing.T) {
	svc := &learningService{}
	_, addr, _ := startServer(t, svc)
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
		{"learn": nil, "timeout_ms": nil}, // nil is absent
		{},
	} {
		if r := send(extra); r["ok"] != true {
			t.Errorf("send %v: %v", extra, r)
		}
	}
	want := []command.Learn{{}, {Handle: true}, {Timeout: 1500 * time.Millisecond}, {}, {}, {}}
	if diff := cmp.Diff(svc.learned(), want); diff != "" {
		t.Errorf("learn options (-got +want):\n%s", diff)
	}
}

// TestLearningErrorKinds: a failed and an unfinished cycle get their own
// kinds, and the reply names the cycle.
func TestLearningErrorKinds(t *testing.T) {
	_, addr, _ := startServer(t, &learningService{})
	d := dealer(t, addr)
	for selector, want := range map[string]struct {
		kind  command.Kind
		cycle int64
	}{
		"fails": {command.KindLearningFailed, 7},
		"slow":  {command.KindStillLearning, 8},
	} {
		r := req(t, d, map[string]any{"id": int64(1), "command": "send", "target": "genesis", "selector": selector, "learn": "wait"})
		e, _ := r["error"].(map[string]any)
		if r["ok"] != false || e["kind"] != string(want.kind) || e["cycle"] != want.cycle || !strings.Contains(e["message"].(string), fmt.Sprint(want.cycle)) {
			t.Errorf("%s: got %v, want kind %s naming cycle %d", selector, r, want.kind, want.cycle)
		}
	}
}

// TestCycleCommands: the cycle commands reach the service with the IDs
// and limits the requests carry, their typed results come back in their
// wire forms, and unknown IDs are not_found.
func TestCycleCommands(t *testing.T) {
	svc := &learningService{}
	_, addr, _ := startServer(t, svc)
	d := dealer(t, addr)
	cases := []struct {
		m    map[string]any
		call string
		want any
		kind command.Kind
	}{
		{map[string]any{"command": "cycle_list"}, "ListCycles 20", []any{cycleOneWire}, ""},
		{map[string]any{"command": "cycle_list", "limit": int64(0)}, "ListCycles 0", []any{cycleOneWire}, ""},
		{map[string]any{"command": "cycle_show", "cycle": int64(1)}, "ShowCycle 1", cycleOneWire, ""},
		{map[string]any{"command": "cycle_show", "cycle": "c1"}, "ShowCycle 1", cycleOneWire, ""},
		{map[string]any{"command": "cycle_show", "cycle": "#1"}, "ShowCycle 1", cycleOneWire, ""},
		{map[string]any{"command": "cycle_retry", "cycle": int64(1)}, "RetryCycle 1", map[string]any{"cycle": int64(1), "state": "SYNTHESIZING"}, ""},
		{map[string]any{"command": "cycle_cancel", "cycle": int64(1)}, "CancelCycle 1", map[string]any{"cycle": int64(1), "state": "FAILED", "was": "DELEGATING"}, ""},
		{map[string]any{"command": "initiate_cognitive_cycle", "target_oid": "genesis", "mission_brief": "learn to count"}, `InitiateCycle genesis "learn to count"`,
			map[string]any{"cycle": int64(2), "state": "IDLE"}, ""},
		{map[string]any{"command": "initiate_cognitive_cycle", "target_oid": int64(7), "mission_brief": "x"}, `InitiateCycle 7 "x"`,
			map[string]any{"cycle": int64(2), "state": "IDLE"}, ""},
		{map[string]any{"command": "cycle_show", "cycle": int64(99)}, "ShowCycle 99", nil, command.KindNotFound},
		{map[string]any{"command": "cycle_retry", "cycle": "99"}, "RetryCycle 99", nil, command.KindNotFound},
		{map[string]any{"command": "cycle_cancel", "cycle": int64(math.MaxInt64)}, fmt.Sprintf("CancelCycle %d", int64(math.MaxInt64)), nil, command.KindNotFound},
	}
	for i, tc := range cases {
		r := req(t, d, tc.m)
		if calls := svc.called(); len(calls) != i+1 || calls[i] != tc.call {
			t.Errorf("%d %v: the service was called %q, want last %q", i, tc.m, calls, tc.call)
		}
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
// contradictions are bad_request, and nothing reaches the service.
func TestHostileLearnAndCycleArguments(t *testing.T) {
	svc := &learningService{}
	_, addr, _ := startServer(t, svc)
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
			if r["ok"] != false || errKind(r) != command.KindBadRequest || r["id"] != name {
				t.Errorf("got %v, want bad_request", r)
			}
		})
	}
	if got := svc.learned(); len(got) != 0 {
		t.Errorf("refused sends reached the service: %v", got)
	}
	if got := svc.called(); len(got) != 0 {
		t.Errorf("refused cycle commands reached the service: %q", got)
	}
}

// TestRealImageWithoutMind: command.Local over an image with no mind
// lists no cycles, knows none, and answers what needs learning no_mind;
// a send it understands takes "learn" and "timeout_ms" and is answered.
func TestRealImageWithoutMind(t *testing.T) {
	u := uvmtest.Open(t, nil)
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	d := dealer(t, addr)
	cases := []struct {
		m    map[string]any
		kind command.Kind
	}{
		{map[string]any{"command": "cycle_list"}, ""},
		{map[string]any{"command": "cycle_show", "cycle": "c1"}, command.KindNotFound},
		{map[string]any{"command": "cycle_retry", "cycle": int64(1)}, command.KindNotFound},
		{map[string]any{"command": "cycle_cancel", "cycle": int64(1)}, command.KindNotFound},
		{map[string]any{"command": "send", "target": "genesis", "selector": "nosuch", "learn": "handle"}, command.KindNoMind},
		{map[string]any{"command": "send", "target": "genesis", "selector": "nosuch", "timeout_ms": int64(5)}, command.KindNoMind},
		{map[string]any{"command": "send", "target": "nobody", "selector": "x", "learn": "wait"}, command.KindNotFound},
		{map[string]any{"command": "send", "target": "genesis", "selector": "describe", "learn": "handle"}, ""},
		{map[string]any{"command": "send", "target": "genesis", "selector": "describe", "timeout_ms": int64(5)}, ""},
		{map[string]any{"command": "send", "target": "genesis", "selector": "describe", "learn": "wait"}, ""},
		{map[string]any{"command": "initiate_cognitive_cycle", "target_oid": "genesis", "mission_brief": "learn to count"}, command.KindNoMind},
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

// A send whose selector is empty or no method can have is the client's
// mistake, bad_request, not internal — learning or not.
func TestHostileSendSelectorsNoMethodCanHave(t *testing.T) {
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: echoMind}}
	u := uvmtest.Open(t, &uvm.Options{Mind: server})
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	d := dealer(t, addr)
	for _, sel := range []string{"", "foo bar", "if", "a.b", "x\x00y"} {
		for _, learn := range []any{nil, "wait", "handle"} {
			r := req(t, d, map[string]any{"id": int64(1), "command": "send", "target": "genesis", "selector": sel, "learn": learn})
			if errKind(r) != command.KindBadRequest {
				t.Errorf("selector %q, learn %v: %v, want bad_request", sel, learn, r)
			}
		}
	}
	// Nothing was learned for them.
	if r := req(t, d, map[string]any{"id": int64(2), "command": "cycle_list"}); r["ok"] != true || len(r["result"].([]any)) != 0 {
		t.Errorf("cycle_list: %v, want no cycles", r)
	}
	// A name a method can have is learned, and the handle is as documented.
	r := req(t, d, map[string]any{"id": int64(3), "command": "send", "target": "genesis", "selector": "fine_name", "args": []any{int64(4)}, "learn": "handle"})
	res, _ := r["result"].(map[string]any)
	if v, _ := res["value"].(map[string]any); r["ok"] != true || v["cycle"] != int64(1) || v["joined"] != false || v["state"] != "learning" {
		t.Fatalf("handle: %v", r)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r := req(t, d, map[string]any{"id": int64(4), "command": "cycle_show", "cycle": int64(1)})
		c, _ := r["result"].(map[string]any)
		ds, _ := c["deliveries"].([]any)
		if c["state"] == "COMPLETE" && c["pending"] == int64(0) && len(ds) == 1 {
			if d0 := ds[0].(map[string]any); d0["state"] != "answered" || d0["answer"] != `"fine_name"` || d0["call"] != "genesis.fine_name(4)" || c["answer"] != `"fine_name"` {
				t.Errorf("delivery %v, answer %v", d0, c["answer"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cycle 1 never delivered: %v", r)
		}
	}
}

// An error about no cycle in particular carries no "cycle" (it used to
// carry "cycle": 0, which a client following cycles would look up).
func TestHostileErrorsNameNoCycleZero(t *testing.T) {
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: echoMind}}
	u := uvmtest.Open(t, &uvm.Options{Mind: server})
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	d := dealer(t, addr)
	if r := req(t, d, map[string]any{"id": int64(1), "command": "send", "target": "genesis", "selector": "learned_once"}); r["ok"] != true {
		t.Fatalf("send: %v", r)
	}
	for _, m := range []map[string]any{
		{"command": "send", "target": "genesis", "selector": "foo bar"},
		{"command": "cycle_show", "cycle": int64(5)},
		{"command": "cycle_cancel", "cycle": int64(5)},
		{"command": "cycle_retry", "cycle": int64(1)},
		{"command": "cycle_cancel", "cycle": int64(1)},
	} {
		m["id"] = int64(2)
		r := req(t, d, m)
		e, _ := r["error"].(map[string]any)
		if _, has := e["cycle"]; r["ok"] != false || has {
			t.Errorf("%v: %v, want an error without \"cycle\"", m, r)
		}
	}
}
