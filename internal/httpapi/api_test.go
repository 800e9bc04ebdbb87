package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"batos/internal/command"
	"batos/internal/httpapi"
	"batos/internal/metrics"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
)

// served is a real HTTP API over a real image.
type served struct {
	s    *httpapi.Server
	u    *uvm.UVM
	base string
}

func serve(t *testing.T, token string) *served {
	t.Helper()
	var published atomic.Pointer[httpapi.Server]
	u := uvmtest.Open(t, &uvm.Options{Events: func(topic string, payload map[string]any) {
		if s := published.Load(); s != nil {
			s.Publish(topic, payload)
		}
	}})
	s, err := httpapi.Listen(command.NewLocal(u, "tester"), httpapi.Options{Addr: "127.0.0.1:0", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	published.Store(s)
	go s.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return &served{s: s, u: u, base: "http://" + s.Addr()}
}

// browser is a client with a cookie jar and the CSRF token, as the web
// UI has them.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
	csrf string
}

func newBrowser(t *testing.T, sv *served) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}, base: sv.base}
	resp, err := b.c.Get(sv.base + "/api/v1/session")
	if err != nil {
		t.Fatal(err)
	}
	var reply struct{ Result struct{ CSRF string } }
	json.NewDecoder(resp.Body).Decode(&reply)
	resp.Body.Close()
	if reply.Result.CSRF == "" {
		t.Fatalf("no CSRF token from /api/v1/session (status %d)", resp.StatusCode)
	}
	b.csrf = reply.Result.CSRF
	return b
}

// call posts a command and decodes its reply.
func (b *browser) call(cmd string, body string) (int, map[string]any, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.base+"/api/v1/"+cmd, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Batos-CSRF", b.csrf)
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return resp.StatusCode, m, string(raw)
}

func kind(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	k, _ := e["kind"].(string)
	return k
}

// TestCommandsOverHTTP: the commands answer over HTTP as over the bridge,
// through the same Handle; JSON spells the forms it lacks as tagged
// objects; each error kind has its status.
func TestCommandsOverHTTP(t *testing.T) {
	sv := serve(t, "")
	b := newBrowser(t, sv)
	status, m, raw := b.call("eval", `{"id": 7, "code": "genesis.n = 2\ngenesis.n * 3"}`)
	if status != 200 || m["id"] != 7.0 || !strings.Contains(raw, `"value":6}`) {
		t.Errorf("eval: %d %s", status, raw)
	}
	_, _, raw = b.call("eval", `{"code": "1.0 + 1"}`)
	if !strings.Contains(raw, `"value":2.0`) {
		t.Errorf("a float must be written as one: %s", raw)
	}
	_, _, raw = b.call("send", `{"target": {"$ref": "oid:3"}, "selector": "name"}`)
	if !strings.Contains(raw, `"value":"genesis"`) {
		t.Errorf("send to a $ref target: %s", raw)
	}
	_, _, raw = b.call("inspect", `{"target": "genesis"}`)
	if !strings.Contains(raw, `"oid":{"$ref":"oid:3"}`) {
		t.Errorf("inspect gives references as {\"$ref\"}: %s", raw)
	}
	_, _, raw = b.call("send", `{"target": "genesis", "selector": "describe"}`)
	if !strings.Contains(raw, `"ok":true`) {
		t.Errorf("send describe: %s", raw)
	}
	_, _, raw = b.call("eval", `{"code": "b'\\x00\\x01'"}`)
	if !strings.Contains(raw, `{"$bin":"AAE="}`) {
		t.Errorf("bytes come as $bin: %s", raw)
	}
	for _, tc := range []struct {
		cmd, body string
		status    int
		kind      string
	}{
		{"send", `{"target": "nobody", "selector": "x"}`, 404, "not_found"},
		{"frobnicate", `{}`, 404, "unknown_command"},
		{"log", `{"limt": 5}`, 400, "bad_request"},
		{"eval", `{"code": "1 +"}`, 422, "method_error"},
		{"send", `{"target": "genesis", "selector": "nothing_here"}`, 503, "no_mind"},
		{"eval", `{"command": "eval", "code": "1"}`, 400, "bad_request"},
	} {
		status, m, raw := b.call(tc.cmd, tc.body)
		if status != tc.status || kind(m) != tc.kind {
			t.Errorf("%s %s: %d %s, want %d %s", tc.cmd, tc.body, status, raw, tc.status, tc.kind)
		}
	}
}

