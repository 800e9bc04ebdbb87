package cycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"batos/internal/catalog/library"
	"batos/internal/image"
	"batos/internal/mind"
	"batos/internal/store"
	"batos/internal/store/lease"
	"batos/internal/vm"
)

// Asker is the mind as cycles use it: a persona answers messages.
type Asker interface {
	Ask(ctx context.Context, req mind.Request) (*mind.Answer, error)
}

// Options configures a Machine; nil means the defaults.
type Options struct {
	// MaxAttempts bounds synthesis attempts (SYNTHESIZING → VALIDATING
	// and back); default 3.
	MaxAttempts int
	// PlanTries bounds how often BRICK is asked for a usable plan;
	// default 3.
	PlanTries int
	// MaxRunning bounds the cycles running at once; the rest wait in
	// IDLE. Default 4.
	MaxRunning int
	// Now is the clock cycles record; default time.Now.
	Now func() time.Time
	// Events, if set, is told of every transition ("cycle.transition")
	// and every recorded answer ("cycle.step"). It must not block.
	Events func(topic string, payload map[string]any)
	// Deliver, if set, answers the original message of a cycle whose
	// sender did not wait (a Delivery), once the method is
	// installed, for real; its answer is recorded in the cycle.
	//
	// It runs inside the transaction that records the answer (nothing
	// else commits it): an error aborts it, and *UnlearnedError forwards
	// the message to the cycle that learns what it still lacks.
	Deliver func(ctx context.Context, tx *image.Tx, msg Mission) (string, error)
	// Catalog, if set, gives the knowledge catalog: the researcher's
	// sub-questions are answered with its passages, and similar methods
	// are found by its search. Nil: no passages, similar methods by a
	// scan of the root's objects.
	Catalog func(context.Context) (*library.Library, error)
	// Improver, if set, runs the regression replay an improvement cycle
	// (Mission.Improve) must pass; without it such cycles fail.
	Improver Improver
	// Logger reports what cannot be returned; default slog.Default().
	Logger *slog.Logger
	// Leases, if set, shares the image's cycles among the nodes of a
	// store several processes use (a database): a node drives a cycle
	// only while it holds the cycle's lease, and takes up the cycles of
	// a node that stopped renewing its leases (see lease.go). Nil: this
	// process is the image's only one.
	Leases store.Leaser
	// Node names this process in leases and cycles; default
	// DefaultNode().
	Node string
	// LeaseTTL is how long a lease lasts unless renewed; default
	// DefaultLeaseTTL.
	LeaseTTL time.Duration
}

// Machine runs cycles. It is safe for concurrent use.
type Machine struct {
	db    *image.DB
	asker Asker
	vm    *vm.VM // validation runs here: no doesNotUnderstand learning inside a sandbox
	opts  Options

	base   context.Context
	stop   context.CancelFunc
	slots  chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	runs   map[int64]*run // cycles with a goroutine
	change chan struct{}  // closed and replaced at every transition
	closed bool
	clock  stateClock // when each cycle entered its state, for metrics
	// sweeping: Resume started the sweep that takes up the cycles of
	// nodes that died (with Leases only).
	sweeping bool
	// holder is this machine's name in leases: the node's, made unique.
	holder string
}

