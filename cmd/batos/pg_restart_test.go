package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"batos/internal/command"
	"batos/internal/store/pg/pgtest"
	"batos/internal/zmqbridge"
)

// TestPostgresRestartUnderLoad: three batos run nodes on one database,
// clients incrementing a shared counter through each, while PostgreSQL
// restarts (pg_ctl restart -m fast). Every increment acknowledged
// counts, every one refused does not (the counter is exactly the number
// acknowledged); a refusal says the database was unavailable and the
// change not saved; every node answers again, and reads the final count.
func TestPostgresRestartUnderLoad(t *testing.T) {
	c := pgtest.StartOwn(t)
	url := c.URL(c.CreateDatabase(t))
	mustRun(t, "-store", url, "image", "init")
	mustRun(t, "-store", url, "eval", "genesis.count = 0\ngenesis.bump = method(\"def bump(self):\\n    self.count = self.count + 1\\n    return self.count\")")
	const nodes, clients = 3, 3
	var addrs []string
	for range nodes {
		req, _, stop := startRun(t, url)
		defer stop()
		addrs = append(addrs, req)
	}
	dial := func(addr string) *zmqbridge.Client {
		cl, err := zmqbridge.Dial(addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		return cl
	}
	ctx := context.Background()
	bump := map[string]any{"target": "genesis", "selector": "bump"}

	var mu sync.Mutex
	acked := 0
	refused := map[command.Kind]int{}
	var samples []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, addr := range addrs {
		for range clients {
			cl := dial(addr)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					cctx, cancel := context.WithTimeout(ctx, 45*time.Second)
					_, err := cl.Call(cctx, "send", bump)
					cancel()
					mu.Lock()
					if err == nil {
						acked++
					} else {
						k := command.KindOf(err)
						refused[k]++
						if msg := fmt.Sprintf("%s: %v", k, err); len(samples) < 8 && !slices.Contains(samples, msg) {
							samples = append(samples, msg)
						}
					}
					mu.Unlock()
					if err != nil {
						time.Sleep(10 * time.Millisecond)
					}
				}
			}()
		}
	}
	time.Sleep(time.Second)
	c.Restart(t, 500*time.Millisecond)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d increments acknowledged; refused: %v", acked, refused)
	for _, s := range samples {
		t.Logf("a refusal: %s", s)
	}
	for k, n := range refused {
		if k != command.KindUnavailable {
			t.Errorf("%d increments refused as %s, want unavailable", n, k)
		}
	}
	if refused[command.KindUnavailable] == 0 {
		t.Error("no increment was refused: the restart was not under load")
	}

	// Every node answers again, and reads what was acknowledged: no
	// increment refused counted, none acknowledged was lost, none is
	// served stale.
	for i, addr := range addrs {
		res, err := dial(addr).Call(ctx, "eval", map[string]any{"code": "genesis.count"})
		if m, _ := res.(map[string]any); err != nil || m["value"] != int64(acked) {
			t.Errorf("node %d reads the counter as %v (%v), want %d, the increments acknowledged", i, res, err, acked)
		}
	}
	// And each still commits, and the next read through every other node
	// sees it.
	for i, addr := range addrs {
		if _, err := dial(addr).Call(ctx, "send", bump); err != nil {
			t.Fatalf("node %d after the restart: %v", i, err)
		}
		acked++
		for j, other := range addrs {
			res, err := dial(other).Call(ctx, "eval", map[string]any{"code": "genesis.count"})
			if m, _ := res.(map[string]any); err != nil || m["value"] != int64(acked) {
				t.Errorf("node %d, after node %d bumped, reads %v (%v), want %d", j, i, res, err, acked)
			}
		}
	}
}
