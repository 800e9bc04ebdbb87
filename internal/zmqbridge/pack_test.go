package zmqbridge_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/uvm/uvmtest"
	"batos/internal/zmqbridge"
)

func TestParseBefore(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	tid := store.TIDAt(time.Date(2026, 11, 28, 9, 30, 0, 123456789, time.UTC))
	cases := []struct {
		in   string
		want time.Time
	}{
		{"now", now},
		{"36h", now.Add(-36 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"7d", now.AddDate(0, 0, -7)},
		{"0d", now},
		{"2026-11-01T08:00:00Z", time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)},
		{"2026-11-01T08:00:00.5+02:00", time.Date(2026, 11, 1, 6, 0, 0, 5e8, time.UTC)},
		{"2026-11-01", time.Date(2026, 11, 1, 0, 0, 0, 0, time.Local)},
		{tid.String(), tid.Time()},
	}
	for _, tc := range cases {
		got, err := command.ParseBefore(tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseBefore(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if got, _ := command.ParseBefore(tid.String(), now); store.TIDAt(got) != tid {
		t.Errorf("a TID does not round-trip: %s became %s", tid, store.TIDAt(got))
	}
	for _, bad := range []string{"", "yesterday", "-1h", "-2d", "1.5d", "07d", "0000000000000000", "ffffffffffffffff", "0x18ec915f7ecc79", "18ec915f7ecc798", "2026-13-01"} {
		if got, err := command.ParseBefore(bad, now); err == nil {
			t.Errorf("ParseBefore(%q) = %v, want an error", bad, got)
		}
	}
}

// packService is fakeService that packs: it records each request and
// answers a fixed result.
type packService struct {
	fakeService
	mu   sync.Mutex
	reqs []command.PackRequest
}

func (p *packService) Pack(ctx context.Context, req command.PackRequest) (command.Packed, error) {
	p.mu.Lock()
	p.reqs = append(p.reqs, req)
	p.mu.Unlock()
	return command.Packed{
		Pack:    store.PackResult{Revisions: 3, Objects: 40, Transactions: 2, Blobs: 1, BlobBytes: 1 << 20},
		Compact: store.CompactResult{BytesBefore: 1 << 30, BytesAfter: 1 << 29},
		Took:    1500 * time.Millisecond,
	}, nil
}

func (p *packService) requests() []command.PackRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]command.PackRequest(nil), p.reqs...)
}

