package heartbeat_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"batos/internal/cycle"
	"batos/internal/heartbeat"
	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/mind"
)

// countingAsker answers every audit with no proposals, and counts them.
type countingAsker struct{ asked atomic.Int64 }

func (a *countingAsker) Ask(ctx context.Context, req mind.Request) (*mind.Answer, error) {
	a.asked.Add(1)
	return &mind.Answer{Text: `{"summary": "all well", "findings": [], "proposals": []}`, Call: mind.Call{Model: "scripted", PromptTokens: 10, CompletionTokens: 5}}, nil
}

func newBeat(t *testing.T, db *image.DB, asker *countingAsker) *heartbeat.Heartbeat {
	t.Helper()
	h := heartbeat.New(db, &heartbeat.Options{Mind: func(context.Context) (cycle.Asker, *cycle.Machine, error) { return asker, nil, nil }})
	t.Cleanup(h.Close)
	return h
}

func auditCount(t *testing.T, db *image.DB) int {
	t.Helper()
	var n int
	if err := db.View(t.Context(), func(tx *image.Tx) error {
		as, err := heartbeat.ListAudits(tx)
		n = len(as)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func nextDue(t *testing.T, db *image.DB) time.Time {
	t.Helper()
	var s heartbeat.Settings
	if err := db.View(t.Context(), func(tx *image.Tx) (err error) {
		s, err = heartbeat.LoadSettings(tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return s.NextDue
}

func setNextDue(t *testing.T, db *image.DB, due time.Time) {
	t.Helper()
	if err := db.Update(t.Context(), func(tx *image.Tx) error {
		root, err := tx.Root()
		if err != nil {
			return err
		}
		v, _ := root.Get("heartbeat")
		o, err := tx.Deref(v)
		if err != nil {
			return err
		}
		return o.Set("next_due", image.String(due.UTC().Format(time.RFC3339Nano)))
	}); err != nil {
		t.Fatal(err)
	}
}

// runFor runs h's loop for d.
func runFor(h *heartbeat.Heartbeat, interval, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	h.Run(ctx, interval)
}

// TestScheduleSurvivesRestarts: the next audit's time is kept in the
// image; a restart neither resets it nor runs an audit early, and an
// audit that fell due while batos was down runs once, not once per
// restart.
func TestScheduleSurvivesRestarts(t *testing.T) {
	db := imagetest.Open(t, nil)
	asker := &countingAsker{}
	runFor(newBeat(t, db, asker), time.Hour, 200*time.Millisecond)
	due := nextDue(t, db)
	if d := time.Until(due); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("first run scheduled the audit in %s, want an hour", d)
	}
	runFor(newBeat(t, db, asker), time.Hour, 200*time.Millisecond)
	if got := nextDue(t, db); !got.Equal(due) || auditCount(t, db) != 0 {
		t.Fatalf("a restart moved the schedule from %s to %s, or audited (%d)", due, got, auditCount(t, db))
	}
	// Due while batos was down: the next start audits once.
	setNextDue(t, db, time.Now().Add(-3*time.Hour))
	runFor(newBeat(t, db, asker), time.Hour, 500*time.Millisecond)
	if n := auditCount(t, db); n != 1 {
		t.Fatalf("%d audits after an audit fell due, want 1", n)
	}
	if d := time.Until(nextDue(t, db)); d < 59*time.Minute {
		t.Fatalf("after the due audit the next is in %s, want an hour", d)
	}
	runFor(newBeat(t, db, asker), time.Hour, 300*time.Millisecond)
	if n := auditCount(t, db); n != 1 || asker.asked.Load() != 1 {
		t.Fatalf("a restart after the audit made %d audits (%d asked), want 1", n, asker.asked.Load())
	}
	// A shorter interval brings the next audit closer.
	runFor(newBeat(t, db, asker), time.Minute, 200*time.Millisecond)
	if d := time.Until(nextDue(t, db)); d > time.Minute {
		t.Fatalf("with -heartbeat 1m the next audit is in %s", d)
	}
}

// TestNeverTwoAuditsAtOnce: two loops that find the same audit due run it
// once, and an audit asked for while one runs is refused.
func TestNeverTwoAuditsAtOnce(t *testing.T) {
	db := imagetest.Open(t, nil)
	asker := &countingAsker{}
	setNextDue(t, db, time.Now().Add(-time.Minute))
	h1, h2 := newBeat(t, db, asker), newBeat(t, db, asker)
	var wg sync.WaitGroup
	for _, h := range []*heartbeat.Heartbeat{h1, h2} {
		wg.Add(1)
		go func() { defer wg.Done(); runFor(h, time.Hour, 500*time.Millisecond) }()
	}
	wg.Wait()
	if n := auditCount(t, db); n != 1 {
		t.Fatalf("two loops ran %d audits for one due time, want 1", n)
	}
	blocking := &blockingAsker{release: make(chan struct{}), asked: make(chan struct{})}
	h := heartbeat.New(db, &heartbeat.Options{Mind: func(context.Context) (cycle.Asker, *cycle.Machine, error) { return blocking, nil, nil }})
	defer h.Close()
	done := make(chan error, 1)
	go func() { _, err := h.Audit(context.Background(), "first"); done <- err }()
	<-blocking.asked
	if _, err := h.Audit(t.Context(), "second"); err != heartbeat.ErrBusy {
		t.Fatalf("an audit while one runs: %v, want ErrBusy", err)
	}
	close(blocking.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type blockingAsker struct {
	once    sync.Once
	asked   chan struct{}
	release chan struct{}
}

func (b *blockingAsker) Ask(ctx context.Context, req mind.Request) (*mind.Answer, error) {
	b.once.Do(func() { close(b.asked) })
	<-b.release
	return &mind.Answer{Text: `{"summary": "ok", "findings": [], "proposals": []}`}, nil
}
