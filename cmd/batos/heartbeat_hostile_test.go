package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"batos/internal/command"
	"batos/internal/heartbeat"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
)

// TestHostileHeartbeatIDsCLI: audit and proposal IDs that are no IDs
// are usage errors (exit 2) before the image is opened; IDs the image
// does not have are errors (exit 1) naming them.
func TestHostileHeartbeatIDsCLI(t *testing.T) {
	img := newImage(t)
	long := strings.Repeat("9", 100_000)
	for _, args := range [][]string{
		{"audit", "show"}, {"audit", "show", "0"}, {"audit", "show", "-1"}, {"audit", "show", "a"}, {"audit", "show", "aa3"},
		{"audit", "show", "1.5"}, {"audit", "show", "3x"}, {"audit", "show", "99999999999999999999"}, {"audit", "show", long},
		{"audit", "show", "1", "2"}, {"audit", "list", "-n", "x"}, {"audit", "list", "extra"},
		{"proposal"}, {"proposal", "frob"}, {"proposal", "list", "extra"},
	} {
		if code, _, errOut := batos(t, append([]string{"-image", img}, args...)...); code != 2 || errOut == "" || len(errOut) > 4096 {
			t.Errorf("%.60v: exit %d, %d bytes of stderr; want 2 and a short message", args, code, len(errOut))
		}
	}
	for _, verb := range []string{"show", "accept", "reject"} {
		for _, id := range []string{"1.", ".1", "1.1.1", "-1.2", "1e3.1", "0.1", "1.0", "", "x.y", "1\x00.1", "１.１", long, long + ".1", "1." + long} {
			code, _, errOut := batos(t, "-image", img, "proposal", verb, id)
			if code != 2 || errOut == "" || len(errOut) > 4096 {
				t.Errorf("proposal %s %.30q: exit %d, %d bytes of stderr; want 2 and a short message", verb, id, code, len(errOut))
			}
		}
		if code, _, errOut := batos(t, "-image", img, "proposal", verb, "12.3"); code != 1 || !strings.Contains(errOut, "no such proposal: 12.3") {
			t.Errorf("proposal %s 12.3: exit %d, %q", verb, code, errOut)
		}
	}
	for _, id := range []string{"7", "a7", "9223372036854775807"} {
		if code, _, errOut := batos(t, "-image", img, "audit", "show", id); code != 1 || !strings.Contains(errOut, "no such audit") {
			t.Errorf("audit show %s: exit %d, %q", id, code, errOut)
		}
	}
}

// TestHostileMethodStatsCLI: method stats of what is no object says so;
// its errors print in a stable order; -json parses, counted or not.
func TestHostileMethodStatsCLI(t *testing.T) {
	img := newImage(t)
	mustRun(t, "-image", img, "eval", `genesis.half = method("def half(self, n):\n    return 10 / n")`)
	mustRun(t, "-image", img, "eval", `root.five = 5`)
	for _, target := range []string{"five", "nowhere", "oid:0", "oid:999999", "1.5", "genesis.half", strings.Repeat("x", 100_000)} {
		code, _, errOut := batos(t, "-image", img, "method", "stats", target)
		if code != 1 || errOut == "" || len(errOut) > 4096 {
			t.Errorf("method stats %.20q: exit %d, %.200q", target, code, errOut)
		}
	}
	if _, _, errOut := batos(t, "-image", img, "method", "stats", "five"); !strings.Contains(errOut, "holds 5, not an object") {
		t.Errorf("method stats five: %q", errOut)
	}
	if out := mustRun(t, "-image", img, "method", "stats", "-json", "genesis"); strings.TrimSpace(out) != "[]" {
		t.Errorf("method stats -json before any call: %q, want []", out)
	}
	batos(t, "-image", img, "send", "genesis", "half", "0")
	// A record a person edited into three kinds prints them in order.
	mustRun(t, "-image", img, "eval", `telemetry.methods[oid(genesis) + " half"].versions[0]["error_kinds"] = {"time limit": 1, "error": 1, "step limit": 1}
telemetry.methods[oid(genesis) + " half"].versions[0]["errors"] = 3
telemetry.methods[oid(genesis) + " half"].versions[0]["calls"] = 3`)
	for range 3 {
		if out := mustRun(t, "-image", img, "method", "stats", "genesis"); !strings.Contains(out, "3 (100%: error 1, step limit 1, time limit 1)") {
			t.Fatalf("method stats:\n%s", out)
		}
	}
	// An object the root does not name is labelled by its name slot,
	// which may hold anything: the table keeps one row per method.
	mustRun(t, "-image", img, "eval", `root.box = [new(None, name = "two\nlines\tand a tab" + "x" * 300)]`)
	mustRun(t, "-image", img, "eval", `set_slot(root.box[0], "f", method("def f(self):\n    return 1"))`)
	if code, out, errOut := batos(t, "-image", img, "eval", `root.box[0].f()`); code != 0 {
		t.Fatalf("box f: %s %s", out, errOut)
	}
	out := mustRun(t, "-image", img, "method", "stats")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || len(lines[2]) > 300 {
		t.Errorf("method stats of a method whose owner's name has lines:\n%s", out)
	}
	for _, args := range [][]string{{"method", "stats", "-json"}, {"method", "stats", "-json", "-all"}, {"method", "stats", "-json", "genesis"}} {
		var rows []heartbeat.MethodStats
		if err := json.Unmarshal([]byte(mustRun(t, append([]string{"-image", img}, args...)...)), &rows); err != nil || len(rows) == 0 {
			t.Errorf("%v: %v, %+v", args, err, rows)
		}
	}
}