// New returns a Machine over the image. sandbox runs validation: give it
// a VM whose doesNotUnderstand handler does not start cycles.
func New(db *image.DB, asker Asker, sandbox *vm.VM, opts *Options) *Machine {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.PlanTries <= 0 {
		o.PlanTries = 3
	}
	if o.MaxRunning <= 0 {
		o.MaxRunning = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Node == "" {
		o.Node = DefaultNode()
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	// Renewals every third, sweeps every quarter: a shorter lease would
	// make them spin.
	o.LeaseTTL = max(o.LeaseTTL, 4*lease.MinTTL)
	// What a cycle's run commits (a model call's usage, too) is the
	// cycle's commit.
	base, stop := context.WithCancel(image.WithTopic(context.Background(), CommitTopic, nil))
	m := &Machine{
		db: db, asker: asker, vm: sandbox, opts: o, base: base, stop: stop, holder: lease.Holder(o.Node),
		slots: make(chan struct{}, o.MaxRunning), runs: map[int64]*run{}, change: make(chan struct{}),
	}
	return m
}

// ErrState is wrapped by the refusal of an operation the cycle's state
// does not allow (cancelling a finished cycle, retrying one that has not
// failed).
var ErrState = errors.New("cycle: not in a state that allows it")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("cycle: machine closed")

// ErrMission is returned by Start for a mission no cycle can serve.
var ErrMission = errors.New("cycle: cannot learn")

// ErrUnderstood is returned by StartMissing when the receiver
// understands the selector by now: the sender read the image just before
// a cycle installed the method, and should send again rather than pay
// for a second cycle learning it.
var ErrUnderstood = errors.New("cycle: the receiver understands the message by now")

// Start opens a cycle for the mission, or joins the open one for the same
// receiver and selector; joined says which. deliver asks the cycle to
// answer the message itself once the method is installed (the sender
// does not wait).
func (m *Machine) Start(ctx context.Context, mission Mission, deliver bool) (id int64, joined bool, err error) {
	var msg *Mission
	if deliver && mission.Brief == "" {
		msg = &mission
	}
	return m.startFor(ctx, mission, msg, false)
}

// StartDelivering is Start for a sender that does not wait, when the
// message to answer is not the mission's own: the send that reached the
// missing method deeper down, answered again from the top once the
// method exists.
func (m *Machine) StartDelivering(ctx context.Context, mission Mission, msg Mission) (id int64, joined bool, err error) {
	return m.startFor(ctx, mission, &msg, false)
}

// StartMissing is Start for a message nothing understood when its sender
// looked, with the message to deliver, if any (nil: the sender waits).
// It refuses with ErrUnderstood, and opens nothing, when the receiver
// understands the message by now: a cycle installed the method after the
// sender looked, and sending again costs no model.
func (m *Machine) StartMissing(ctx context.Context, mission Mission, deliver *Mission) (id int64, joined bool, err error) {
	return m.startFor(ctx, mission, deliver, true)
}

// startFor is Start with the message to deliver, if any, given apart: a
// delivery forwarded from another cycle is not this mission's message.
// missing refuses a mission the receiver understands by now.
func (m *Machine) startFor(ctx context.Context, mission Mission, deliver *Mission, missing bool) (id int64, joined bool, err error) {
	if m.isClosed() {
		return 0, false, ErrClosed
	}
	if err := checkMission(mission); err != nil {
		return 0, false, err
	}
	err = m.db.Update(ctx, func(tx *image.Tx) error {
		tx.SetUser("batos")
		var err error
		id, joined, err = m.openIn(tx, mission, deliver, missing)
		tx.SetTopic(CommitTopic, map[string]any{"id": id})
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("start cycle: %w", err)
	}
	m.opened(id, joined, mission)
	return id, joined, nil
}

// checkMission refuses, before any model is paid, a mission no plan can
// serve.
func checkMission(mission Mission) error {
	switch {
	case mission.Selector == "" && strings.TrimSpace(mission.Brief) == "":
		return fmt.Errorf("%w: neither a selector nor a brief", ErrMission)
	case mission.Selector != "" && (!identifier.MatchString(mission.Selector) || !vm.IsSelector(mission.Selector)):
		return fmt.Errorf("%w: %q is not a name a method can have (letters, digits and _, at most 64, not a keyword)", ErrMission, clip(mission.Selector, 80))
	case mission.Improve != nil && (mission.Selector == "" || !IsImproveKind(mission.Improve.Kind) || mission.Improve.Base == ""):
		return fmt.Errorf("%w: an improvement names the method, its current source and a kind (fix, optimize, simplify or document)", ErrMission)
	}
	return nil
}

// openIn opens a cycle for the mission in tx, or joins the open one for
// the same receiver and selector, leaving deliver (if any) with it.
// missing refuses (ErrUnderstood) a mission the receiver understands by
// now, unless a cycle for it is still open.
func (m *Machine) openIn(tx *image.Tx, mission Mission, deliver *Mission, missing bool) (id int64, joined bool, err error) {
	cs, err := cyclesObject(tx)
	if err != nil {
		return 0, false, err
	}
	if open, ok := findOpen(tx, cs, mission.Key()); ok {
		if deliver == nil {
			return open, true, nil
		}
		// The joiner leaves too: the cycle answers it, with its own
		// arguments.
		o, err := cycleObject(tx, open)
		if err != nil {
			return 0, false, err
		}
		c, err := decode(o)
		if err != nil {
			return 0, false, err
		}
		c.Deliveries = append(c.Deliveries, Delivery{Message: *deliver, State: DeliveryPending})
		return open, true, encode(o, c)
	}
	if missing && mission.Selector != "" && understands(tx, mission.Receiver, mission.Selector) {
		return 0, false, fmt.Errorf("%w: %s finds %s", ErrUnderstood, mission.Receiver, mission.Selector)
	}
	now := m.opts.Now()
	c := &Cycle{State: Idle, Mission: mission, MaxAttempts: m.opts.MaxAttempts,
		PlanTries: m.opts.PlanTries, Created: now, Updated: now}
	if deliver != nil {
		c.Deliveries = []Delivery{{Message: *deliver, State: DeliveryPending}}
	}
	if err := create(tx, c); err != nil {
		return 0, false, err
	}
	tx.Note(fmt.Sprintf("cycle %d: open for %s", c.ID, missionLabel(mission)))
	return c.ID, false, nil
}

// opened announces a cycle openIn opened (a joined one is already
// announced) and runs it, once its transaction committed.
func (m *Machine) opened(id int64, joined bool, mission Mission) {
	if !joined {
		m.clock.opened(id)
		m.publish("cycle.transition", map[string]any{"id": id, "state": Idle.String(), "receiver": mission.Receiver.String(), "selector": mission.Selector})
	}
	m.launch(id)
}

func missionLabel(m Mission) string {
	if m.Selector != "" {
		return fmt.Sprintf("%s %s", m.Receiver, m.Selector)
	}
	return fmt.Sprintf("%s: %s", m.Receiver, clip(m.Brief, 60))
}

// Get reads cycle id.
func (m *Machine) Get(ctx context.Context, id int64) (*Cycle, error) {
	var c *Cycle
	err := m.db.View(ctx, func(tx *image.Tx) (err error) {
		c, err = Load(tx, id)
		return err
	})
	return c, err
}

// Wait returns cycle id once it is COMPLETE or FAILED, or ctx's error.
// On an image several nodes share, the cycle may run on another node: it
// looks again whenever Observe is told of a commit there, and every
// quarter lease besides, so a lost notice only delays it.
func (m *Machine) Wait(ctx context.Context, id int64) (*Cycle, error) {
	var poll <-chan time.Time
	if m.opts.Leases != nil {
		t := time.NewTicker(m.opts.LeaseTTL / 4)
		defer t.Stop()
		poll = t.C
	}
	for {
		m.mu.Lock()
		changed := m.change
		m.mu.Unlock()
		c, err := m.finished(ctx, id)
		if err != nil {
			return nil, err
		}
		if c != nil {
			return c, nil
		}
		select {
		case <-changed:
		case <-poll:
		case <-ctx.Done():
			return m.unfinished(ctx, id, ctx.Err())
		case <-m.base.Done():
			return m.unfinished(ctx, id, ErrClosed)
		}
	}
}

// finished reads cycle id once it is COMPLETE or FAILED, or when its
// state cannot be read (then with decode's error); while it runs it
// reads the state slot alone and returns nil: Wait looks at every
// transition, and a cycle's steps are most of its object.
func (m *Machine) finished(ctx context.Context, id int64) (*Cycle, error) {
	var c *Cycle
	err := m.db.View(ctx, func(tx *image.Tx) error {
		o, err := cycleObject(tx, id)
		if err != nil {
			return err
		}
		if state, err := stateOf(o); err == nil && !state.Terminal() {
			return nil
		}
		c, err = decode(o)
		return err
	})
	return c, err
}

// unfinished is Wait's answer when it stops waiting with err: the cycle
// as it is now, if it can be read.
func (m *Machine) unfinished(ctx context.Context, id int64, err error) (*Cycle, error) {
	c, _ := m.Get(context.WithoutCancel(ctx), id)
	return c, err
}

// Resume starts every unfinished cycle, and every complete one with
// messages still to answer; it returns how many. A cycle
// whose object cannot be read (edited from the REPL, say) is logged and
// left as it is: it must not keep the others, or the image, from
// starting.
//
// With Leases, it also starts sweeping for the cycles other nodes stop
// running (a machine that never resumes, a one-shot command's, runs only
// the cycles it opens).
func (m *Machine) Resume(ctx context.Context) (int, error) {
	m.mu.Lock()
	if m.opts.Leases != nil && !m.sweeping && !m.closed {
		m.sweeping = true
		m.wg.Add(1)
		go m.sweep()
	}
	m.mu.Unlock()
	ids, err := m.resumable(ctx)
	for _, id := range ids {
		m.launch(id)
	}
	return len(ids), err
}

// resumable lists the cycles Resume starts.
func (m *Machine) resumable(ctx context.Context) ([]int64, error) {
	var ids []int64
	err := m.db.View(ctx, func(tx *image.Tx) error {
		if _, err := cyclesObject(tx); err != nil {
			return err
		}
		cs, err := List(tx)
		if err != nil {
			m.opts.Logger.Error("cycle: cannot resume unreadable cycles", "err", err)
		}
		for _, c := range cs {
			if c.hasWork() {
				ids = append(ids, c.ID)
			}
		}
		return nil
	})
	return ids, err
}

// Cancel fails an unfinished cycle with the reason "cancelled"; a model
// call in flight for it is abandoned (an answer already in hand is still
// recorded, for a retry to use).
func (m *Machine) Cancel(ctx context.Context, id int64) error {
	_, err := m.update(ctx, id, func(c *Cycle) error {
		if c.State.Terminal() {
			return fmt.Errorf("%w: cycle %d is already %s", ErrState, id, c.State)
		}
		c.FailedIn, c.State, c.Reason = c.State, Failed, "cancelled"
		return nil
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	if r, ok := m.runs[id]; ok {
		r.cancel()
	}
	m.mu.Unlock()
	return nil
}

// run is a cycle's goroutine. again asks it to start over when it ends:
// a retry came while a cancelled run was still winding down.
type run struct {
	cancel context.CancelFunc
	again  bool
}

// Retry runs a FAILED cycle again from the state it failed in, keeping
// every recorded answer (none is asked again), with fresh attempts.
func (m *Machine) Retry(ctx context.Context, id int64) error {
	_, err := m.updateTx(ctx, id, func(tx *image.Tx, c *Cycle) error {
		if err := retryable(tx, c); err != nil {
			return err
		}
		cs, err := cyclesObject(tx)
		if err != nil {
			return err
		}
		c.State, c.Reason = c.FailedIn, ""
		reclaim(c)
		switch c.State {
		case Decomposing:
			c.PlanTries = len(c.stepsOf(StepPlan)) + m.opts.PlanTries
		case Synthesizing, Validating:
			// A refused or unanswered attempt gives way to a new one; one
			// whose answer is recorded and not yet judged (cancelled in
			// VALIDATING, say) is taken up where it was: ROBIN is not
			// asked again for it.
			if _, answered := c.step(StepSynthesize, c.Attempt, 0); c.refused(c.Attempt) || !answered {
				c.State = Synthesizing
				c.Attempt++
			}
			c.MaxAttempts = c.Attempt + m.opts.MaxAttempts - 1
		}
		return setOpen(cs, c.Mission.Key(), id, true)
	})
	if err != nil {
		return err
	}
	m.launch(id)
	return nil
}

// Retryable refuses, as Retry would, a cycle that cannot be retried: one
// that did not fail, or whose message another open cycle learns.
func Retryable(tx *image.Tx, id int64) error {
	c, err := Load(tx, id)
	if err != nil {
		return err
	}
	return retryable(tx, c)
}

func retryable(tx *image.Tx, c *Cycle) error {
	if c.State != Failed {
		return fmt.Errorf("%w: cycle %d is %s; only a FAILED cycle can be retried", ErrState, c.ID, c.State)
	}
	cs, err := cyclesObject(tx)
	if err != nil {
		return err
	}
	if other, ok := findOpen(tx, cs, c.Mission.Key()); ok && other != c.ID {
		return fmt.Errorf("%w: cycle %d is already open for %s", ErrState, other, missionLabel(c.Mission))
	}
	if c.FailedIn.Terminal() {
		return fmt.Errorf("cycle %d failed in %s, which no cycle can run from (was the cycle object edited?)", c.ID, c.FailedIn)
	}
	return nil
}

// refused reports whether a failure is recorded for attempt.
func (c *Cycle) refused(attempt int) bool {
	for _, f := range c.Failures {
		if f.Attempt == attempt {
			return true
		}
	}
	return false
}

func (c *Cycle) stepsOf(kind StepKind) []Step {
	var out []Step
	for _, s := range c.Steps {
		if s.Kind == kind {
			out = append(out, s)
		}
	}
	return out
}

// Close stops every running cycle where it is (they resume on the next
// start) and waits for their goroutines. Safe to call twice.
func (m *Machine) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.stop()
	m.wg.Wait()
	return nil
}

func (m *Machine) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// launch runs cycle id on its own goroutine unless one already does.
func (m *Machine) launch(id int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	if r, running := m.runs[id]; running {
		r.again = true
		return
	}
	ctx, cancel := context.WithCancel(m.base)
	r := &run{cancel: cancel}
	m.runs[id] = r
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() {
			cancel()
			m.mu.Lock()
			delete(m.runs, id)
			again := r.again
			m.mu.Unlock()
			if again {
				m.launch(id)
			}
		}()
		select {
		case m.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-m.slots }()
		if m.opts.Leases != nil {
			held, release, ok := m.hold(ctx, id)
			if !ok {
				return
			}
			defer release()
			ctx = held
		}
		m.drive(ctx, id)
	}()
}

// broadcast wakes every Wait.
func (m *Machine) broadcast() {
	m.mu.Lock()
	close(m.change)
	m.change = make(chan struct{})
	m.mu.Unlock()
}

func (m *Machine) publish(topic string, payload map[string]any) {
	if m.opts.Events != nil {
		m.opts.Events(topic, payload)
	}
}

// CommitTopic names the commits of cycles (image.Tx.SetTopic), with the
// field "id", the cycle's, where one is known: opening, transitions,
// steps, installs and deliveries, and what a cycle's run writes besides.
const CommitTopic = "commit.cycle"

// errStale ends a step whose cycle moved on meanwhile (cancelled, say).
var errStale = errors.New("cycle: state changed meanwhile")

// update applies fn to cycle id in one transaction and publishes the
// transition, if any.
func (m *Machine) update(ctx context.Context, id int64, fn func(c *Cycle) error) (*Cycle, error) {
	return m.updateTx(ctx, id, func(_ *image.Tx, c *Cycle) error { return fn(c) })
}

func (m *Machine) updateTx(ctx context.Context, id int64, fn func(tx *image.Tx, c *Cycle) error) (*Cycle, error) {
	var before State
	var after *Cycle
	err := m.db.Update(ctx, func(tx *image.Tx) error {
		tx.SetUser("batos")
		tx.SetTopic(CommitTopic, map[string]any{"id": id})
		o, err := cycleObject(tx, id)
		if err != nil {
			return err
		}
		c, err := decode(o)
		if err != nil {
			return err
		}
		if err := checkFence(ctx, c); err != nil {
			return err
		}
		before = c.State
		if err := fn(tx, c); err != nil {
			return err
		}
		c.Updated = m.opts.Now()
		if c.State != before {
			tx.Note(fmt.Sprintf("cycle %d: %s → %s", id, before, c.State))
		} else {
			tx.Note(fmt.Sprintf("cycle %d: %s", id, c.State))
		}
		if c.State.Terminal() {
			cs, err := cyclesObject(tx)
			if err != nil {
				return err
			}
			if err := setOpen(cs, c.Mission.Key(), id, false); err != nil {
				return err
			}
		}
		if c.State == Failed && before != Failed {
			abandon(c)
		}
		after = c
		return encode(o, c)
	})
	if err != nil {
		return nil, err
	}
	if after.State != before {
		m.clock.moved(after, before)
		m.publish("cycle.transition", map[string]any{"id": id, "state": after.State.String(), "from": before.String(),
			"receiver": after.Mission.Receiver.String(), "selector": after.Mission.Selector, "attempt": after.Attempt, "reason": after.Reason})
	}
	m.broadcast()
	return after, nil
}

// expect makes an update refuse a cycle that left state meanwhile.
func expect(c *Cycle, state State) error {
	if c.State != state {
		return errStale
	}
	return nil
}