// TestPackArguments: a pack request without a usable "before" (or
// "compact": true) is a bad_request that never reaches the service; a
// usable one reaches it as its command.PackRequest, and the result comes
// back in the documented form, with only the compaction's figures for a
// compaction alone.
func TestPackArguments(t *testing.T) {
	svc := &packService{}
	_, addr, _ := startServer(t, svc)
	d := dealer(t, addr)
	for name, args := range map[string]map[string]any{
		"no before":        {},
		"before nil":       {"before": nil},
		"before integer":   {"before": int64(7)},
		"before words":     {"before": "last tuesday"},
		"before zero":      {"before": "0000000000000000"},
		"negative age":     {"before": "-7d"},
		"compact false":    {"compact": false},
		"compact string":   {"compact": "yes", "before": "now"},
		"compact, bad age": {"compact": true, "before": "soon"},
	} {
		args["id"], args["command"] = int64(1), "pack"
		if r := req(t, d, args); r["ok"] != false || errKind(r) != command.KindBadRequest {
			t.Errorf("%s: got %v, want bad_request", name, r)
		}
	}
	if got := svc.requests(); len(got) != 0 {
		t.Fatalf("refused packs reached the service: %+v", got)
	}

	cut := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	r := req(t, d, map[string]any{"id": int64(2), "command": "pack", "before": "2026-11-01T08:00:00Z"})
	want := map[string]any{"before": "2026-11-01T08:00:00Z", "revisions": int64(3), "objects": int64(40), "transactions": int64(2),
		"blobs": int64(1), "blob_bytes": int64(1 << 20), "ms": int64(1500)}
	if diff := cmp.Diff(r["result"], want); r["ok"] != true || diff != "" {
		t.Errorf("pack: got %v, want (-got +want):\n%s", r, diff)
	}
	r = req(t, d, map[string]any{"id": int64(3), "command": "pack", "compact": true})
	want = map[string]any{"bytes_before": int64(1 << 30), "bytes_after": int64(1 << 29), "ms": int64(1500)}
	if diff := cmp.Diff(r["result"], want); r["ok"] != true || diff != "" {
		t.Errorf("compaction alone: got %v, want (-got +want):\n%s", r, diff)
	}
	before := time.Now()
	r = req(t, d, map[string]any{"id": int64(4), "command": "pack", "before": "now", "compact": true})
	if res, _ := r["result"].(map[string]any); r["ok"] != true || res["revisions"] != int64(3) || res["bytes_after"] != int64(1<<29) {
		t.Errorf("pack and compaction: got %v", r)
	}
	got := svc.requests()
	if len(got) != 3 {
		t.Fatalf("the service got %+v, want 3 packs", got)
	}
	if !got[0].Before.Equal(cut) || got[0].Compact {
		t.Errorf("pack: the service got %+v, want before %v without compaction", got[0], cut)
	}
	if !got[1].Before.IsZero() || !got[1].Compact {
		t.Errorf("compaction alone: the service got %+v", got[1])
	}
	if got[2].Before.Before(before) || got[2].Before.After(time.Now()) || !got[2].Compact {
		t.Errorf("pack now and compaction: the service got %+v, want a cut within the request", got[2])
	}
}

// TestPackWhileSending: the pack command packs the image the server holds
// while sends from other clients go on, answered while the pack request
// is in flight; it reports what it dropped, nothing a send wrote is lost,
// and the image verifies.
func TestPackWhileSending(t *testing.T) {
	ctx := context.Background()
	u := uvmtest.Open(t, nil)
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	d := dealer(t, addr)
	d.SetRcvtimeo(60 * time.Second)
	// Garbage: objects nothing refers to, and superseded revisions.
	if r := req(t, d, map[string]any{"id": int64(1), "command": "eval", "code": "[genesis.clone(n = i) for i in range(3000)]\ngenesis.count = 0"}); r["ok"] != true {
		t.Fatalf("make garbage: %v", r)
	}
	for i := range 20 {
		if r := req(t, d, map[string]any{"id": int64(2), "command": "eval", "code": fmt.Sprintf("genesis.note = %d", i)}); r["ok"] != true {
			t.Fatalf("revise: %v", r)
		}
	}

	var packing atomic.Bool
	var sent, duringPack atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := zmqbridge.Dial(addr, nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := c.Call(cctx, "eval", map[string]any{"code": "genesis.count = genesis.count + 1\nroot.scratch = genesis.clone()"})
				cancel()
				if err != nil {
					t.Errorf("send during the pack: %v", err)
					return
				}
				sent.Add(1)
				if packing.Load() {
					duringPack.Add(1)
				}
			}
		}()
	}
	for deadline := time.Now().Add(30 * time.Second); sent.Load() < 10; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("only %d sends in 30 s before the pack", sent.Load())
		}
	}
	packing.Store(true)
	r := req(t, d, map[string]any{"id": int64(3), "command": "pack", "before": "now"})
	packing.Store(false)
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()

	res, _ := r["result"].(map[string]any)
	if r["ok"] != true || res["objects"].(int64) < 3000 || res["revisions"].(int64) < 20 || res["transactions"] == nil || res["before"] == nil {
		t.Fatalf("pack: %v, want at least the 3000 clones and 20 revisions dropped", r)
	}
	if duringPack.Load() == 0 {
		t.Errorf("no send was answered while the pack was in flight (%d sends in all, pack took %v ms): sends waited for the pack", sent.Load(), res["ms"])
	}
	var count int64
	err := u.DB().View(ctx, func(tx *image.Tx) error {
		names, err := tx.RootNames()
		if err != nil {
			return err
		}
		g, err := tx.Object(names["genesis"])
		if err != nil {
			return err
		}
		v, _ := g.Get("count")
		n, _ := v.(image.Int)
		count = int64(n)
		return nil
	})
	if err != nil || count != sent.Load() {
		t.Errorf("genesis.count = %d (%v), want %d: a send made during the pack was lost", count, err, sent.Load())
	}
	rep, err := u.Store().Verify(ctx, image.Refs)
	if err != nil || !rep.OK() {
		t.Errorf("verify after the pack: %v %+v", err, rep)
	}
	t.Logf("pack dropped %v objects, %v revisions in %v ms; %d of %d sends answered while it was in flight", res["objects"], res["revisions"], res["ms"], duringPack.Load(), sent.Load())
}

