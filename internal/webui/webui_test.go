package webui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"batos/internal/cycle"
	"batos/internal/webui"
)

func get(t *testing.T, h http.Handler, method, target string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, "http://127.0.0.1:7424/", nil)
	// The path as a client sends it, dot segments and escapes kept.
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Path, req.URL.RawPath = u.Path, u.RawPath
	for k, v := range header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestServesAssets(t *testing.T) {
	h := webui.Handler()
	tests := []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="/app.js">`},
		{"/index.html", "text/html; charset=utf-8", `<main id="main">`},
		{"/app.js", "text/javascript; charset=utf-8", "function route()"},
		{"/api.js", "text/javascript; charset=utf-8", "export async function call"},
		{"/dom.js", "text/javascript; charset=utf-8", "export function h("},
		{"/outliner.js", "text/javascript; charset=utf-8", "export function showObject"},
		{"/evaluator.js", "text/javascript; charset=utf-8", "export function evaluator"},
		{"/timeline.js", "text/javascript; charset=utf-8", "export function showLog"},
		{"/cycles.js", "text/javascript; charset=utf-8", "export function showCycles"},
		{"/highlight.js", "text/javascript; charset=utf-8", "export function highlight"},
		{"/mind.js", "text/javascript; charset=utf-8", "export function showMind"},
		{"/chart.js", "text/javascript; charset=utf-8", "export function lineChart"},
		{"/cyclestate.js", "text/javascript; charset=utf-8", "export function stateRow"},
		{"/learn.js", "text/javascript; charset=utf-8", "export function learnHelp"},
		{"/audits.js", "text/javascript; charset=utf-8", "export function showAudits"},
		{"/catalog.js", "text/javascript; charset=utf-8", "export function showCatalog"},
		{"/style.css", "text/css; charset=utf-8", "body {"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp := get(t, h, "GET", tt.path, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != webui.CSP {
				t.Errorf("Content-Security-Policy %q, want %q", got, webui.CSP)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache", got)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			if b := body(t, resp); !strings.Contains(b, tt.contains) {
				t.Errorf("body does not hold %q", tt.contains)
			}
		})
	}
}

func TestCSPIsStrict(t *testing.T) {
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(webui.CSP, want) {
			t.Errorf("CSP %q lacks %q", webui.CSP, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "http:", "https:"} {
		if strings.Contains(webui.CSP, bad) {
			t.Errorf("CSP %q allows %q", webui.CSP, bad)
		}
	}
}

func TestRevalidates(t *testing.T) {
	h := webui.Handler()
	resp := get(t, h, "GET", "/app.js", nil)
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	resp = get(t, h, "GET", "/app.js", http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("status %d with If-None-Match, want 304", resp.StatusCode)
	}
}

// TestOnlyEmbeddedFiles: a path naming anything but an embedded file is
// 404, whatever it tries; the app routes by the fragment, so an unknown
// path is not index.html either.
func TestOnlyEmbeddedFiles(t *testing.T) {
	h := webui.Handler()
	for _, path := range []string{
		"/../../etc/passwd", "/%2e%2e/", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd",
		"/internal/webui/ui.go", "/webui.go", "/static/index.html", "/static/app.js", "//etc/passwd",
		"/object/genesis", "/log", "/index.html/", "/app.js/", "/APP.JS", "/.", "/./app.js",
		"/%00", "/app.js%00", "/doc.go", "/nosuch.js",
	} {
		t.Run(path, func(t *testing.T) {
			resp := get(t, h, "GET", path, nil)
			b := body(t, resp)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("status %d, want 404", resp.StatusCode)
			}
			if strings.Contains(b, "root:") || strings.Contains(b, "package webui") || strings.Contains(b, "<html") {
				t.Errorf("body serves a file: %.80q", b)
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != webui.CSP {
				t.Errorf("Content-Security-Policy %q on a 404, want the policy", got)
			}
		})
	}
}

func TestOnlyReads(t *testing.T) {
	resp := get(t, webui.Handler(), "POST", "/", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST / is %d, want 405", resp.StatusCode)
	}
	resp = get(t, webui.Handler(), "HEAD", "/app.js", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("HEAD /app.js is %d %q, want 200 and the type", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// modules are the app's scripts; every one is checked and served.
var modules = []string{"app.js", "api.js", "dom.js", "outliner.js", "evaluator.js", "timeline.js", "cycles.js",
	"highlight.js", "mind.js", "chart.js", "cyclestate.js", "learn.js", "audits.js", "catalog.js", "diff.js", "provenance.js"}

// TestEveryModuleListed: every embedded script is in modules, so none
// escapes TestNoInlineCode, and each is reachable by an import from
// app.js.
func TestEveryModuleListed(t *testing.T) {
	h := webui.Handler()
	entries, err := os.ReadDir("static")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, m := range modules {
		listed[m] = true
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".js") && !listed[e.Name()] {
			t.Errorf("static/%s is not in modules", e.Name())
		}
	}
	imports := regexp.MustCompile(`from '\./([a-z]+\.js)'`)
	reached := map[string]bool{"app.js": true}
	queue := []string{"app.js"}
	for len(queue) > 0 {
		js := queue[0]
		queue = queue[1:]
		for _, m := range imports.FindAllStringSubmatch(body(t, get(t, h, "GET", "/"+js, nil)), -1) {
			if !reached[m[1]] {
				reached[m[1]] = true
				queue = append(queue, m[1])
			}
		}
	}
	for _, m := range modules {
		if !reached[m] {
			t.Errorf("%s is served but app.js never imports it", m)
		}
	}
}

// TestCycleStates: the state row draws the cycle's states, in order.
func TestCycleStates(t *testing.T) {
	src := body(t, get(t, webui.Handler(), "GET", "/cyclestate.js", nil))
	var names []string
	for s := cycle.State(0); ; s++ {
		name := s.String()
		if strings.HasPrefix(name, "State(") {
			break
		}
		names = append(names, "'"+name+"'")
	}
	if want := "export const STATES = [" + strings.Join(names, ", ") + "];"; !strings.Contains(src, want) {
		t.Errorf("cyclestate.js lacks %s", want)
	}
}

// TestNoInlineCode keeps the pages within the CSP and the scripts
// rendering data as text: no inline script or style, no markup built
// from strings, nothing fetched from elsewhere, and every module a
// script imports is served.
func TestNoInlineCode(t *testing.T) {
	h := webui.Handler()
	index := body(t, get(t, h, "GET", "/", nil))
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(index, -1) {
		if !strings.Contains(m, `src="/`) {
			t.Errorf("index.html has an inline script: %s", m)
		}
	}
	for _, bad := range []*regexp.Regexp{regexp.MustCompile(`(?i)\son[a-z]+=`), regexp.MustCompile(`(?i)\sstyle=`), regexp.MustCompile(`(?i)<style`), regexp.MustCompile(`https?://`)} {
		if bad.MatchString(index) {
			t.Errorf("index.html matches %s", bad)
		}
	}
	imports := regexp.MustCompile(`from '\./([a-z]+\.js)'`)
	forbidden := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|https?://|setAttribute\('(href|src|style)|\.href =`)
	for _, js := range modules {
		src := body(t, get(t, h, "GET", "/"+js, nil))
		for _, line := range strings.Split(src, "\n") {
			// routeLink is the one place a link is made, from a route
			// it checks; the SVG namespace is a name, never fetched.
			allowed := js == "dom.js" && strings.TrimSpace(line) == "a.href = route;" ||
				js == "chart.js" && strings.TrimSpace(line) == "const NS = 'http://www.w3.org/2000/svg';"
			if forbidden.MatchString(line) && !allowed {
				t.Errorf("%s: %s", js, strings.TrimSpace(line))
			}
		}
		for _, m := range imports.FindAllStringSubmatch(src, -1) {
			if resp := get(t, h, "GET", "/"+m[1], nil); resp.StatusCode != http.StatusOK {
				t.Errorf("%s imports %s, which is %d", js, m[1], resp.StatusCode)
			}
		}
	}
}
