package zmqbridge_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"batos/internal/command"
	"batos/internal/heartbeat"
	"batos/internal/image"
	"batos/internal/protocol"
	"batos/internal/uvm/uvmtest"
	"batos/internal/vm"
	"batos/internal/zmqbridge"
)

// TestHeartbeatCommandsRealImage: method_stats counts real sends;
// audits and proposals answer what the image holds; hostile arguments
// get precise kinds.
func TestHeartbeatCommandsRealImage(t *testing.T) {
	u := uvmtest.Open(t, nil) // no mind
	local := command.NewLocal(u, "tester")
	_, addr, _ := startServer(t, local)
	d := dealer(t, addr)
	if _, err := u.Eval(t.Context(), `genesis.half = method("def half(self, n):\n    return 10 / n")`); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int64{1, 2, 0} {
		u.Send(t.Context(), "genesis", "half", []image.Value{image.Int(n)}, nil)
	}
	r := req(t, d, map[string]any{"id": int64(1), "command": "method_stats", "target": "genesis"})
	if r["ok"] != true {
		t.Fatalf("method_stats: %v", r)
	}
	methods, _ := r["result"].(map[string]any)["methods"].([]any)
	var half map[string]any
	for _, m := range methods {
		if mm := m.(map[string]any); mm["selector"] == "half" {
			half = mm
		}
	}
	if half == nil || half["calls"] != int64(3) || half["errors"] != int64(1) || half["current"] != true || half["samples"] != int64(3) || half["failed_samples"] != int64(1) {
		t.Fatalf("method_stats for half: %v", half)
	}
	cases := []struct {
		m    map[string]any
		kind command.Kind
	}{
		{map[string]any{"command": "method_stats"}, ""},
		{map[string]any{"command": "method_stats", "target": "nowhere"}, command.KindNotFound},
		{map[string]any{"command": "method_stats", "target": true}, command.KindBadRequest},
		{map[string]any{"command": "audit_list"}, ""},
		{map[string]any{"command": "audit_list", "limit": int64(-1)}, command.KindBadRequest},
		{map[string]any{"command": "audit_list", "limit": "ten"}, command.KindBadRequest},
		{map[string]any{"command": "audit_show", "audit": int64(7)}, command.KindNotFound},
		{map[string]any{"command": "audit_show"}, command.KindBadRequest},
		{map[string]any{"command": "audit_show", "audit": "seven"}, command.KindBadRequest},
		{map[string]any{"command": "audit_run"}, command.KindNoMind},
		{map[string]any{"command": "proposal_list"}, ""},
		{map[string]any{"command": "proposal_list", "all": "yes"}, command.KindBadRequest},
		{map[string]any{"command": "proposal_show", "proposal": "3.1"}, command.KindNotFound},
		{map[string]any{"command": "proposal_show", "proposal": "3"}, command.KindBadRequest},
		{map[string]any{"command": "proposal_show", "proposal": "0.1"}, command.KindBadRequest},
		{map[string]any{"command": "proposal_show", "proposal": "1.99999999999"}, command.KindBadRequest},
		{map[string]any{"command": "proposal_show", "proposal": int64(3)}, command.KindBadRequest},
		{map[string]any{"command": "proposal_show"}, command.KindBadRequest},
		{map[string]any{"command": "proposal_accept", "proposal": "../../x"}, command.KindBadRequest},
		{map[string]any{"command": "proposal_accept", "proposal": "1.1"}, command.KindNotFound},
		{map[string]any{"command": "proposal_reject", "proposal": "1.1", "reason": int64(5)}, command.KindBadRequest},
		{map[string]any{"command": "proposal_reject", "proposal": "1.1", "reason": strings.Repeat("x", 100)}, command.KindNotFound},
	}
	for i, tc := range cases {
		tc.m["id"] = int64(100 + i)
		r := req(t, d, tc.m)
		if r["id"] != tc.m["id"] {
			t.Errorf("%v: reply id %v", tc.m, r["id"])
		}
		if tc.kind == "" && r["ok"] != true {
			t.Errorf("%v: got %v, want ok", tc.m, r)
		}
		if tc.kind != "" && errKind(r) != tc.kind {
			t.Errorf("%v: got %v, want %s", tc.m, r, tc.kind)
		}
	}

	// The Remote reads the same through the bridge.
	c, err := zmqbridge.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	remote := protocol.NewRemote(c, os.Getpid())
	defer remote.Close()
	ctx := context.Background()
	st, err := remote.MethodStats(ctx, "genesis")
	if err != nil || len(st.Methods) == 0 {
		t.Fatalf("remote method stats: %v %v", st, err)
	}
	if as, err := remote.AuditList(ctx, 0); err != nil || len(as) != 0 {
		t.Fatalf("remote audit list: %v %v", as, err)
	}
	if ps, err := remote.ProposalList(ctx, true); err != nil || len(ps) != 0 {
		t.Fatalf("remote proposal list: %v %v", ps, err)
	}
	if _, err := remote.AuditRun(ctx); !errors.Is(err, vm.ErrNoMind) {
		t.Fatalf("remote audit without a mind: %v, want no_mind", err)
	}
	if _, err := remote.ProposalAccept(ctx, "x"); command.KindOf(err) != command.KindBadRequest {
		t.Fatalf("remote accept of a bad ID: %v", err)
	}
	if _, err := remote.ProposalShow(ctx, "2.1"); !errors.Is(err, heartbeat.ErrNoProposal) && command.KindOf(err) != command.KindNotFound {
		t.Fatalf("remote show of a missing proposal: %v", err)
	}
}
