package cycle

import (
	"context"
	"errors"
	"fmt"

	"batos/internal/image"
	"batos/internal/store"
)

// A message whose sender did not wait (the seed's way: it took the
// cycle's handle) is a delivery: once the method is installed, the cycle
// sends it for real. Every such message is kept — the one that opened the
// cycle and each one that joined it, with its own arguments — and each is
// sent in the transaction that records its answer, so a delivery happens
// exactly once even across a crash: an unrecorded one is sent again when
// the cycle resumes, and a recorded one never.

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryAnswered  = "answered"
	DeliveryFailed    = "failed"    // the send raised an error; Answer holds it
	DeliveryForwarded = "forwarded" // it needs another missing method; Answer names that cycle
)

// Delivery is a message the cycle answers itself.
type Delivery struct {
	Message Mission
	State   string
	Answer  string
}

// UnlearnedError is returned by Options.Deliver when the message reached
// another message nothing understands: the delivery is forwarded to the
// cycle that learns that one.
type UnlearnedError struct {
	Mission Mission
}

func (e *UnlearnedError) Error() string {
	return fmt.Sprintf("cycle: %s does not understand %q either", e.Mission.Receiver, e.Mission.Selector)
}

const slotDeliveries = "deliveries"

func (c *Cycle) pendingDelivery() int {
	for i, d := range c.Deliveries {
		if d.State == DeliveryPending {
			return i
		}
	}
	return -1
}

func encodeDeliveries(ds []Delivery) (image.Value, error) {
	l := &image.List{}
	for _, d := range ds {
		kwargs := &image.Dict{}
		for _, kw := range d.Message.Kwargs {
			if err := kwargs.Set(image.String(kw.Name), kw.Value); err != nil {
				return nil, err
			}
		}
		e := &image.Dict{}
		for _, kv := range []struct {
			k string
			v image.Value
		}{
			{"receiver", image.Ref(d.Message.Receiver)}, {"selector", image.String(d.Message.Selector)},
			{"args", image.NewList(d.Message.Args...)}, {"kwargs", kwargs},
			{"state", image.String(d.State)}, {"answer", image.String(d.Answer)},
		} {
			if err := e.Set(image.String(kv.k), kv.v); err != nil {
				return nil, err
			}
		}
		l.Elems = append(l.Elems, e)
	}
	return l, nil
}

func decodeDeliveries(v image.Value) ([]Delivery, error) {
	l, ok := v.(*image.List)
	if !ok {
		return nil, fmt.Errorf("slot deliveries is %s, want a list", reprOf(v))
	}
	var out []Delivery
	for i, e := range l.Elems {
		d, ok := e.(*image.Dict)
		if !ok {
			return nil, fmt.Errorf("delivery %d is %s, want a dict", i+1, reprOf(e))
		}
		get := func(k string) image.Value { v, _ := d.Get(image.String(k)); return v }
		r, okR := get("receiver").(image.Ref)
		sel, okS := get("selector").(image.String)
		args, okA := get("args").(*image.List)
		kwargs, okK := get("kwargs").(*image.Dict)
		state, okT := get("state").(image.String)
		answer, okN := get("answer").(image.String)
		if !okR || !okS || !okA || !okK || !okT || !okN {
			return nil, fmt.Errorf("delivery %d is not {receiver, selector, args, kwargs, state, answer}: %s", i+1, clip(image.Repr(d), 200))
		}
		switch string(state) {
		case DeliveryPending, DeliveryAnswered, DeliveryFailed, DeliveryForwarded:
		default:
			return nil, fmt.Errorf("delivery %d has the state %q", i+1, clip(string(state), 40))
		}
		msg := Mission{Receiver: store.OID(r), Selector: string(sel), Args: append([]image.Value(nil), args.Elems...)}
		for k, kv := range kwargs.All() {
			name, ok := k.(image.String)
			if !ok {
				return nil, fmt.Errorf("delivery %d has the keyword %s", i+1, reprOf(k))
			}
			msg.Kwargs = append(msg.Kwargs, image.Slot{Name: string(name), Value: kv})
		}
		out = append(out, Delivery{Message: msg, State: string(state), Answer: string(answer)})
	}
	return out, nil
}

// deliverAll sends every pending delivery of a COMPLETE cycle, each in
// the transaction that records its answer.
func (m *Machine) deliverAll(ctx context.Context, id int64) error {
	if m.opts.Deliver == nil {
		return nil
	}
	for {
		c, err := m.Get(ctx, id)
		if err != nil {
			return err
		}
		i := c.pendingDelivery()
		if c.State != Complete || i < 0 {
			return nil
		}
		if err := m.deliverOne(ctx, id, i, c.Deliveries[i].Message); err != nil {
			return err
		}
	}
}

func (m *Machine) deliverOne(ctx context.Context, id int64, i int, msg Mission) error {
	var answer string
	err := m.db.Update(ctx, func(tx *image.Tx) error {
		tx.SetUser("batos")
		tx.Note(fmt.Sprintf("cycle %d: deliver %s to %s", id, msg.Selector, msg.Receiver))
		o, c, err := m.pendingIn(tx, id, i)
		if err != nil {
			return err
		}
		if answer, err = m.opts.Deliver(ctx, tx, msg); err != nil {
			return err // nothing the send did is kept
		}
		c.Deliveries[i].State, c.Deliveries[i].Answer = DeliveryAnswered, answer
		return encode(o, c)
	})
	state := DeliveryAnswered
	var unlearned *UnlearnedError
	switch {
	case err == nil:
	case errors.Is(err, errStale):
		return nil
	case ctx.Err() != nil:
		return err // resumes later: nothing was recorded, so it runs again
	case errors.As(err, &unlearned):
		// The message needs another method first: the cycle that learns
		// it will deliver this message when it completes.
		next, _, serr := m.startFor(ctx, unlearned.Mission, &msg)
		state, answer = DeliveryForwarded, fmt.Sprintf("needs %s: forwarded to cycle %d", unlearned.Mission.Selector, next)
		if serr != nil {
			state, answer = DeliveryFailed, fmt.Sprintf("needs %s, and no cycle could learn it: %v", unlearned.Mission.Selector, serr)
		}
	default:
		state, answer = DeliveryFailed, "error: "+clip(err.Error(), maxFailure)
	}
	if err != nil {
		err = m.db.Update(context.WithoutCancel(ctx), func(tx *image.Tx) error {
			tx.SetUser("batos")
			tx.Note(fmt.Sprintf("cycle %d: delivery of %s %s", id, msg.Selector, state))
			o, c, err := m.pendingIn(tx, id, i)
			if err != nil {
				return err
			}
			c.Deliveries[i].State, c.Deliveries[i].Answer = state, answer
			return encode(o, c)
		})
		if err != nil && !errors.Is(err, errStale) {
			return err
		}
	}
	m.publish("cycle.delivered", map[string]any{"id": id, "delivery": i, "state": state, "answer": clip(answer, 2000)})
	m.broadcast()
	return nil
}

// pendingIn reads cycle id in tx and checks delivery i is still pending.
func (m *Machine) pendingIn(tx *image.Tx, id int64, i int) (*image.Object, *Cycle, error) {
	o, err := cycleObject(tx, id)
	if err != nil {
		return nil, nil, err
	}
	c, err := decode(o)
	if err != nil {
		return nil, nil, err
	}
	if i >= len(c.Deliveries) || c.Deliveries[i].State != DeliveryPending {
		return nil, nil, errStale
	}
	c.Updated = m.opts.Now()
	return o, c, nil
}

func reprOf(v image.Value) string { return clip(image.Repr(v), 100) }
