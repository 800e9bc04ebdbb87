package uvm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
	"batos/internal/zmqbridge"
)

// Backend is what the bridges serve: the UVM's operations, with results
// as plain data.
func (u *UVM) Backend() zmqbridge.Backend { return backend{u} }

type backend struct{ u *UVM }

var (
	_ zmqbridge.Backend         = backend{}
	_ zmqbridge.Learner         = backend{}
	_ zmqbridge.CycleViewer     = backend{}
	_ zmqbridge.CycleController = backend{}
	_ zmqbridge.Packer          = backend{}
)

func (b backend) Send(ctx context.Context, target, selector string, args []image.Value, kwargs []image.Slot) (vm.Result, error) {
	res, err := b.u.Send(ctx, target, selector, args, kwargs)
	return res, bridgeError(err)
}

// SendLearning is Send choosing how a message nothing understands is
// learned: waiting for its cycle (up to how.Timeout), or answering the
// cycle's handle at once.
func (b backend) SendLearning(ctx context.Context, target, selector string, args []image.Value, kwargs []image.Slot, how zmqbridge.LearnOptions) (vm.Result, error) {
	res, err := b.u.SendWith(ctx, target, selector, args, kwargs, Learn{Handle: how.Handle, Timeout: how.Timeout})
	return res, bridgeError(err)
}

func (b backend) Eval(ctx context.Context, code string) (vm.Result, error) {
	res, err := b.u.Eval(ctx, code)
	return res, bridgeError(err)
}

// bridgeError marks errors with the bridge's kinds, keeping their
// messages: an unknown target, a failed or unfinished cycle.
func bridgeError(err error) error {
	var le *LearningError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &le) && errors.Is(le.Err, cycle.ErrClosed):
		// The cycle stopped with the server: it does not go on here, and
		// resumes with the next one.
		return &kindError{err: err, kind: zmqbridge.ErrShuttingDown, cycle: le.Cycle}
	case errors.As(err, &le):
		return &kindError{err: err, kind: zmqbridge.ErrStillLearning, cycle: le.Cycle}
	case errors.Is(err, ErrLearningFailed):
		return &kindError{err: err, kind: zmqbridge.ErrLearningFailed}
	case errors.Is(err, cycle.ErrNoCycle):
		return &kindError{err: err, kind: zmqbridge.ErrNotFound}
	case errors.Is(err, ErrCycleState), errors.Is(err, cycle.ErrState), errors.Is(err, cycle.ErrMission):
		return &kindError{err: err, kind: zmqbridge.ErrBadRequest}
	case errors.Is(err, cycle.ErrClosed), errors.Is(err, ErrShutdown):
		return &kindError{err: err, kind: zmqbridge.ErrShuttingDown}
	}
	return notFound(err)
}

// kindError is err, classified for the bridge as kind, with its message
// unchanged.
type kindError struct {
	err, kind error
	cycle     int64
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.err, e.kind} }

// CycleID is the cycle the error is about, or 0; the bridge's reply
// carries it.
func (e *kindError) CycleID() int64 { return e.cycle }

func (b backend) Inspect(ctx context.Context, target string) (any, error) {
	var view ObjectView
	err := b.u.db.View(ctx, func(tx *image.Tx) error {
		oid, err := Resolve(tx, target)
		if err != nil {
			return notFound(err)
		}
		view, err = Inspect(tx, oid)
		return err
	})
	if err != nil {
		return nil, err
	}
	slots := func(ss []SlotView) []any {
		out := make([]any, len(ss))
		for i, s := range ss {
			m := map[string]any{"name": s.Name, "value": s.Value, "repr": s.Repr, "owner": s.Owner}
			if s.Method != "" {
				m["method"] = s.Method
			}
			out[i] = m
		}
		return out
	}
	parents := make([]any, len(view.Parents))
	for i, p := range view.Parents {
		parents[i] = p
	}
	return map[string]any{"oid": view.OID, "parents": parents, "own": slots(view.Own), "inherited": slots(view.Inherited)}, nil
}

func notFound(err error) error {
	if errors.Is(err, ErrNoTarget) {
		return fmt.Errorf("%w: %v", zmqbridge.ErrNotFound, err)
	}
	return err
}

func txMap(t store.TxInfo) map[string]any {
	oids := make([]any, len(t.OIDs))
	for i, o := range t.OIDs {
		oids[i] = o.String()
	}
	ext := map[string]any{}
	for k, v := range t.Extension {
		ext[k] = v
	}
	return map[string]any{"tid": t.TID.String(), "time": t.Time.Format(time.RFC3339Nano), "user": t.User,
		"description": t.Description, "extension": ext, "oids": oids}
}