// TestPackBeforeAnyTransactionDropsNothing: a cut older than every
// transaction (1600, or an age of centuries) leaves the history whole,
// and the reply's cut is a real time.
func TestPackBeforeAnyTransactionDropsNothing(t *testing.T) {
	u := uvmtest.Open(t, nil)
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	d := dealer(t, addr)
	for i := range 3 {
		if r := req(t, d, map[string]any{"id": int64(i), "command": "eval", "code": fmt.Sprintf("genesis.pq = %d", i)}); r["ok"] != true {
			t.Fatal(r)
		}
	}
	before := req(t, d, map[string]any{"id": int64(10), "command": "history", "target": "genesis", "limit": int64(0)})
	for i, cut := range []string{"1600-01-01", "0001-01-01T00:00:00Z", "99999999999d"} {
		r := req(t, d, map[string]any{"id": int64(20 + i), "command": "pack", "before": cut})
		res, _ := r["result"].(map[string]any)
		if r["ok"] != true || res["revisions"] != int64(0) || res["before"] != "1970-01-01T00:00:00.000000001Z" {
			t.Errorf("pack before %s: %v", cut, r)
		}
	}
	after := req(t, d, map[string]any{"id": int64(30), "command": "history", "target": "genesis", "limit": int64(0)})
	if len(after["result"].([]any)) != len(before["result"].([]any)) {
		t.Errorf("history lost revisions: %d before, %d after", len(before["result"].([]any)), len(after["result"].([]any)))
	}
}

// TestLogBeforeTakesAPrefix: log's before is read as undo reads a TID:
// 16 digits, or the first digits of one transaction's; anything else is
// refused rather than read as a tiny number.
func TestLogBeforeTakesAPrefix(t *testing.T) {
	u := uvmtest.Open(t, nil)
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	d := dealer(t, addr)
	for i := range 2 {
		req(t, d, map[string]any{"id": int64(i), "command": "eval", "code": fmt.Sprintf("genesis.lq = %d", i)})
	}
	log := req(t, d, map[string]any{"id": int64(5), "command": "log", "limit": int64(0)})["result"].([]any)
	newest := log[0].(map[string]any)["tid"].(string)
	r := req(t, d, map[string]any{"id": int64(6), "command": "log", "before": newest[:14], "limit": int64(0)})
	if got := r["result"].([]any); r["ok"] != true || len(got) != len(log)-1 {
		t.Errorf("log before a prefix of the newest: %v, want the %d older", r, len(log)-1)
	}
	for _, bad := range []string{"1", "0x18eece", "ffffffffffffffff", "zz"} {
		r := req(t, d, map[string]any{"id": int64(7), "command": "log", "before": bad})
		if r["ok"] != false || (errKind(r) != command.KindBadRequest && errKind(r) != command.KindNotFound) {
			t.Errorf("log before %q: %v, want it refused", bad, r)
		}
	}
}