// TestHostileBodies: bodies that are not what the API takes are refused
// with bad_request, before any command runs.
func TestHostileBodies(t *testing.T) {
	sv := serve(t, "")
	b := newBrowser(t, sv)
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	for name, body := range map[string]string{
		"not JSON":          `{"code": `,
		"an array":          `[1, 2]`,
		"trailing bytes":    `{"code": "1"} {}`,
		"duplicate keys":    `{"code": "1", "code": "2"}`,
		"beyond int64":      `{"code": "1", "id": 99999999999999999999}`,
		"too deep":          `{"args": ` + deep + `}`,
		"bad $ref":          `{"target": {"$ref": "oid:0"}, "selector": "x"}`,
		"bad $bin":          `{"code": {"$bin": "!!"}}`,
		"over 1 MiB":        `{"code": "` + strings.Repeat("x", 1<<20) + `"}`,
		"not UTF-8 in code": "{\"code\": \"\xff\"}",
	} {
		status, m, raw := b.call("eval", body)
		if status != 400 || kind(m) != "bad_request" {
			t.Errorf("%s: %d %.200s, want 400 bad_request", name, status, raw)
		}
	}
	req, _ := http.NewRequest("POST", sv.base+"/api/v1/eval", strings.NewReader(`{"code": "1"}`))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("X-Batos-CSRF", b.csrf)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("a body that is not declared JSON: %d, want 400", resp.StatusCode)
	}
}

// TestHostileValuesAreEscaped: values that would be markup or script in a
// page come back as JSON text that holds none of it.
func TestHostileValuesAreEscaped(t *testing.T) {
	sv := serve(t, "")
	b := newBrowser(t, sv)
	for _, v := range []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, `javascript:alert(1)`} {
		code, _ := json.Marshal(fmt.Sprintf("genesis.evil = %q\ngenesis.evil", v))
		_, m, raw := b.call("eval", `{"code": `+string(code)+`}`)
		if strings.Contains(raw, "<script") || strings.Contains(raw, "<img") {
			t.Errorf("a reply carries raw markup: %s", raw)
		}
		res, _ := m["result"].(map[string]any)
		if res["value"] != v {
			t.Errorf("the value did not survive: %v, want %q", res["value"], v)
		}
	}
}

