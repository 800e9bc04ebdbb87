package webui_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"batos/internal/command"
	"batos/internal/httpapi"
	"batos/internal/uvm/uvmtest"
	"batos/internal/webui"
)

// TestServedBesideTheAPI mounts the UI on a real HTTP API over a real
// image and does what the app does on load: the page, its script, the
// CSRF token, and a command.
func TestServedBesideTheAPI(t *testing.T) {
	u := uvmtest.Open(t, nil)
	s, err := httpapi.Listen(command.NewLocal(u, "tester"), httpapi.Options{
		Addr:  "127.0.0.1:0",
		Mount: webui.Mount,
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	base := "http://" + s.Addr()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	fetch := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	resp, page := fetch("/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `src="/app.js"`) {
		t.Fatalf("GET / is %d: %.200q", resp.StatusCode, page)
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != webui.CSP {
		t.Errorf("Content-Security-Policy %q, want %q", got, webui.CSP)
	}
	if resp, _ := fetch("/app.js"); resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("GET /app.js: Content-Type %q", resp.Header.Get("Content-Type"))
	}
	for _, path := range []string{"/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/internal/webui/webui.go", "/api/v1/nosuch"} {
		resp, b := fetch(path)
		if resp.StatusCode != http.StatusNotFound || strings.Contains(b, "root:") {
			t.Errorf("GET %s is %d: %.80q, want 404", path, resp.StatusCode, b)
		}
	}

	_, sess := fetch("/api/v1/session")
	var session struct{ Result struct{ CSRF string } }
	if err := json.Unmarshal([]byte(sess), &session); err != nil || session.Result.CSRF == "" {
		t.Fatalf("no CSRF token: %q", sess)
	}
	post := func(cmd, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/api/v1/"+cmd, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Batos-CSRF", session.Result.CSRF)
		req.Header.Set("Origin", base)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var reply map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
			t.Fatal(err)
		}
		if reply["ok"] != true {
			t.Fatalf("%s %s: %v", cmd, body, reply["error"])
		}
		return reply
	}
	view := post("inspect", `{"target": "genesis"}`)["result"].(map[string]any)
	if view["name"] != "genesis" {
		t.Errorf("inspect genesis: name %v, want genesis", view["name"])
	}
	oid := view["oid"].(map[string]any)["$ref"].(string)

	// The outliner edits a data slot as the app does: eval with self.
	post("eval", `{"code": "self.greeting = \"<script>alert(1)</script>\"", "self": "`+oid+`"}`)
	got := post("send", `{"target": "`+oid+`", "selector": "greeting"}`)["result"].(map[string]any)["value"]
	if got != "<script>alert(1)</script>" {
		t.Errorf("greeting after the edit: %v", got)
	}

	// The mind page: the personas and their usage, and the base model
	// (none here); without a mind the list still answers, with a note.
	personas := post("persona_list", `{}`)["result"].(map[string]any)
	list, _ := personas["personas"].([]any)
	if len(list) == 0 {
		t.Fatalf("persona_list: no personas: %v", personas)
	}
	first := list[0].(map[string]any)
	if _, ok := first["usage"].(map[string]any); !ok || first["name"] != "BRICK" {
		t.Errorf("persona_list: first persona %v, want BRICK with usage", first)
	}
	one := post("persona_show", `{"name": "BRICK"}`)["result"].(map[string]any)
	if ps, _ := one["personas"].([]any); len(ps) != 1 {
		t.Errorf("persona_show BRICK: %v", one)
	}
	post("model_show", `{}`)
	// The audits and catalog pages read these shapes.
	if _, ok := post("audit_list", `{"limit": 50}`)["result"].(map[string]any)["audits"]; !ok {
		t.Error("audit_list: no audits")
	}
	if _, ok := post("proposal_list", `{"all": false}`)["result"].(map[string]any)["proposals"]; !ok {
		t.Error("proposal_list: no proposals")
	}
	if _, ok := post("catalog_search", `{"query": "river", "k": 10, "methods": false}`)["result"].(map[string]any)["hits"]; !ok {
		t.Error("catalog_search: no hits")
	}
}
