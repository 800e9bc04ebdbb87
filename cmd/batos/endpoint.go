package main

import (
	"net"
	"strconv"
	"strings"
)

// serveEndpoint checks an endpoint batos run is to bind (-listen or
// -events, named by flag) before anything is opened, and spells it as
// ZeroMQ binds it: tcp://HOST:PORT, HOST an IP address (or [IPv6]),
// localhost in any case (spelled 127.0.0.1: ZeroMQ binds to addresses,
// not host names) or * (every interface), PORT a number or * (one the
// system picks); or ipc://PATH. inproc:// is refused: nothing outside
// this process could reach it. An endpoint beyond loopback needs CURVE
// (secure): the bridge refuses it otherwise, and so is it refused here,
// before the image is opened.
func serveEndpoint(flag, addr string, secure bool) (string, error) {
	switch {
	case strings.HasPrefix(addr, "inproc://"):
		return "", usageError("-%s %s: inproc:// is reachable only inside this process; batos run serves other processes (use tcp://127.0.0.1:PORT or ipc://PATH)", flag, addr)
	case strings.HasPrefix(addr, "ipc://"):
		if strings.TrimPrefix(addr, "ipc://") == "" {
			return "", usageError("-%s %s: want ipc://PATH, a file path for the socket", flag, addr)
		}
		return addr, nil
	}
	hostport, ok := strings.CutPrefix(addr, "tcp://")
	if !ok {
		return "", usageError("-%s %q: want tcp://HOST:PORT (like tcp://127.0.0.1:5555) or ipc://PATH", flag, addr)
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" {
		return "", usageError("-%s %s: want tcp://HOST:PORT (like tcp://127.0.0.1:5555), HOST an IP address", flag, addr)
	}
	if n, err := strconv.Atoi(port); port != "*" && (err != nil || n < 0 || n > 65535) {
		return "", usageError("-%s %s: the port must be a number from 0 to 65535, or * for one the system picks", flag, addr)
	}
	ip := net.ParseIP(host)
	switch {
	case strings.EqualFold(host, "localhost"):
		host, ip = "127.0.0.1", net.IPv4(127, 0, 0, 1)
	case host == "*":
	case ip == nil:
		return "", usageError("-%s %s: %s is a host name; use an IP address (127.0.0.1 for this machine only)", flag, addr, host)
	}
	if !secure && (ip == nil || !ip.IsLoopback()) {
		return "", usageError("-%s %s is beyond loopback: serving there needs CURVE, -curve-key FILE and -allow FILE (batos key gen makes the keys)", flag, addr)
	}
	return "tcp://" + net.JoinHostPort(host, port), nil
}
