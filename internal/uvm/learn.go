package uvm

import (
	"context"
	"errors"
	"fmt"

	"batos/internal/command"
	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/mind"
	"batos/internal/vm"
)

// Learning: with a mind configured, a message nothing understands aborts
// its transaction with a needsLearning error; the send then opens (or
// joins) a cycle outside any transaction and either waits for it and
// runs again from scratch — the method now exists — or returns the
// cycle's handle at once.

// maxLearnRounds bounds how many cycles one send may wait for in turn
// (a new method may itself send something nothing understands).
const maxLearnRounds = 4

// needsLearning aborts the transaction of a send that reached a message
// nothing understands, carrying the mission out of it.
type needsLearning struct {
	mission cycle.Mission
}

func (e *needsLearning) Error() string {
	return fmt.Sprintf("uvm: %s does not understand %q: learning", e.mission.Receiver, e.mission.Selector)
}

// learner is the VM's doesNotUnderstand handler when a mind exists.
type learner struct{}

func (learner) DoesNotUnderstand(ctx context.Context, tx *image.Tx, msg *vm.Message) (image.Value, error) {
	return nil, &needsLearning{cycle.Mission{Message: *msg}}
}

// learned runs attempt; when it reaches a message nothing understands,
// it opens or joins the cycle for it and, per how, waits and runs
// attempt again, or answers the cycle's handle.
func (u *UVM) learned(ctx context.Context, how command.Learn, attempt func() (vm.Result, error)) (vm.Result, error) {
	return u.learnedFor(ctx, how, attempt, nil)
}

