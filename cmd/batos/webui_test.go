package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHTTPMountsWebUI: batos run's HTTP server serves the web UI at /.
func TestHTTPMountsWebUI(t *testing.T) {
	f, err := httpOptions("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	if f.opts.Mount == nil {
		t.Fatal("no Mount: the web UI is not served")
	}
	mux := http.NewServeMux()
	f.opts.Mount(mux)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `src="/app.js"`) {
		t.Errorf("GET / is %d: %.120q, want the web UI's page", w.Code, w.Body.String())
	}
	if w.Header().Get("Content-Security-Policy") == "" {
		t.Error("GET / has no Content-Security-Policy")
	}
}