// alfredRetires answers every audit with its findings and a proposal to
// retire genesis.half; any other persona with what no cycle can use.
func alfredRetires(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	if llmtest.Persona(req) == "ALFRED" && strings.Contains(req.Messages[len(req.Messages)-1].Content, "Audit this living image") {
		return llmtest.Reply{Text: `{"summary": "half fails on 0", "findings": [{"title": "division by zero", "severity": "high",
 "evidence": ["half(0) failed"]}], "proposals": [{"receiver": "genesis", "selector": "half", "kind": "retire", "goal": "nothing needs it"}]}`}, nil
	}
	return llmtest.Reply{Text: "no"}, nil
}

// TestHostileHeartbeatThroughRunCLI: while batos run serves the image,
// the heartbeat's commands go through it: -json outputs parse, bad IDs
// and targets are refused alike, and a decision is taken once.
func TestHostileHeartbeatThroughRunCLI(t *testing.T) {
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Flavor: llmtest.Generic, Responder: &llmtest.Model{Respond: alfredRetires}})
	img := filepath.Join(t.TempDir(), "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	mustRun(t, "-image", img, "eval", `genesis.half = method("def half(self, n):\n    return 10 / n")`)
	mustRun(t, "-image", img, "eval", `root.five = 5`)
	_, _, stop := startRun(t, img, "-llm", fake.URL, "-llm-api", "openai", "-model", "scripted", "-heartbeat", "0")
	defer stop()
	mustRun(t, "-image", img, "send", "genesis", "half", "2")
	batos(t, "-image", img, "send", "genesis", "half", "0")

	var stats []heartbeat.MethodStats
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "method", "stats", "-json", "genesis")), &stats); err != nil || len(stats) != 1 || stats[0].Calls != 2 {
		t.Fatalf("method stats -json through run: %+v, %v", stats, err)
	}
	if code, _, errOut := batos(t, "-image", img, "method", "stats", "five"); code != 1 || !strings.Contains(errOut, "holds 5, not an object") {
		t.Errorf("method stats five through run: exit %d, %q", code, errOut)
	}
	var a command.AuditView
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "audit", "-json")), &a); err != nil || a.ID != 1 || a.State != heartbeat.AuditAnswered {
		t.Fatalf("audit -json through run: %+v, %v", a, err)
	}
	id := heartbeat.ID(a.ID, 1)
	eventually(t, "the proposal to await approval", func() bool {
		var ps []heartbeat.ProposalView
		err := json.Unmarshal([]byte(mustRun(t, "-image", img, "proposal", "list", "-json")), &ps)
		return err == nil && len(ps) == 1 && ps[0].Status == heartbeat.ProposalWaiting
	})
	var shown command.AuditView
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "audit", "show", "-json", "a1")), &shown); err != nil || shown.Facts == nil || len(shown.Findings) != 1 {
		t.Fatalf("audit show -json a1: %+v, %v", shown, err)
	}
	var list []command.AuditView
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "audit", "list", "-json")), &list); err != nil || len(list) != 1 || list[0].Facts != nil {
		t.Fatalf("audit list -json: %+v, %v", list, err)
	}
	var p heartbeat.ProposalView
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "proposal", "show", "-json", id)), &p); err != nil || p.ID != id || p.Method != "genesis.half" {
		t.Fatalf("proposal show -json %s: %+v, %v", id, p, err)
	}
	for _, bad := range []string{"1.", "1.1.1", "1e3.1", strings.Repeat("1", 10_000)} {
		if code, _, _ := batos(t, "-image", img, "proposal", "accept", bad); code != 2 {
			t.Errorf("proposal accept %.20q through run: exit %d, want 2", bad, code)
		}
	}
	if out := mustRun(t, "-image", img, "proposal", "accept", id); !strings.Contains(out, "accepted") {
		t.Fatalf("proposal accept %s: %q", id, out)
	}
	if code, _, errOut := batos(t, "-image", img, "proposal", "accept", id); code != 1 || !strings.Contains(errOut, "awaits no decision") {
		t.Errorf("a second accept: exit %d, %q", code, errOut)
	}
	if out := mustRun(t, "-image", img, "method", "stats", "genesis"); !strings.Contains(out, "genesis.half (deprecated)") {
		t.Errorf("method stats after the retirement:\n%s", out)
	}
}
