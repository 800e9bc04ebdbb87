package zmqbridge_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"batos/internal/command"
	"batos/internal/zmqbridge"
)

func startEcho(t *testing.T) *zmqbridge.EchoServer {
	t.Helper()
	e, err := zmqbridge.StartEcho("tcp://127.0.0.1:*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// TestBenchLoad runs a short load against the echo and against the bridge.
// It checks the counts and their consistency, never the timing.
func TestBenchLoad(t *testing.T) {
	_, bridge, _ := startServer(t, &fakeService{})
	echo := startEcho(t).Endpoint()
	cases := []struct {
		name              string
		addr              string
		clients, inFlight int
	}{
		{"echo, 1 client", echo, 1, 10},
		{"echo, 3 clients", echo, 3, 10},
		{"bridge, 1 client", bridge, 1, 10},
		{"bridge, 3 clients", bridge, 3, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := zmqbridge.Load{
				Addr: tc.addr, Clients: tc.clients, InFlight: tc.inFlight,
				Request: map[string]any{"command": "ping"},
				Warmup:  20 * time.Millisecond, Duration: 50 * time.Millisecond,
			}.Run(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if res.RoundTrips == 0 || len(res.Latencies) != res.RoundTrips {
				t.Fatalf("got %d round trips and %d latencies, want as many and some", res.RoundTrips, len(res.Latencies))
			}
			if !slices.IsSorted(res.Latencies) {
				t.Errorf("latencies are not sorted")
			}
			if res.PerS() <= 0 {
				t.Errorf("got %v round trips/s, want a positive rate", res.PerS())
			}
			p50, p99 := res.Quantile(0.5), res.Quantile(0.99)
			if p50 <= 0 || p99 < p50 || p99 > res.Latencies[len(res.Latencies)-1] {
				t.Errorf("got p50 %s, p99 %s, max %s: want 0 < p50 ≤ p99 ≤ max", p50, p99, res.Latencies[len(res.Latencies)-1])
			}
		})
	}
}

// TestBenchLoadErrorReply: an error reply ends the run with its message.
func TestBenchLoadErrorReply(t *testing.T) {
	_, bridge, _ := startServer(t, &fakeService{})
	_, err := zmqbridge.Load{
		Addr: bridge, Clients: 2, InFlight: 4,
		Request:  map[string]any{"command": "format_disk"},
		Duration: 50 * time.Millisecond,
	}.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), string(command.KindUnknownCommand)) {
		t.Errorf("got %v, want an unknown_command error", err)
	}
}

// TestBenchLoadStall: a server that never answers ends the run.
func TestBenchLoadStall(t *testing.T) {
	fs := &fakeService{slow: make(chan struct{})}
	_, bridge, _ := startServer(t, fs)
	t.Cleanup(func() { close(fs.slow) }) // before the server's cleanup, which waits for the sends
	_, err := zmqbridge.Load{
		Addr: bridge, InFlight: 2,
		Request:  map[string]any{"command": "send", "target": "genesis", "selector": "slow"},
		Duration: 10 * time.Millisecond, Stall: 200 * time.Millisecond,
	}.Run(t.Context())
	if !errors.Is(err, zmqbridge.ErrStalled) {
		t.Errorf("got %v, want ErrStalled", err)
	}
}

func TestBenchQuantile(t *testing.T) {
	r := &zmqbridge.LoadResult{}
	for i := 1; i <= 100; i++ {
		r.Latencies = append(r.Latencies, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0, time.Millisecond}, {0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := r.Quantile(tc.q); got != tc.want {
			t.Errorf("Quantile(%v) = %s, want %s", tc.q, got, tc.want)
		}
	}
	if got := (&zmqbridge.LoadResult{}).Quantile(0.5); got != 0 {
		t.Errorf("Quantile of nothing = %s, want 0", got)
	}
}

func TestBenchEchoLoopbackOnly(t *testing.T) {
	if _, err := zmqbridge.StartEcho("tcp://0.0.0.0:*"); !errors.Is(err, zmqbridge.ErrInsecure) {
		t.Errorf("got %v, want ErrInsecure", err)
	}
}
