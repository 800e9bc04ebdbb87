package httpapi_test

import (
	"bufio"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestEventStreamKeepsUp publishes 1,000 events a second for three
// seconds to a client reading the stream and checks every one arrives,
// in order; then a client that stops reading: the server drops what its
// buffer cannot hold (and says so) rather than grow. The figures are
// logged (go test -run TestEventStreamKeepsUp -v ./internal/httpapi).
func TestEventStreamKeepsUp(t *testing.T) {
	if testing.Short() {
		t.Skip("three seconds of events")
	}
	sv := serve(t, "")
	resp, err := http.Get(sv.base + "/api/v1/events?topics=test.")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	r.ReadString('\n')
	const rate, seconds = 1000, 3
	go func() {
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for i := range rate * seconds {
			<-tick.C
			sv.s.Publish("test.steady", map[string]any{"i": int64(i)})
		}
	}()
	began := time.Now()
	got, lost := 0, 0
	for got < rate*seconds {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended after %d events: %v", got, err)
		}
		if strings.HasPrefix(line, "event: lost") {
			lost++
		}
		if strings.HasPrefix(line, "data: {\"i\":") {
			got++
		}
	}
	if lost > 0 {
		t.Errorf("events lost at %d/s", rate)
	}
	t.Logf("%d events at %d/s: all %d delivered in order in %v", rate*seconds, rate, got, time.Since(began).Round(time.Millisecond))

	// A subscriber that never reads: its buffer fills, the rest is
	// dropped and counted, and memory stays flat however many come.
	stalled, err := http.Get(sv.base + "/api/v1/events?topics=test.")
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Body.Close()
	time.Sleep(100 * time.Millisecond)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for range 20_000 { // fill the buffers and the socket
		sv.s.Publish("test.flood", map[string]any{"pad": strings.Repeat("x", 200)})
	}
	before := heap()
	for range 100_000 {
		sv.s.Publish("test.flood", map[string]any{"pad": strings.Repeat("x", 200)})
	}
	after := heap()
	growth := int64(after) - int64(before)
	if growth > 16<<20 {
		t.Errorf("100,000 events to a stalled client grew the heap by %d bytes", growth)
	}
	t.Logf("a stalled subscriber: 100,000 more events changed the heap by %+d KiB", growth>>10)
}

// TestInspectTenThousandSlots times the server's side of an outliner for
// an object of 10,000 slots: inspect through the HTTP API, the reply
// read whole. The figure is logged.
func TestInspectTenThousandSlots(t *testing.T) {
	sv := serve(t, "")
	b := newBrowser(t, sv)
	if status, _, raw := b.call("eval", `{"code": "genesis.big = new(name = 'big')\nfor i in range(10000):\n    set_slot(genesis.big, 's%d' % i, i)"}`); status != 200 {
		t.Fatalf("make the object: %d %.300s", status, raw)
	}
	var best time.Duration
	var size int
	for range 3 {
		began := time.Now()
		status, m, raw := b.call("inspect", `{"target": "genesis.big"}`)
		took := time.Since(began)
		if status != 200 {
			t.Fatalf("inspect: %d %.300s", status, raw)
		}
		own, _ := m["result"].(map[string]any)["own"].([]any)
		if len(own) != 10001 {
			t.Fatalf("inspect gave %d own slots, want 10,001", len(own))
		}
		if best == 0 || took < best {
			best, size = took, len(raw)
		}
	}
	t.Logf("inspect of 10,000 slots over HTTP: %v (best of 3), %d KiB of JSON", best.Round(time.Millisecond), size>>10)
}