// learnedFor is learned for a send whose own message (original) is what
// a cycle answers in handle mode, rather than the missing message it
// reached, which may lie deeper.
func (u *UVM) learnedFor(ctx context.Context, how command.Learn, attempt func() (vm.Result, error), original func() (cycle.Mission, error)) (vm.Result, error) {
	learnt := map[string]int64{} // mission key → the cycle that learned it
	for round := 0; ; round++ {
		res, err := attempt()
		if err == nil {
			return res, nil
		}
		var nl *needsLearning
		if !errors.As(err, &nl) {
			return res, err
		}
		machine, err := u.machineFor(ctx, nl)
		if err != nil || machine == nil {
			return res, err
		}
		if id, again := learnt[nl.mission.Key()]; again {
			// Another cycle would pay for the same method again.
			return res, fmt.Errorf("%w: cycle %d completed, yet %s still does not understand %s (was the method removed meanwhile?)", command.ErrLearningFailed, id, nl.mission.Receiver, nl.mission.Selector)
		}
		if round >= maxLearnRounds {
			return res, fmt.Errorf("uvm: %d methods learned for one send and still %s is missing", round, nl.mission.Selector)
		}
		var id int64
		var joined bool
		deliver, err := deliveryFor(how, nl, original)
		if err == nil {
			id, joined, err = machine.StartMissing(ctx, nl.mission, deliver)
		}
		if errors.Is(err, cycle.ErrUnderstood) {
			continue // a cycle installed it after this attempt looked: send again
		}
		if errors.Is(err, image.ErrDangling) {
			return vm.Result{}, fmt.Errorf("uvm: cannot learn %s: its receiver or an argument is an object this same send created, and the send is undone before learning; create the object in a send of its own first (%w)", nl.mission.Selector, err)
		}
		if err != nil {
			return vm.Result{}, err
		}
		if how.Handle {
			return command.LearningHandle(id, joined)
		}
		timeout := how.Timeout
		if timeout <= 0 {
			timeout = command.DefaultLearnTimeout
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		c, err := machine.Wait(wctx, id)
		cancel()
		if err != nil {
			state := cycle.Idle
			if c != nil {
				state = c.State
			}
			return vm.Result{}, &command.LearningError{Cycle: id, State: state, Err: err}
		}
		if c.State == cycle.Failed {
			return vm.Result{}, &command.LearningError{Cycle: id, State: c.State, Err: fmt.Errorf("%w: cycle %d could not learn %s for %s: %s", command.ErrLearningFailed, id, nl.mission.Selector, nl.mission.Receiver, c.Reason)}
		}
		learnt[nl.mission.Key()] = id
	}
}

// deliveryFor is the message a cycle answers itself for a send that
// takes the handle (nil when it waits): its original message, else the
// one it missed.
func deliveryFor(how command.Learn, nl *needsLearning, original func() (cycle.Mission, error)) (*cycle.Mission, error) {
	switch {
	case !how.Handle:
		return nil, nil
	case original != nil:
		msg, err := original()
		return &msg, err
	}
	return &nl.mission, nil
}

// EnableMind gives the image a mind: from now on what nothing
// understands is learned, and unfinished cycles resume. Call it once; it
// may be called while sends run (batos run enables a mind whose server
// answers only after the image is served): a send already running
// answers as it would without a mind. After Shutdown or Close began it
// returns ErrShutdown.
func (u *UVM) EnableMind(ctx context.Context, server *mind.Server, mindOpts *mind.Options, cycleOpts *cycle.Options) error {
	if err := u.enableMind(server, mindOpts, cycleOpts); err != nil {
		return err
	}
	if _, err := u.Cycles().Resume(ctx); err != nil {
		return fmt.Errorf("resume cycles: %w", err)
	}
	return nil
}

// EnableMindOnDemand gives the image a mind for this process's own sends,
// reached only when one needs it: the first message nothing understands
// calls connect (again after a failure), and is then learned as with
// EnableMind, except that unfinished cycles are left for batos run to
// resume (a one-shot command would start them only to stop them as it
// exits). A command that learns nothing never touches the server. Call it
// once, before the first send.
func (u *UVM) EnableMindOnDemand(connect func(context.Context) (*mind.Server, error), mindOpts *mind.Options) {
	u.mindMu.Lock()
	defer u.mindMu.Unlock()
	u.connect, u.connectOpts = connect, mindOpts
	u.useLearningVM()
}

// machineFor returns the cycle machine for a message nothing understood,
// connecting an on-demand mind first; nil (and no error) means no mind.
func (u *UVM) machineFor(ctx context.Context, nl *needsLearning) (*cycle.Machine, error) {
	u.mindMu.Lock()
	defer u.mindMu.Unlock()
	if u.cycles != nil || u.connect == nil {
		return u.cycles, nil
	}
	server, err := u.connect(ctx)
	if err != nil {
		return nil, &vm.NotUnderstoodError{Receiver: nl.mission.Receiver.String(), Selector: nl.mission.Selector, Why: mind.Unanswered(err)}
	}
	if err := u.enableMindLocked(server, u.connectOpts, nil); err != nil {
		return nil, err
	}
	return u.cycles, nil
}

func (u *UVM) enableMind(server *mind.Server, mindOpts *mind.Options, cycleOpts *cycle.Options) error {
	u.mindMu.Lock()
	defer u.mindMu.Unlock()
	return u.enableMindLocked(server, mindOpts, cycleOpts)
}

func (u *UVM) enableMindLocked(server *mind.Server, mindOpts *mind.Options, cycleOpts *cycle.Options) error {
	if u.cycles != nil {
		return errors.New("uvm: a mind is already enabled")
	}
	u.mu.Lock()
	closing := u.closing
	u.mu.Unlock()
	if closing {
		// Close may have closed the cycles already: a machine made now
		// would run on a closed image.
		return ErrShutdown
	}
	var co cycle.Options
	if cycleOpts != nil {
		co = *cycleOpts
	}
	co.Events, co.Deliver = u.events, u.deliver
	if co.Improver == nil && u.hb.replayer != nil {
		co.Improver = u.hb.replayer
	}
	if co.Catalog == nil {
		co.Catalog = u.Catalog
	}
	if u.leases != nil && co.Leases == nil {
		co.Leases, co.Node, co.LeaseTTL = u.leases, u.node, u.leaseTTL
	}
	if co.Logger == nil && mindOpts != nil {
		co.Logger = mindOpts.Logger // batos run's: a cycle that cannot resume is logged there
	}
	// Validation never learns: a missing message there is a test failure.
	sandbox := u.vmOpts
	sandbox.Handler = nil
	sandbox.Telemetry = nil // validation runs are no real calls
	u.mind = mind.New(u.db, server, mindOpts)
	u.cycles = cycle.New(u.db, u.mind, vm.New(&sandbox), &co)
	u.observer.Store(u.cycles)
	u.useLearningVM()
	return nil
}

// useLearningVM makes messages nothing understands abort their send to be
// learned. It replaces the VM once; sends already running finish with the
// one they loaded (and answer no_mind for what nothing understands).
// mindMu must be held.
func (u *UVM) useLearningVM() {
	if u.learning {
		return
	}
	learning := u.vmOpts
	learning.Handler = learner{}
	u.vm.Store(vm.New(&learning))
	u.learning = true
}

// Mind is the mind, or nil when none is enabled (yet).
func (u *UVM) Mind() *mind.Mind {
	u.mindMu.Lock()
	defer u.mindMu.Unlock()
	return u.mind
}

// Cycles is the cycle machine, or nil when no mind is enabled (yet).
func (u *UVM) Cycles() *cycle.Machine {
	u.mindMu.Lock()
	defer u.mindMu.Unlock()
	return u.cycles
}

// deliver sends a cycle's delivery for real, inside the transaction that
// records its answer: the message's sender took the handle and left. A
// message that needs yet another method is forwarded to the cycle that
// learns it.
func (u *UVM) deliver(ctx context.Context, tx *image.Tx, msg cycle.Mission) (string, error) {
	res, err := u.vm.Load().Send(ctx, tx, msg.Receiver, msg.Selector, msg.Args, msg.Kwargs)
	var nl *needsLearning
	if errors.As(err, &nl) {
		return "", &cycle.UnlearnedError{Mission: nl.mission}
	}
	if err != nil {
		return "", err
	}
	return res.Repr, nil
}
