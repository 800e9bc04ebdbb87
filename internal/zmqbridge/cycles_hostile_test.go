package zmqbridge_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"batos/internal/command"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/uvm"
)

var methodFor = regexp.MustCompile(`(?:Plan the method|Write the method) (\w+)`)

// echoMind learns any selector as a method answering its own name.
func echoMind(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	sel := "x"
	if m := methodFor.FindStringSubmatch(req.Messages[len(req.Messages)-1].Content); m != nil {
		sel = m[1]
	}
	var out any
	switch {
	case llmtest.Persona(req) == "BRICK":
		out = map[string]any{"intent": "name it", "selector": sel, "signature": "def " + sel + "(self, *args)", "sub_questions": []any{},
			"tests": []any{map[string]any{"name": "named", "expr": "self." + sel + "() == '" + sel + "'"}}}
	case llmtest.Persona(req) == "ROBIN":
		out = map[string]any{"source": "def " + sel + "(self, *args):\n    return '" + sel + "'\n", "tests": []any{}}
	default:
		return llmtest.Reply{Text: "ok"}, nil
	}
	b, _ := json.Marshal(out)
	return llmtest.Reply{Text: string(b)}, nil
}

// A send whose selector is empty or no method can have is the client's
// mistake, bad_request, not internal — learning or not.
func TestHostileSendSelectorsNoMethodCanHave(t *testing.T) {
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: echoMind}}
	u, _, err := uvm.Open(context.Background(), filepath.Join(t.TempDir(), "img"), &uvm.Options{Mind: server})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
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
	u, _, err := uvm.Open(context.Background(), filepath.Join(t.TempDir(), "img"), &uvm.Options{Mind: server})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
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