func (b backend) History(ctx context.Context, target string, limit int) (any, error) {
	var oid store.OID
	err := b.u.db.View(ctx, func(tx *image.Tx) error {
		var err error
		oid, err = Resolve(tx, target)
		return notFound(err)
	})
	if err != nil {
		return nil, err
	}
	revs, err := b.u.store.History(ctx, oid, limit)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(revs))
	for _, r := range revs {
		m := map[string]any{"tid": r.Serial.String(), "size": int64(r.Size), "deleted": r.Deleted}
		if t, err := b.u.store.Transaction(ctx, r.Serial); err == nil {
			m["time"], m["user"], m["description"] = t.Time.Format(time.RFC3339Nano), t.User, t.Description
		}
		out = append(out, m)
	}
	return out, nil
}

func (b backend) Log(ctx context.Context, limit int, before store.TID) (any, error) {
	txns, err := b.u.store.Log(ctx, store.LogQuery{Limit: limit, Before: before})
	if err != nil {
		return nil, err
	}
	out := make([]any, len(txns))
	for i, t := range txns {
		out[i] = txMap(t)
	}
	return out, nil
}

func (b backend) Undo(ctx context.Context, tid store.TID) (any, error) {
	newTID, err := b.u.db.Undo(ctx, tid, "")
	if err != nil {
		return nil, err
	}
	return map[string]any{"undone": tid.String(), "tid": newTID.String()}, nil
}

// Pack packs the image while sends go on, answering what it dropped:
// {before, revisions, objects, transactions, blobs, blob_bytes, ms}.
func (b backend) Pack(ctx context.Context, opts zmqbridge.PackOptions) (any, error) {
	start := time.Now()
	reply := map[string]any{}
	if !opts.Before.IsZero() {
		res, err := b.u.Pack(ctx, opts.Before)
		if err != nil {
			return nil, bridgeError(err)
		}
		reply = map[string]any{
			"before": opts.Before.UTC().Format(time.RFC3339Nano), "revisions": int64(res.Revisions), "objects": int64(res.Objects),
			"transactions": int64(res.Transactions), "blobs": int64(res.Blobs), "blob_bytes": res.BlobBytes,
		}
	}
	if opts.Compact {
		res, err := b.u.Compact(ctx)
		if err != nil && !opts.Before.IsZero() {
			err = fmt.Errorf("the pack is done and saved (dropped %d revisions, %d objects), but the compaction failed: %w", reply["revisions"], reply["objects"], err)
		}
		if err != nil {
			return nil, bridgeError(err)
		}
		reply["bytes_before"], reply["bytes_after"] = res.BytesBefore, res.BytesAfter
	}
	reply["ms"] = time.Since(start).Milliseconds()
	return reply, nil
}

// InitiateCycle is the seed's initiate_cognitive_cycle: a cycle for a
// brief, answered at once with its handle. With no mind it answers as a
// message nothing understands does.
func (b backend) InitiateCycle(ctx context.Context, target, brief string) (any, error) {
	var oid store.OID
	err := b.u.db.View(ctx, func(tx *image.Tx) error {
		var err error
		oid, err = Resolve(tx, target)
		return notFound(err)
	})
	if err != nil {
		return nil, err
	}
	m := b.u.Cycles()
	if m == nil {
		return nil, fmt.Errorf("cannot start a cycle for %s (%q): %w", oid, brief, vm.ErrNoMind)
	}
	id, _, err := m.Start(ctx, cycle.Mission{Message: vm.Message{Receiver: oid}, Brief: brief}, false)
	if err != nil {
		return nil, err
	}
	return b.handle(ctx, id)
}

// handle answers a cycle's handle: {cycle, state}.
func (b backend) handle(ctx context.Context, id int64) (any, error) {
	state, err := cycleState(ctx, b.u.db, id)
	if err != nil {
		return nil, bridgeError(err)
	}
	return map[string]any{"cycle": id, "state": state.String()}, nil
}

func (b backend) ListCycles(ctx context.Context, limit int) (any, error) {
	views, err := ListCycles(ctx, b.u.db, limit)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(views))
	for i := range views {
		if out[i], err = views[i].Plain(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (b backend) ShowCycle(ctx context.Context, id int64) (any, error) {
	v, err := ShowCycle(ctx, b.u.db, id)
	if err != nil {
		return nil, bridgeError(err)
	}
	return v.Plain()
}

func (b backend) RetryCycle(ctx context.Context, id int64) (any, error) {
	if err := b.u.RetryCycle(ctx, id); err != nil {
		return nil, bridgeError(err)
	}
	return b.handle(ctx, id)
}

func (b backend) CancelCycle(ctx context.Context, id int64) (any, error) {
	was, err := b.u.CancelCycle(ctx, id)
	if err != nil {
		return nil, bridgeError(err)
	}
	return map[string]any{"cycle": id, "state": cycle.Failed.String(), "was": was.String()}, nil
}
