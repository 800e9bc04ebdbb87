package heartbeat

import (
	"context"
	"testing"
	"time"

	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/mind"
)

type neverAsked struct{ t *testing.T }

func (n neverAsked) Ask(context.Context, mind.Request) (*mind.Answer, error) {
	n.t.Error("ALFRED was asked again for an interrupted audit")
	return nil, context.Canceled
}

// TestInterruptedAuditIsNotRunAgain: an audit a crash cut off while
// ALFRED was asked is marked failed on resume, and not asked again.
func TestInterruptedAuditIsNotRunAgain(t *testing.T) {
	db := imagetest.Open(t, nil)
	err := db.Update(t.Context(), func(tx *image.Tx) error {
		return createAudit(tx, &Audit{State: AuditAsking, By: "heartbeat", Started: time.Now(), Facts: &Facts{At: time.Now()}})
	})
	if err != nil {
		t.Fatal(err)
	}
	h := New(db, &Options{Mind: func(context.Context) (cycle.Asker, *cycle.Machine, error) { return neverAsked{t}, nil, nil }})
	defer h.Close()
	if err := h.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	var a *Audit
	if err := db.View(t.Context(), func(tx *image.Tx) (err error) {
		a, err = LoadAudit(tx, 1)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if a.State != AuditFailed || a.Error == "" {
		t.Fatalf("the interrupted audit is %s (%q), want failed with the reason", a.State, a.Error)
	}
}
