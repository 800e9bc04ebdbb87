package cycle

import (
	"context"
	"errors"
	"fmt"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
)

// A message whose sender did not wait (the seed's way: it took the
// cycle's handle) is a delivery: once the method is installed, the cycle
// sends it for real. Every such message is kept — the one that opened the
// cycle and each one that joined it, with its own arguments — and each is
// sent in the transaction that records its answer, so a delivery happens
// exactly once even across a crash: an unrecorded one is sent again when
// the cycle resumes, and a recorded one never.

// DeliveryState is where a delivery stands; the strings are the recorded form.
type DeliveryState string

// Delivery states.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliveryAnswered  DeliveryState = "answered"
	DeliveryFailed    DeliveryState = "failed"    // the send raised an error; Answer holds it
	DeliveryForwarded DeliveryState = "forwarded" // it needs another missing method; Answer names that cycle
	DeliveryAbandoned DeliveryState = "abandoned" // the cycle failed; a retry takes it up again
)

// Delivery is a message the cycle answers itself.
type Delivery struct {
	Message Mission
	State   DeliveryState
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

// hasWork reports whether a machine has something to run for c: it is
// unfinished, or complete with messages still to answer.
func (c *Cycle) hasWork() bool {
	return !c.State.Terminal() || (c.State == Complete && c.pendingDelivery() >= 0)
}

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
			{"state", image.String(string(d.State))}, {"answer", image.String(d.Answer)},
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
		switch DeliveryState(state) {
		case DeliveryPending, DeliveryAnswered, DeliveryFailed, DeliveryForwarded, DeliveryAbandoned:
		default:
			return nil, fmt.Errorf("delivery %d has the state %q", i+1, clip(string(state), 40))
		}
		msg := Mission{Message: vm.Message{Receiver: store.OID(r), Selector: string(sel), Args: append([]image.Value(nil), args.Elems...)}}
		for k, kv := range kwargs.All() {
			name, ok := k.(image.String)
			if !ok {
				return nil, fmt.Errorf("delivery %d has the keyword %s", i+1, reprOf(k))
			}
			msg.Kwargs = append(msg.Kwargs, image.Slot{Name: string(name), Value: kv})
		}
		out = append(out, Delivery{Message: msg, State: DeliveryState(state), Answer: string(answer)})
	}
	return out, nil
}

// deliverAll sends every pending delivery of cycle id, which was just
// read as c, each in the transaction that records its answer.
func (m *Machine) deliverAll(ctx context.Context, id int64, c *Cycle) error {
	if m.opts.Deliver == nil {
		return nil
	}
	for {
		if c.Mission.Brief != "" {
			return nil // a brief names no message to answer, whatever its deliveries slot says
		}
		i := c.pendingDelivery()
		if c.State != Complete || i < 0 {
			return nil
		}
		if err := m.deliverOne(ctx, id, i, c.Deliveries[i].Message); err != nil {
			return err
		}
		var err error
		if c, err = m.Get(ctx, id); err != nil {
			return err
		}
	}
}

func (m *Machine) deliverOne(ctx context.Context, id int64, i int, msg Mission) error {
	for try := 0; ; try++ {
		var answer string
		err := m.db.Update(ctx, func(tx *image.Tx) error {
			tx.SetUser("batos")
			tx.SetTopic(CommitTopic, map[string]any{"id": id})
			tx.Note(fmt.Sprintf("cycle %d: deliver %s to %s", id, msg.Selector, msg.Receiver))
			o, c, err := m.pendingIn(ctx, tx, id, i)
			if err != nil {
				return err
			}
			if answer, err = m.opts.Deliver(ctx, tx, msg); err != nil {
				return err // nothing the send did is kept
			}
			c.Deliveries[i].State, c.Deliveries[i].Answer = DeliveryAnswered, answer
			return encode(o, c)
		})
		var unlearned *UnlearnedError
		switch {
		case err == nil:
			m.delivered(id, i, DeliveryAnswered, answer)
			return nil
		case errors.Is(err, errStale):
			return nil
		case ctx.Err() != nil || errors.Is(err, errLeaseLost):
			return err // resumes later, here or on another node: nothing was recorded, so it runs again
		case errors.As(err, &unlearned):
			err := m.forward(ctx, id, i, msg, unlearned.Mission, try > 0)
			if errors.Is(err, ErrUnderstood) {
				continue // a cycle installed the method meanwhile: send again
			}
			return err
		}
		return m.recordDelivery(ctx, id, i, msg, DeliveryFailed, "error: "+clip(err.Error(), maxFailure))
	}
}

