package uvm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
	"batos/internal/zmqbridge"
)

// Backend is what the bridges serve: the UVM's operations, with results
// as plain data.
func (u *UVM) Backend() zmqbridge.Backend { return backend{u} }

type backend struct{ u *UVM }

var _ zmqbridge.Backend = backend{}

func (b backend) Send(ctx context.Context, target, selector string, args []image.Value, kwargs []image.Slot) (vm.Result, error) {
	res, err := b.u.Send(ctx, target, selector, args, kwargs)
	return res, notFound(err)
}

func (b backend) Eval(ctx context.Context, code string) (vm.Result, error) {
	return b.u.Eval(ctx, code)
}

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

// InitiateCycle is the seed's initiate_cognitive_cycle. With no mind it
// answers as a message nothing understands does.
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
	return nil, fmt.Errorf("cannot start a cycle for %s (%q): %w", oid, brief, vm.ErrNoMind)
}
