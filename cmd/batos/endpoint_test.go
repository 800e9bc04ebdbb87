package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// batosWithin is batos cancelled after d: a batos run that should have
// refused its arguments would otherwise serve until the test times out.
func batosWithin(t *testing.T, d time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestRunRefusesBadEndpoint: batos run checks -listen and -events before
// it opens (or creates) the image, and says what it wants.
func TestRunRefusesBadEndpoint(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"host name", []string{"-listen", "tcp://example.com:*"}, "example.com is a host name; use an IP address"},
		{"host name for events", []string{"-events", "tcp://batos.local:*"}, "-events tcp://batos.local:*: batos.local is a host name; use an IP address"},
		{"inproc", []string{"-listen", "inproc://batos"}, "inproc:// is reachable only inside this process"},
		{"no scheme", []string{"-listen", "127.0.0.1:*"}, "want tcp://HOST:PORT"},
		{"other scheme", []string{"-listen", "udp://127.0.0.1:*"}, "want tcp://HOST:PORT"},
		{"no port", []string{"-listen", "tcp://127.0.0.1"}, "want tcp://HOST:PORT"},
		{"bad port", []string{"-events", "tcp://127.0.0.1:http"}, "the port must be a number"},
		{"port too big", []string{"-listen", "tcp://127.0.0.1:70000"}, "the port must be a number"},
		{"empty ipc", []string{"-listen", "ipc://"}, "want ipc://PATH"},
		{"beyond loopback without CURVE", []string{"-listen", "tcp://0.0.0.0:*"}, "beyond loopback: serving there needs CURVE"},
		{"every interface without CURVE", []string{"-events", "tcp://*:*"}, "beyond loopback"},
	}
	for _, c := range cases {
		img := filepath.Join(t.TempDir(), "live_image.db")
		code, out, errOut := batosWithin(t, 5*time.Second, append([]string{"-image", img, "run"}, c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d %q, want 2 and %q", c.name, code, errOut, c.want)
		}
		if out != "" || strings.Contains(errOut, "mind") {
			t.Errorf("%s: started before refusing the endpoint:\n%s%s", c.name, out, errOut)
		}
		if _, err := os.Stat(img); err == nil {
			t.Errorf("%s: the image was created before the endpoint was refused", c.name)
		}
	}
}

// TestRunEndpointForms: localhost in any case binds 127.0.0.1, and an
// ipc:// endpoint serves the other commands.
func TestRunEndpointForms(t *testing.T) {
	img := newImage(t)
	req, ev, stop := startRun(t, img, "-listen", "tcp://LOCALHOST:*", "-events", "tcp://LocalHost:*")
	if !strings.HasPrefix(req, "tcp://127.0.0.1:") || !strings.HasPrefix(ev, "tcp://127.0.0.1:") {
		t.Errorf("LOCALHOST bound %s and %s, want 127.0.0.1", req, ev)
	}
	stop()
	dir := t.TempDir()
	req, _, stop = startRun(t, img, "-listen", "ipc://"+filepath.Join(dir, "req"), "-events", "ipc://"+filepath.Join(dir, "ev"))
	defer stop()
	if req != "ipc://"+filepath.Join(dir, "req") {
		t.Errorf("requests on %s, want the ipc endpoint given", req)
	}
	if out := mustRun(t, "-image", img, "send", "genesis", "describe"); !strings.Contains(out, "genesis") {
		t.Errorf("send through ipc: %q", out)
	}
}