// forward hands delivery i of cycle id to the cycle that learns next,
// the method the message still lacks: that cycle answers it when it
// completes. The hand-over and the mark "forwarded" are one transaction,
// so no crash leaves the message with both cycles (answered twice) or
// with neither. It returns ErrUnderstood, recording nothing, when the
// method arrived meanwhile, unless last.
func (m *Machine) forward(ctx context.Context, id int64, i int, msg, next Mission, last bool) error {
	var nextID int64
	var joined bool
	var answer string
	err := checkMission(next)
	if err == nil {
		err = m.db.Update(ctx, func(tx *image.Tx) error {
			tx.SetUser("batos")
			tx.SetTopic(CommitTopic, map[string]any{"id": id})
			o, c, err := m.pendingIn(ctx, tx, id, i)
			if err != nil {
				return err
			}
			if next.Key() == c.Mission.Key() {
				// Learning it again would pay for the method again, and
				// undo whoever removed it.
				return fmt.Errorf("cycle %d installed it, yet %s still does not understand it (was the method removed meanwhile?)", id, next.Receiver)
			}
			if nextID, joined, err = m.openIn(tx, next, &msg, true); err != nil {
				return err
			}
			tx.Note(fmt.Sprintf("cycle %d: forward %s to cycle %d, which learns %s", id, msg.Selector, nextID, next.Selector))
			answer = fmt.Sprintf("needs %s: forwarded to cycle %d", next.Selector, nextID)
			c.Deliveries[i].State, c.Deliveries[i].Answer = DeliveryForwarded, answer
			return encode(o, c)
		})
	}
	switch {
	case err == nil:
		m.opened(nextID, joined, next)
		m.delivered(id, i, DeliveryForwarded, answer)
		return nil
	case errors.Is(err, errStale):
		return nil
	case ctx.Err() != nil || errors.Is(err, errLeaseLost):
		return err // still pending: forwarded when the cycle resumes
	case errors.Is(err, ErrUnderstood) && !last:
		return err
	}
	return m.recordDelivery(ctx, id, i, msg, DeliveryFailed, fmt.Sprintf("needs %s, and no cycle could learn it: %v", next.Selector, err))
}

// recordDelivery records how delivery i ended when its own transaction
// could not commit.
func (m *Machine) recordDelivery(ctx context.Context, id int64, i int, msg Mission, state DeliveryState, answer string) error {
	err := m.db.Update(context.WithoutCancel(ctx), func(tx *image.Tx) error {
		tx.SetUser("batos")
		tx.SetTopic(CommitTopic, map[string]any{"id": id})
		tx.Note(fmt.Sprintf("cycle %d: delivery of %s %s", id, msg.Selector, state))
		o, c, err := m.pendingIn(ctx, tx, id, i)
		if err != nil {
			return err
		}
		c.Deliveries[i].State, c.Deliveries[i].Answer = state, answer
		return encode(o, c)
	})
	if errors.Is(err, errStale) {
		return nil
	}
	if err != nil {
		return err
	}
	m.delivered(id, i, state, answer)
	return nil
}

// delivered announces a recorded delivery and wakes every Wait.
func (m *Machine) delivered(id int64, i int, state DeliveryState, answer string) {
	m.publish("cycle.delivered", map[string]any{"id": id, "delivery": i, "state": string(state), "answer": clip(answer, 2000)})
	m.broadcast()
}

// pendingIn reads cycle id in tx and checks delivery i is still pending.
func (m *Machine) pendingIn(ctx context.Context, tx *image.Tx, id int64, i int) (*image.Object, *Cycle, error) {
	o, err := cycleObject(tx, id)
	if err != nil {
		return nil, nil, err
	}
	c, err := decode(o)
	if err != nil {
		return nil, nil, err
	}
	if err := checkFence(ctx, c); err != nil {
		return nil, nil, err
	}
	if i >= len(c.Deliveries) || c.Deliveries[i].State != DeliveryPending {
		return nil, nil, errStale
	}
	c.Updated = m.opts.Now()
	return o, c, nil
}

func reprOf(v image.Value) string { return clip(image.Repr(v), 100) }

// abandon marks the pending deliveries of a cycle that just failed: their
// senders are not answered (the failure is the answer), unless a retry
// takes them up again.
func abandon(c *Cycle) {
	for i := range c.Deliveries {
		if d := &c.Deliveries[i]; d.State == DeliveryPending {
			d.State, d.Answer = DeliveryAbandoned, "the cycle failed: "+clip(c.Reason, 500)
		}
	}
}

// reclaim makes a retried cycle's abandoned deliveries pending again.
func reclaim(c *Cycle) {
	for i := range c.Deliveries {
		if d := &c.Deliveries[i]; d.State == DeliveryAbandoned {
			d.State, d.Answer = DeliveryPending, ""
		}
	}
}
