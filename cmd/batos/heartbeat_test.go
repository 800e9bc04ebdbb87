package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"batos/internal/cycle"
	"batos/internal/heartbeat"
	"batos/internal/mind"
	"batos/internal/uvm"
)

// TestMethodStatsAndAuditsCLI: method stats shows the calls a send made;
// audits and proposals read an image that has none; an audit without a
// mind says so; bad IDs are usage errors.
func TestMethodStatsAndAuditsCLI(t *testing.T) {
	img := newImage(t)
	mustRun(t, "-image", img, "eval", `genesis.half = method("def half(self, n):\n    return 10 / n")`)
	mustRun(t, "-image", img, "send", "genesis", "half", "2")
	if code, _, _ := batos(t, "-image", img, "send", "genesis", "half", "0"); code != 1 {
		t.Fatalf("send half 0 exited %d, want 1", code)
	}
	out := mustRun(t, "-image", img, "method", "stats", "genesis")
	if !strings.Contains(out, "genesis.half") || !strings.Contains(out, "1 (50%: error 1)") {
		t.Fatalf("method stats:\n%s", out)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "method", "stats", "-json")), &rows); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rows {
		found = found || (r["selector"] == "half" && r["calls"] == float64(2) && r["errors"] == float64(1))
	}
	if !found {
		t.Fatalf("method stats -json: %v", rows)
	}
	if out := mustRun(t, "-image", img, "audit", "list"); !strings.Contains(out, "no audits yet") {
		t.Fatalf("audit list: %s", out)
	}
	if out := mustRun(t, "-image", img, "proposal", "list"); !strings.Contains(out, "no proposals") {
		t.Fatalf("proposal list: %s", out)
	}
	code, _, errOut := batos(t, "-image", img, "audit")
	if code != 1 || !strings.Contains(errOut, "no mind") {
		t.Fatalf("audit without a mind: exit %d, %s", code, errOut)
	}
	for _, args := range [][]string{
		{"proposal", "show", "three"}, {"proposal", "accept"}, {"audit", "show", "x"}, {"audit", "list", "-n", "-1"},
		{"method", "stats", "a", "b"}, {"audit", "extra"},
	} {
		if code, _, _ := batos(t, append([]string{"-image", img}, args...)...); code != 2 {
			t.Errorf("%v exited %d, want 2", args, code)
		}
	}
	if code, _, errOut := batos(t, "-image", img, "proposal", "show", "4.1"); code != 1 || !strings.Contains(errOut, "no such proposal") {
		t.Errorf("proposal show 4.1: exit %d, %s", code, errOut)
	}
}

// TestRunHeartbeatFlag: -heartbeat takes 0 or a duration of at least a
// second.
func TestRunHeartbeatFlag(t *testing.T) {
	img := newImage(t)
	for _, bad := range []string{"-1s", "500ms", "soon"} {
		if code, _, errOut := batos(t, "-image", img, "run", "-heartbeat", bad); code != 2 {
			t.Errorf("run -heartbeat %s: exit %d, %s; want a usage error", bad, code, errOut)
		}
	}
}

// escapeAsker answers an audit whose text holds terminal escapes.
type escapeAsker struct{}

func (escapeAsker) Ask(ctx context.Context, req mind.Request) (*mind.Answer, error) {
	return &mind.Answer{Text: `{"summary": "all \u001b[2Jclear", "findings": [{"title": "t\u001b]0;x\u0007", "severity": "low", "evidence": ["e\rforged line"]}], "proposals": []}`}, nil
}

// TestAuditOutputEscapesControlCharacters: what a model wrote reaches the
// terminal with its control characters escaped, line breaks kept.
func TestAuditOutputEscapesControlCharacters(t *testing.T) {
	img := newImage(t)
	u, _, err := uvm.Open(t.Context(), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := heartbeat.New(u.DB(), &heartbeat.Options{Mind: func(context.Context) (cycle.Asker, *cycle.Machine, error) { return escapeAsker{}, nil, nil }})
	if _, err := h.Audit(t.Context(), "tester"); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "-image", img, "audit", "show", "1")
	if strings.ContainsAny(out, "\x1b\x07\r") {
		t.Fatalf("audit show printed raw control characters: %q", out)
	}
	for _, want := range []string{`all \x1b[2Jclear`, `\a`, `e\rforged line`} {
		if !strings.Contains(out, want) {
			t.Errorf("audit show does not show %q escaped:\n%s", want, out)
		}
	}
}