// TestCSRFAndOrigin: a browser's state-changing request needs its CSRF
// token and must be same-origin; a page elsewhere (another Host) is not
// served at all without a token.
func TestCSRFAndOrigin(t *testing.T) {
	sv := serve(t, "")
	b := newBrowser(t, sv)
	post := func(mod func(*http.Request)) int {
		req, _ := http.NewRequest("POST", sv.base+"/api/v1/eval", strings.NewReader(`{"code": "genesis.x = 1"}`))
		req.Header.Set("Content-Type", "application/json")
		mod(req)
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post(func(r *http.Request) {}); s != 403 {
		t.Errorf("no CSRF header: %d, want 403", s)
	}
	if s := post(func(r *http.Request) { r.Header.Set("X-Batos-CSRF", "0000") }); s != 403 {
		t.Errorf("a wrong CSRF header: %d, want 403", s)
	}
	if s := post(func(r *http.Request) {
		r.Header.Set("X-Batos-CSRF", b.csrf)
		r.Header.Set("Origin", "http://evil.example")
	}); s != 403 {
		t.Errorf("cross-origin: %d, want 403", s)
	}
	if s := post(func(r *http.Request) {
		r.Header.Set("X-Batos-CSRF", b.csrf)
		r.Header.Set("Origin", sv.base)
	}); s != 200 {
		t.Errorf("same origin with the token: %d, want 200", s)
	}
	if s := post(func(r *http.Request) {
		r.Header.Set("X-Batos-CSRF", b.csrf)
		r.Host = "evil.example:7424"
	}); s != 403 {
		t.Errorf("another Host (DNS rebinding): %d, want 403", s)
	}
}

// TestToken: with a token, every request needs it (bearer, or the
// session cookie a login sets); a wrong one is "unauthorised", nothing
// more.
func TestToken(t *testing.T) {
	const token = "s3cret-token-of-some-length"
	sv := serve(t, token)
	get := func(auth string) (int, string) {
		req, _ := http.NewRequest("POST", sv.base+"/api/v1/stats", strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, auth := range []string{"", "Bearer wrong", "Bearer " + token[:10], "Basic " + token} {
		if s, body := get(auth); s != 401 || strings.TrimSpace(body) != "unauthorised" {
			t.Errorf("auth %q: %d %q, want 401 unauthorised", auth, s, body)
		}
	}
	if s, body := get("Bearer " + token); s != 200 {
		t.Errorf("the right bearer token: %d %s", s, body)
	}
	// A browser logs in with the form, then calls with its cookie and
	// CSRF token.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(sv.base+"/login", url.Values{"token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("login with a wrong token: %d", resp.StatusCode)
	}
	resp, err = c.PostForm(sv.base+"/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	b := &browser{t: t, c: c, base: sv.base}
	resp, err = c.Get(sv.base + "/api/v1/session")
	if err != nil {
		t.Fatal(err)
	}
	var reply struct{ Result struct{ CSRF string } }
	json.NewDecoder(resp.Body).Decode(&reply)
	resp.Body.Close()
	b.csrf = reply.Result.CSRF
	if status, _, raw := b.call("stats", `{}`); status != 200 {
		t.Errorf("stats with the session cookie: %d %s", status, raw)
	}
}

// TestEventStream: a commit made through the API reaches a subscriber of
// the event stream, and a burst of events is delivered whole and in
// order to a client that reads.
func TestEventStream(t *testing.T) {
	sv := serve(t, "")
	b := newBrowser(t, sv)
	resp, err := http.Get(sv.base + "/api/v1/events?topics=commit.,test.")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	r.ReadString('\n') // the opening comment: subscribed
	const n = 3000
	go func() {
		for i := range n {
			sv.s.Publish("test.burst", map[string]any{"i": int64(i)})
		}
		b.call("eval", `{"code": "genesis.evt = 1"}`)
	}()
	next := 0
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		if strings.HasPrefix(line, "event: lost") {
			t.Fatalf("events lost in a burst of %d", n)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var ev map[string]any
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatalf("event data %q: %v", data, err)
			}
			if i, ok := ev["i"].(float64); ok {
				if int(i) != next {
					t.Fatalf("event %v after %d", i, next-1)
				}
				next++
				continue
			}
			if _, ok := ev["tid"]; ok && next == n {
				return // the commit event, after the whole burst
			}
		}
	}
	t.Fatalf("got %d of %d events and no commit event", next, n)
}

// TestRequestBodyIsBounded: the reply to an oversized body is an error,
// and the server goes on serving.
func TestRequestBodyIsBounded(t *testing.T) {
	sv := serve(t, "")
	b := newBrowser(t, sv)
	big := bytes.Repeat([]byte("a"), 2<<20)
	status, _, _ := b.call("eval", `{"code": "`+string(big)+`"}`)
	if status != 400 {
		t.Errorf("a 2 MiB body: %d, want 400", status)
	}
	if status, _, raw := b.call("stats", `{}`); status != 200 {
		t.Errorf("after it: %d %s", status, raw)
	}
}

// TestLoginPage: with a token, a browser opening a page is sent to the
// login form, which posts the token; the API still answers 401.
func TestLoginPage(t *testing.T) {
	sv := serve(t, "s3cret-token-of-some-length")
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(sv.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("GET / without a session: %d %q, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = c.Get(sv.base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `<form method="post" action="/login">`) || strings.Contains(string(body), "<script") {
		t.Errorf("the login page: %d %s", resp.StatusCode, body)
	}
	resp, err = c.Get(sv.base + "/api/v1/session")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("the API without a session: %d, want 401", resp.StatusCode)
	}
}

// TestRequestsAreCountedByTransport: the request metrics tell HTTP's
// requests from the bridge's.
func TestRequestsAreCountedByTransport(t *testing.T) {
	sv := serve(t, "")
	b := newBrowser(t, sv)
	b.call("stats", `{}`)
	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if want := `batos_requests_total{command="stats",outcome="ok",transport="http"}`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// TestSlotRemoveAndUndoConflict: slot_remove takes an own slot away (an
// undo brings it back), refuses what is not there, and an undo a later
// transaction blocks names it in blocked_by.
func TestSlotRemoveAndUndoConflict(t *testing.T) {
	sv := serve(t, "")
	b := newBrowser(t, sv)
	tidOf := func(raw string) string {
		t.Helper()
		var m struct{ Result struct{ TID string } }
		if err := json.Unmarshal([]byte(raw), &m); err != nil || len(m.Result.TID) != 16 {
			t.Fatalf("no tid in %s", raw)
		}
		return m.Result.TID
	}
	b.call("eval", `{"code": "genesis.doomed = 41"}`)
	status, _, raw := b.call("slot_remove", `{"target": "genesis", "name": "doomed"}`)
	if status != 200 || !strings.Contains(raw, `"removed":"41"`) {
		t.Fatalf("slot_remove: %d %s", status, raw)
	}
	removal := tidOf(raw)
	if _, _, raw := b.call("eval", `{"code": "has_slot(genesis, 'doomed')"}`); !strings.Contains(raw, `"value":false`) {
		t.Errorf("the slot is still there: %s", raw)
	}
	for _, tc := range []struct {
		body   string
		status int
		kind   string
	}{
		{`{"target": "genesis", "name": "doomed"}`, 404, "not_found"},
		{`{"target": "genesis", "name": "describe_inherited_nowhere"}`, 404, "not_found"},
		{`{"target": "genesis", "name": ""}`, 400, "bad_request"},
		{`{"target": "genesis", "name": 3}`, 400, "bad_request"},
		{`{"target": "genesis"}`, 400, "bad_request"},
		{`{"target": "nobody", "name": "x"}`, 404, "not_found"},
		{`{"target": "genesis", "name": "x", "extra": 1}`, 400, "bad_request"},
	} {
		status, m, raw := b.call("slot_remove", tc.body)
		if status != tc.status || kind(m) != tc.kind {
			t.Errorf("slot_remove %s: %d %s, want %d %s", tc.body, status, raw, tc.status, tc.kind)
		}
	}

	// An undo brings the slot back.
	if status, _, raw := b.call("undo", `{"tid": "`+removal+`"}`); status != 200 {
		t.Fatalf("undo of the removal: %d %s", status, raw)
	}
	if _, _, raw := b.call("eval", `{"code": "genesis.doomed"}`); !strings.Contains(raw, `"value":41`) {
		t.Errorf("the removed slot is not back: %s", raw)
	}

	// A later write to genesis blocks undoing a removal; the error names
	// the transaction that blocks it.
	_, _, raw = b.call("slot_remove", `{"target": "genesis", "name": "doomed"}`)
	removal = tidOf(raw)
	b.call("eval", `{"code": "genesis.after = 1"}`)
	_, _, raw = b.call("log", `{"limit": 1}`)
	var log struct{ Result []struct{ TID string } }
	if err := json.Unmarshal([]byte(raw), &log); err != nil || len(log.Result) != 1 {
		t.Fatalf("log: %s", raw)
	}
	blocker := log.Result[0].TID
	status, m, raw := b.call("undo", `{"tid": "`+removal+`"}`)
	if status != 409 || kind(m) != "conflict" {
		t.Fatalf("undo of a blocked removal: %d %s", status, raw)
	}
	e, _ := m["error"].(map[string]any)
	blocked, _ := e["blocked_by"].([]any)
	if len(blocked) != 1 {
		t.Fatalf("blocked_by: %s", raw)
	}
	first, _ := blocked[0].(map[string]any)
	if first["tid"] != blocker || !strings.Contains(raw, `"oid":{"$ref":"oid:3"}`) {
		t.Errorf("blocked_by names %v, want %s on oid:3: %s", first, blocker, raw)
	}
}
