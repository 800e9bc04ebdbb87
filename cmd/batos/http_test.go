package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var httpLine = regexp.MustCompile(`, http://(\S+);`)

// TestRunServesHTTP: batos run serves the JSON API beside the bridge, over
// the same image: what one transport commits, the other reads.
func TestRunServesHTTP(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runIO(ctx, []string{"-image", img, "run", "-listen", "tcp://127.0.0.1:*", "-events", "tcp://127.0.0.1:*", "-http", "127.0.0.1:0"}, strings.NewReader(""), &out, &errOut)
	}()
	var addr string
	for deadline := time.Now().Add(15 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := httpLine.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("no HTTP address in %q%s", out.String(), errOut.String())
	}
	mustRun(t, "-image", img, "eval", "genesis.via = 'bridge'")
	base := "http://" + addr
	resp, err := http.Get(base + "/api/v1/session")
	if err != nil {
		t.Fatal(err)
	}
	var session struct{ Result struct{ CSRF string } }
	json.NewDecoder(resp.Body).Decode(&session)
	resp.Body.Close()
	req, _ := http.NewRequest("POST", base+"/api/v1/send", strings.NewReader(`{"target": "genesis", "selector": "via"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Batos-CSRF", session.Result.CSRF)
	req.AddCookie(&http.Cookie{Name: "batos_csrf", Value: session.Result.CSRF})
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"value":"bridge"`) {
		t.Errorf("send over HTTP: %d %s", resp.StatusCode, body)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("batos run exited %d: %s", code, errOut.String())
	}
}

// TestRunHTTPFlags: -http beyond loopback needs a token file; a short
// token, a host name or a token file without HTTP are refused before
// anything opens.
func TestRunHTTPFlags(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-http", "0.0.0.0:0"}, "needs -http-token-file"},
		{[]string{"-http", ":0"}, "needs -http-token-file"},
		{[]string{"-http", "example.com:80"}, "is a host name"},
		{[]string{"-http", "127.0.0.1"}, "want HOST:PORT"},
		{[]string{"-http", "127.0.0.1:0", "-http-token-file", short}, "want at least 16"},
		{[]string{"-http", "off", "-http-token-file", short}, "without HTTP"},
	} {
		img := filepath.Join(t.TempDir(), "live_image.db")
		code, _, errOut := batosWithin(t, 5*time.Second, append([]string{"-image", img, "run", "-listen", "tcp://127.0.0.1:*", "-events", "tcp://127.0.0.1:*"}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("run %v: exit %d %q, want 2 and %q", tc.args, code, errOut, tc.want)
		}
		if _, err := os.Stat(img); err == nil {
			t.Errorf("run %v created the image before refusing", tc.args)
		}
	}
}

// TestRunServesMetrics: /metrics answers in Prometheus's text format with
// batos's own families, after a send.
func TestRunServesMetrics(t *testing.T) {
	opts, err := httpOptions("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	opts.opts.Mount(mux)
	img := filepath.Join(t.TempDir(), "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	mustRun(t, "-image", img, "send", "genesis", "name")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, family := range []string{"batos_store_commits_total", "batos_sends_total", "go_goroutines"} {
		if !strings.Contains(body, family) {
			t.Errorf("/metrics lacks %s", family)
		}
	}
}
