package zmqbridge_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"batos/internal/command"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
	"batos/internal/zmqbridge"
)

// retiringAlfred answers every audit with one proposal: retire
// calc.average.
func retiringAlfred(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	if llmtest.Persona(req) == "ALFRED" && strings.Contains(req.Messages[len(req.Messages)-1].Content, "Audit this living image") {
		return llmtest.Reply{Text: `{"summary": "s", "findings": [], "proposals": [{"receiver": "calc", "selector": "average", "kind": "retire", "goal": "g"}]}`}, nil
	}
	return llmtest.Reply{Text: "no"}, nil
}

// TestHostileHeartbeatRequests: every heartbeat command, sent arguments
// of every wrong type, oversized and not UTF-8, answers with the
// request's ID and the kind docs/protocol.md gives; the server goes on.
func TestHostileHeartbeatRequests(t *testing.T) {
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: retiringAlfred}}
	u := uvmtest.Open(t, &uvm.Options{Mind: server})
	if _, err := u.Eval(t.Context(), `root.calc = new(None, name = "calc")`); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Eval(t.Context(), `calc.average = method("def average(self, xs):\n    return len(xs)")
root.five = 5`); err != nil {
		t.Fatal(err)
	}
	_, addr, _ := startServer(t, command.NewLocal(u, "tester"))
	d := dealer(t, addr)

	if r := req(t, d, map[string]any{"id": "junk", "command": "audit_run", "junk": []any{1}}); errKind(r) != command.KindBadRequest || r["id"] != "junk" {
		t.Fatalf("audit_run with an unknown field: %v, want bad_request", r)
	}
	r := req(t, d, map[string]any{"id": "run", "command": "audit_run"})
	if r["ok"] != true || r["id"] != "run" {
		t.Fatalf("audit_run: %v", r)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := u.Heartbeat().Wait(ctx, 1); err != nil {
		t.Fatal(err)
	}

	huge := strings.Repeat("7", 900<<10) // under the 1 MiB a request may hold
	notUTF8 := "\xff\xfe.\xc0"
	bad := command.KindBadRequest
	cases := []struct {
		name string
		m    map[string]any
		kind command.Kind // "" for ok
	}{
		{"unknown command", map[string]any{"command": "audit_delete"}, command.KindUnknownCommand},
		{"command not a string", map[string]any{"command": int64(5)}, bad},

		{"stats of all", map[string]any{"command": "method_stats", "target": nil}, ""},
		{"stats of an OID number", map[string]any{"command": "method_stats", "target": int64(1)}, ""},
		{"stats of a negative number", map[string]any{"command": "method_stats", "target": int64(-1)}, command.KindNotFound},
		{"stats of a float", map[string]any{"command": "method_stats", "target": 1.5}, bad},
		{"stats of a list", map[string]any{"command": "method_stats", "target": []any{"calc"}}, bad},
		{"stats of a reference", map[string]any{"command": "method_stats", "target": map[string]any{"$ref": "oid:1"}}, ""},
		{"stats of a map", map[string]any{"command": "method_stats", "target": map[string]any{"calc": "x"}}, bad},
		{"stats of a bool", map[string]any{"command": "method_stats", "target": false}, bad},
		{"stats of a huge name", map[string]any{"command": "method_stats", "target": huge}, command.KindNotFound},
		{"stats of bad UTF-8", map[string]any{"command": "method_stats", "target": notUTF8}, bad},
		{"stats of a data slot", map[string]any{"command": "method_stats", "target": "five"}, command.KindNotFound},
		{"stats of oid:0", map[string]any{"command": "method_stats", "target": "oid:0"}, command.KindNotFound},

		{"list limit huge", map[string]any{"command": "audit_list", "limit": int64(1) << 40}, bad},
		{"list limit float", map[string]any{"command": "audit_list", "limit": 1.0}, bad},
		{"list limit list", map[string]any{"command": "audit_list", "limit": []any{}}, bad},
		{"list limit bool", map[string]any{"command": "audit_list", "limit": true}, bad},
		{"list limit nil", map[string]any{"command": "audit_list", "limit": nil}, ""},

		{"show 1", map[string]any{"command": "audit_show", "audit": int64(1)}, ""},
		{"show \"1\"", map[string]any{"command": "audit_show", "audit": "1"}, ""},
		{"show a cycle ID", map[string]any{"command": "audit_show", "audit": "c1"}, bad},
		{"show 0", map[string]any{"command": "audit_show", "audit": int64(0)}, bad},
		{"show -1", map[string]any{"command": "audit_show", "audit": int64(-1)}, bad},
		{"show a float", map[string]any{"command": "audit_show", "audit": 1.0}, bad},
		{"show a list", map[string]any{"command": "audit_show", "audit": []any{int64(1)}}, bad},
		{"show a map", map[string]any{"command": "audit_show", "audit": map[string]any{}}, bad},
		{"show a bool", map[string]any{"command": "audit_show", "audit": true}, bad},
		{"show a huge number", map[string]any{"command": "audit_show", "audit": huge}, bad},
		{"show bad UTF-8", map[string]any{"command": "audit_show", "audit": notUTF8}, bad},
		{"show a missing audit", map[string]any{"command": "audit_show", "audit": int64(1) << 62}, command.KindNotFound},

		{"proposals all 1", map[string]any{"command": "proposal_list", "all": int64(1)}, bad},
		{"proposals all list", map[string]any{"command": "proposal_list", "all": []any{true}}, bad},
		{"proposals all nil", map[string]any{"command": "proposal_list", "all": nil}, ""},

		{"reject reason list", map[string]any{"command": "proposal_reject", "proposal": "1.1", "reason": []any{"x"}}, bad},
		{"reject reason map", map[string]any{"command": "proposal_reject", "proposal": "1.1", "reason": map[string]any{}}, bad},
		{"reject a missing proposal for a huge reason", map[string]any{"command": "proposal_reject", "proposal": "9.1", "reason": huge}, command.KindNotFound},
	}
	for _, c := range []string{"proposal_show", "proposal_accept", "proposal_reject"} {
		for _, id := range []any{int64(1), 1.1, true, []any{"1.1"}, map[string]any{"1": 1}, nil, "", "1.", ".1", "1.1.1", "-1.2",
			"1e3.1", "0.1", "1.0", "1.-1", huge, huge + ".1", "1." + huge, notUTF8, "1\x00.1", "１.１"} {
			cases = append(cases, struct {
				name string
				m    map[string]any
				kind command.Kind
			}{fmt.Sprintf("%s %.20q", c, fmt.Sprint(id)), map[string]any{"command": c, "proposal": id}, bad})
		}
		cases = append(cases, struct {
			name string
			m    map[string]any
			kind command.Kind
		}{c + " of a missing proposal", map[string]any{"command": c, "proposal": "1.7"}, command.KindNotFound})
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.m["id"] = int64(1000 + i)
			r := req(t, d, tc.m)
			if r["id"] != tc.m["id"] {
				t.Errorf("reply id %v, want %v", r["id"], tc.m["id"])
			}
			switch {
			case tc.kind == "" && r["ok"] != true:
				t.Errorf("got %s, want ok", clipReply(r))
			case tc.kind != "" && errKind(r) != tc.kind:
				t.Errorf("got %s, want %s", clipReply(r), tc.kind)
			case tc.kind != "":
				msg, _ := r["error"].(map[string]any)["message"].(string)
				if msg == "" || len(msg) > 4096 {
					t.Errorf("error message of %d bytes: %.200q", len(msg), msg)
				}
			}
		})
	}

	// The server still serves, and a decision goes through once.
	if r := req(t, d, map[string]any{"id": "accept", "command": "proposal_accept", "proposal": "1.1"}); r["ok"] != true || r["id"] != "accept" {
		t.Fatalf("proposal_accept: %v", r)
	}
	if r := req(t, d, map[string]any{"id": "again", "command": "proposal_accept", "proposal": " 1.1 "}); errKind(r) != bad || r["id"] != "again" {
		t.Fatalf("a second proposal_accept: %v", r)
	}
	r = req(t, d, map[string]any{"id": int64(7), "command": "proposal_list", "all": true})
	ps, _ := r["result"].(map[string]any)["proposals"].([]any)
	if r["ok"] != true || len(ps) != 1 || ps[0].(map[string]any)["status"] != "accepted" {
		t.Fatalf("proposal_list: %v", r)
	}
}

