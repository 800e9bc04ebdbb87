package uvm_test

import (
	"testing"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/metrics/metricstest"
	"batos/internal/protocol"
)

// TestMetricsCountRealWork does real work on a real image (bolt store,
// sends in the pool, a cycle learning a method from the scripted model,
// requests through protocol.Handle), then scrapes /metrics' handler and
// checks every hook moved its series by what was done.
func TestMetricsCountRealWork(t *testing.T) {
	b := &personaBrain{}
	u := openLearning(t, b, nil)
	eval(t, u, `genesis.double = method("def double(self, x):\n    return x * 2")`)
	eval(t, u, `genesis.broken = method("def broken(self):\n    fail('broken on purpose')")`)
	svc := command.NewLocal(u, "")
	before := metricstest.Take(t)

	if res, err := u.Send(ctx, "genesis", "double", []image.Value{image.Int(21)}, nil); err != nil || res.Repr != "42" {
		t.Fatalf("send double: %v %v", res.Repr, err)
	}
	if _, err := u.Send(ctx, "genesis", "broken", nil, nil); command.KindOf(err) != command.KindMethodError {
		t.Fatalf("send broken: got %v, want a method error", err)
	}
	if res, err := u.Send(ctx, "genesis", "display_yourself", nil, nil); err != nil || res.Repr != `"I am genesis"` {
		t.Fatalf("send display_yourself: %v %v", res.Repr, err)
	}
	for _, req := range []map[string]any{
		{"id": int64(1), "command": "ping"},
		{"id": int64(2), "command": "no_such_command"},
		{"id": int64(3), "command": "send", "target": "genesis", "selector": "broken"},
	} {
		protocol.Handle(ctx, svc, req)
	}

	d := metricstest.Take(t).Sub(before)
	for series, want := range map[string]float64{
		// Sends: the three above and the one through Handle.
		`batos_sends_total{outcome="ok"}`:           2,
		`batos_sends_total{outcome="method_error"}`: 2,
		`batos_send_duration_seconds_count`:         4,
		// Methods: double, broken twice, display_yourself once delivered
		// (validation runs in the sandbox, which is not counted).
		`batos_method_calls_total{outcome="error"}`: 2,
		// Requests, by command and outcome.
		`batos_requests_total{command="ping",outcome="ok",transport="other"}`:                 1,
		`batos_requests_total{command="unknown",outcome="unknown_command",transport="other"}`: 1,
		`batos_requests_total{command="send",outcome="method_error",transport="other"}`:       1,
		`batos_request_duration_seconds_count{command="send",transport="other"}`:              1,
		`batos_cycle_transitions_total{state="IDLE"}`:                                         1,
		`batos_cycle_transitions_total{state="DECOMPOSING"}`:                                  1,
		`batos_cycle_transitions_total{state="DELEGATING"}`:                                   1,
		`batos_cycle_transitions_total{state="SYNTHESIZING"}`:                                 1,
		`batos_cycle_transitions_total{state="VALIDATING"}`:                                   1,
		`batos_cycle_transitions_total{state="COMPLETE"}`:                                     1,
		`batos_cycle_state_duration_seconds_count{state="IDLE"}`:                              1,
		`batos_cycle_state_duration_seconds_count{state="VALIDATING"}`:                        1,
		`batos_cycle_duration_seconds_count{state="COMPLETE"}`:                                1,
		`batos_model_calls_total{model="scripted",outcome="ok",persona="BRICK"}`:              1,
		`batos_model_calls_total{model="scripted",outcome="ok",persona="ROBIN"}`:              1,
	} {
		if got := d[series]; got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
	if ok, n := d[`batos_method_calls_total{outcome="ok"}`], d.Sum("batos_method_calls_total"); ok < 2 || d["batos_method_duration_seconds_count"] != n {
		t.Errorf("method calls: %v ok of %v, %v latencies observed; want at least 2 ok, one latency per call", ok, n, d["batos_method_duration_seconds_count"])
	}
	if got := d.Sum("batos_model_calls_total"); got != float64(b.count("BRICK")+b.count("BABS")+b.count("ROBIN")+b.count("ALFRED")) {
		t.Errorf("model calls moved by %v, want the %v the scripted model answered", got, b.calls)
	}
	for _, kind := range []string{`kind="prompt"`, `kind="completion"`} {
		if d.Sum("batos_model_tokens_total", kind) <= 0 {
			t.Errorf("model tokens (%s) did not move", kind)
		}
	}
	if got := d.Sum("batos_model_call_duration_seconds_count"); got != d.Sum("batos_model_calls_total") {
		t.Errorf("model latencies: %v observed, want one per call", got)
	}
	// The send that wrote (display_yourself's install and delivery) and
	// the cycle's transitions and records are commits; each commit that
	// succeeded has its latency, and fsyncs made them durable.
	commits := d[`batos_store_commits_total{outcome="ok"}`]
	if commits < 3 || d["batos_store_commit_duration_seconds_count"] != commits {
		t.Errorf("commits: %v ok, %v latencies; want at least 3, one latency each", commits, d["batos_store_commit_duration_seconds_count"])
	}
	if fsyncs := d["batos_store_wal_fsync_duration_seconds_count"]; fsyncs < 1 || fsyncs > commits {
		t.Errorf("fsyncs: %v for %v commits", fsyncs, commits)
	}
	if got := d["batos_store_wal_fsync_commits_sum"]; got < 1 || got > commits {
		t.Errorf("commits made durable by fsyncs: %v, want 1 to %v", got, commits)
	}
}

// TestMetricsCountFailedCycle learns a method whose every attempt fails
// its tests: the cycle ends FAILED and the send with learning_failed.
func TestMetricsCountFailedCycle(t *testing.T) {
	b := &personaBrain{method: `{"source": "def display_yourself(self):\n    return 'wrong'\n", "tests": []}`}
	u := openLearning(t, b, nil)
	before := metricstest.Take(t)
	if _, err := u.Send(ctx, "genesis", "display_yourself", nil, nil); command.KindOf(err) != command.KindLearningFailed {
		t.Fatalf("send: got %v, want learning_failed", err)
	}
	d := metricstest.Take(t).Sub(before)
	robin := float64(b.count("ROBIN"))
	for series, want := range map[string]float64{
		`batos_sends_total{outcome="learning_failed"}`:                           1,
		`batos_cycle_transitions_total{state="IDLE"}`:                            1,
		`batos_cycle_transitions_total{state="SYNTHESIZING"}`:                    robin, // each attempt enters it again
		`batos_cycle_transitions_total{state="VALIDATING"}`:                      robin,
		`batos_cycle_transitions_total{state="FAILED"}`:                          1,
		`batos_cycle_transitions_total{state="COMPLETE"}`:                        0,
		`batos_cycle_duration_seconds_count{state="FAILED"}`:                     1,
		`batos_cycle_state_duration_seconds_count{state="VALIDATING"}`:           robin,
		`batos_model_calls_total{model="scripted",outcome="ok",persona="ROBIN"}`: robin,
	} {
		if got := d[series]; got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
	if robin < 2 {
		t.Errorf("ROBIN asked %v times, want every attempt", robin)
	}
}
