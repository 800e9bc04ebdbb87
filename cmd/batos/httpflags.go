package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"batos/internal/httpapi"
	"batos/internal/metrics"
	"batos/internal/webui"
)

// httpFlags are run's HTTP settings, nil for -http off.
type httpFlags struct{ opts httpapi.Options }

// minTokenLen bounds how short a token may be: it is all that stands
// between the network and the image.
const minTokenLen = 16

// httpOptions reads -http and -http-token-file: an address (host:port,
// an IP address or localhost), or off; beyond loopback a token file is
// required.
func httpOptions(addr, tokenFile string) (*httpFlags, error) {
	if addr == "off" {
		if tokenFile != "" {
			return nil, usageError("-http-token-file without HTTP (-http off)")
		}
		return nil, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return nil, usageError("-http %q: want HOST:PORT, such as 127.0.0.1:7424 (port 0: any free one), or off", addr)
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	if host != "" && net.ParseIP(host) == nil {
		return nil, usageError("-http %q: %q is a host name; use an IP address", addr, host)
	}
	f := &httpFlags{opts: httpapi.Options{Addr: net.JoinHostPort(host, port), Mount: mountWeb}}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("-http-token-file: %w", err)
		}
		f.opts.Token = strings.TrimSpace(string(b))
		if len(f.opts.Token) < minTokenLen {
			return nil, usageError("-http-token-file %s: the token is %d characters; want at least %d (say, from: head -c 24 /dev/urandom | base64)", tokenFile, len(f.opts.Token), minTokenLen)
		}
	}
	ip := net.ParseIP(host)
	if f.opts.Token == "" && (ip == nil || !ip.IsLoopback()) {
		return nil, usageError("-http %s is beyond loopback: it needs -http-token-file (every request must then carry the token)", addr)
	}
	return f, nil
}

// withLogger is the options for uvm.Serve, or nil for none.
func (f *httpFlags) withLogger(log *slog.Logger) *httpapi.Options {
	if f == nil {
		return nil
	}
	o := f.opts
	o.Logger = log
	return &o
}

// mountWeb adds the web UI and the metrics beside the API.
func mountWeb(mux *http.ServeMux) {
	webui.Mount(mux)
	mux.Handle("GET /metrics", metrics.Handler())
}