func clipReply(r map[string]any) string {
	s := fmt.Sprint(r)
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// TestHostileAuditRunTwice: an audit_run while another waits on ALFRED
// is a conflict answered at once, and the server answers other requests
// meanwhile.
func TestHostileAuditRunTwice(t *testing.T) {
	gate, asked := make(chan struct{}), make(chan struct{})
	var once sync.Once
	slow := func(ctx context.Context, r *llm.ChatRequest) (llmtest.Reply, error) {
		once.Do(func() { close(asked) })
		select {
		case <-gate:
		case <-ctx.Done():
			return llmtest.Reply{}, ctx.Err()
		}
		return retiringAlfred(ctx, r)
	}
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: slow}}
	u := uvmtest.Open(t, &uvm.Options{Mind: server})
	_, addr, _ := startServer(t, command.NewLocal(u, "tester"))
	first, second := dealer(t, addr), dealer(t, addr)
	done := make(chan map[string]any, 1)
	go func() {
		done <- reqNoFatal(first, map[string]any{"id": "first", "command": "audit_run"})
	}()
	select {
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("the first audit_run never asked ALFRED")
	}
	r := req(t, second, map[string]any{"id": "second", "command": "audit_run"})
	if errKind(r) != command.KindConflict || r["id"] != "second" {
		t.Fatalf("a second audit_run: %v, want conflict", r)
	}
	if r := req(t, second, map[string]any{"id": "list", "command": "audit_list"}); r["ok"] != true {
		t.Fatalf("audit_list while an audit asks: %v", r)
	}
	close(gate)
	if r := <-done; r["ok"] != true || r["id"] != "first" {
		t.Fatalf("the first audit_run: %v", r)
	}
}

// reqNoFatal is req for a goroutine: a failure comes back as the
// reply's "failure".
func reqNoFatal(d *zmq.Socket, m map[string]any) map[string]any {
	b, err := zmqbridge.EncodeReply(m)
	if err == nil {
		_, err = d.SendBytes(b, 0)
	}
	var reply [][]byte
	if err == nil {
		reply, err = d.RecvMessageBytes(0)
	}
	var r map[string]any
	if err == nil {
		r, err = zmqbridge.DecodeRequest(reply[len(reply)-1], zmqbridge.DefaultLimits)
	}
	if err != nil {
		return map[string]any{"failure": err.Error()}
	}
	return r
}
