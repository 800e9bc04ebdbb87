package command

import (
	"context"
	"errors"
	"fmt"
	"time"

	"batos/internal/catalog/library"
	"batos/internal/cycle"
	"batos/internal/heartbeat"
	"batos/internal/image"
	"batos/internal/mind"
	"batos/internal/store"
	"batos/internal/vm"
)

// Runtime is what the commands run on: an awakened image with its VM,
// worker pool and (once it has a mind) cycle machine. The uvm provides
// it.
type Runtime interface {
	DB() *image.DB
	// SendWith and EvalWith run in the pool, each in its own transaction,
	// learning what nothing understands as how says.
	SendWith(ctx context.Context, target, selector string, args []image.Value, kwargs []image.Slot, how Learn) (vm.Result, error)
	// EvalWith binds vars and defines defs (a REPL session's) before
	// code; root names win over both and are left out of its result.
	EvalWith(ctx context.Context, code string, vars map[string]image.Value, defs []vm.Def) (vm.Result, error)
	Pack(ctx context.Context, before time.Time) (store.PackResult, error)
	Compact(ctx context.Context) (store.CompactResult, error)
	Stats(ctx context.Context) (store.Stats, error)
	// Update runs fn in a transaction of its own in the pool, as a send
	// runs, and tells the events sink of its commit under topic.
	Update(ctx context.Context, topic string, fn func(*image.Tx) error) (store.TID, error)
	// Cycles is the cycle machine, or nil while there is no mind.
	Cycles() *cycle.Machine
	// Catalog is the image's knowledge catalog, opened on first use.
	Catalog(ctx context.Context) (*library.Library, error)
	// Heartbeat runs audits and decides proposals; nil on an image open
	// read-only.
	Heartbeat() *heartbeat.Heartbeat
	// FlushTelemetry saves what the VM counted since the last flush.
	FlushTelemetry(ctx context.Context) error
}

// Local runs the commands on a runtime this process holds.
type Local struct {
	rt Runtime
	// user is recorded for the transactions the commands make themselves
	// (undo); sends and evals record the runtime's.
	user string
	// findMind and mindModel are where the persona commands find the
	// mind (SetMind).
	findMind  func(context.Context) (*mind.Mind, error)
	mindModel string
	// sessions are the REPL sessions evals name.
	sessions sessions
}

var _ Service = (*Local)(nil)

// NewLocal serves rt; user is recorded for an undo.
func NewLocal(rt Runtime, user string) *Local { return &Local{rt: rt, user: user} }

func (l *Local) Send(ctx context.Context, req SendRequest) (vm.Result, error) {
	if err := req.Check(); err != nil {
		return vm.Result{}, err
	}
	return l.rt.SendWith(ctx, req.Target, req.Selector, req.Args, req.Kwargs, req.Learn)
}

// Eval evaluates req.Code, after what its session carries, if it names
// one; evals of one session run one at a time, in the order they come.
func (l *Local) Eval(ctx context.Context, req EvalRequest) (vm.Result, error) {
	if err := req.Check(); err != nil {
		return vm.Result{}, err
	}
	var self image.Value
	if req.Self != "" {
		err := l.rt.DB().View(ctx, func(tx *image.Tx) error {
			oid, err := resolvePath(tx, req.Self)
			self = image.Ref(oid)
			return err
		})
		if err != nil {
			return vm.Result{}, fmt.Errorf("self: %w", err)
		}
	}
	if req.Session == "" {
		return l.rt.EvalWith(ctx, req.Code, withSelf(nil, self), nil)
	}
	s, err := l.sessions.acquire(ctx, req.Session)
	if err != nil {
		return vm.Result{}, err
	}
	defer s.release()
	res, err := l.rt.EvalWith(ctx, req.Code, withSelf(s.vars, self), s.defs)
	if err == nil {
		// A failed input was not saved: the session stays as it was.
		// self is the eval's, not the session's.
		if self != nil {
			delete(res.Globals, "self")
		}
		s.vars, s.defs = res.Globals, res.Defs
	}
	return res, err
}

// withSelf is vars with self bound (a copy), or vars when self is nil.
func withSelf(vars map[string]image.Value, self image.Value) map[string]image.Value {
	if self == nil {
		return vars
	}
	out := make(map[string]image.Value, len(vars)+1)
	for k, v := range vars {
		out[k] = v
	}
	out["self"] = self
	return out
}

func (l *Local) Inspect(ctx context.Context, target string) (ObjectView, error) {
	return inspectIn(ctx, l.rt.DB().View, target)
}

func (l *Local) InspectAt(ctx context.Context, target string, at store.TID) (ObjectView, error) {
	return inspectIn(ctx, func(ctx context.Context, fn func(*image.Tx) error) error {
		return l.rt.DB().ViewAt(ctx, at, fn)
	}, target)
}

// inspectIn resolves target and describes it in the read-only
// transaction view runs (the newest state, or one as of a transaction).
func inspectIn(ctx context.Context, view func(context.Context, func(*image.Tx) error) error, target string) (ObjectView, error) {
	var v ObjectView
	err := view(ctx, func(tx *image.Tx) error {
		oid, err := resolvePath(tx, target)
		if err != nil {
			return err
		}
		v, err = Inspect(tx, oid)
		return err
	})
	return v, err
}

// resolve finds target in a snapshot of its own.
func (l *Local) resolve(ctx context.Context, target string) (store.OID, error) {
	var oid store.OID
	err := l.rt.DB().View(ctx, func(tx *image.Tx) error {
		var err error
		oid, err = tx.Resolve(target)
		return err
	})
	return oid, err
}

// History lists target's revisions; target is an OID, a root name or a
// dotted path from one (genesis.child).
func (l *Local) History(ctx context.Context, target string, limit int) ([]Revision, error) {
	// An OID is taken as it is: an object deleted (or undone out of
	// existence) still has its history.
	oid, err := store.ParseOID(target)
	if err != nil {
		err = l.rt.DB().View(ctx, func(tx *image.Tx) error {
			oid, err = resolvePath(tx, target)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	s := l.rt.DB().Store()
	revs, err := s.History(ctx, oid, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Revision, len(revs))
	for i, r := range revs {
		t, err := s.Transaction(ctx, r.Serial)
		if errors.Is(err, store.ErrNoTransaction) {
			t = store.TxInfo{TID: r.Serial, Time: r.Serial.Time(), Description: "(its log entry is missing: damage, which verify reports)"}
		} else if err != nil {
			return nil, err
		}
		out[i] = Revision{Revision: r, Tx: t}
	}
	return out, nil
}

func (l *Local) Log(ctx context.Context, q store.LogQuery) ([]store.TxInfo, error) {
	return l.rt.DB().Store().Log(ctx, q)
}

// Undo undoes tid (ResolveTID reads the first digits of one, as typed).
func (l *Local) Undo(ctx context.Context, tid store.TID) (Undone, error) {
	undone, err := l.rt.DB().Store().Transaction(ctx, tid)
	if err != nil {
		return Undone{}, err
	}
	newTID, err := l.rt.DB().Undo(image.WithTopic(ctx, TopicUndo, map[string]any{"undone": tid.String()}), tid, l.user)
	if err != nil {
		return Undone{}, err
	}
	return Undone{Undone: tid, TID: newTID, Description: undone.Description, Objects: len(undone.OIDs)}, nil
}

// Pack packs and then compacts, as req says. A compaction that fails
// after a pack that succeeded says the pack is saved.
func (l *Local) Pack(ctx context.Context, req PackRequest) (Packed, error) {
	if err := req.Check(); err != nil {
		return Packed{}, err
	}
	start := time.Now()
	var out Packed
	if !req.Before.IsZero() {
		var err error
		if out.Pack, err = l.rt.Pack(ctx, req.Before); err != nil {
			return Packed{}, err
		}
	}
	if req.Compact {
		res, err := l.rt.Compact(ctx)
		if err != nil && !req.Before.IsZero() {
			err = fmt.Errorf("the pack is done and saved (dropped %d revisions, %d unreachable objects), but the compaction failed (it needs room for a copy of the file beside it): %w", out.Pack.Revisions, out.Pack.Objects, err)
		}
		if err != nil {
			return Packed{}, err
		}
		out.Compact = res
	}
	out.Took = time.Since(start)
	return out, nil
}

func (l *Local) Stats(ctx context.Context) (store.Stats, error) { return l.rt.Stats(ctx) }

func (l *Local) Verify(ctx context.Context) (*store.Report, error) { return l.rt.DB().Verify(ctx) }

// SetMethod checks the source before anything is stored: it must define
// exactly one function named req.Name whose first parameter is self.
func (l *Local) SetMethod(ctx context.Context, req MethodRequest) (MethodChange, error) {
	if req.Name == "" {
		return MethodChange{}, errNoMethodName
	}
	if _, err := vm.CheckMethod(req.Source, req.Name); err != nil {
		if line, col := vm.SyntaxPosition(err); line > 0 {
			// Where in the source, for an editor to mark the line.
			err = &sourceError{err: err, line: line, col: col}
		}
		return MethodChange{}, WithKind(ErrBadRequest, err)
	}
	note := fmt.Sprintf("method set %s %s", req.Target, req.Name)
	if req.From != "" {
		note += " from " + req.From
	}
	tid, err := l.rt.Update(ctx, TopicMethod, func(tx *image.Tx) error {
		tx.Note(note)
		o, err := l.object(tx, req.Target)
		if err != nil {
			return err
		}
		return o.Set(req.Name, &image.Method{Source: req.Source})
	})
	return MethodChange{TID: tid}, err
}

// errNoMethodName refuses a method command whose method has no name.
var errNoMethodName = badRequest("a method needs a name")

func (l *Local) RevertMethod(ctx context.Context, target, name string) (MethodChange, error) {
	if name == "" {
		return MethodChange{}, errNoMethodName
	}
	var restored string
	tid, err := l.rt.Update(ctx, TopicMethod, func(tx *image.Tx) error {
		tx.Note(fmt.Sprintf("method revert %s %s", target, name))
		o, err := l.object(tx, target)
		if err != nil {
			return err
		}
		restored, err = cycle.Revert(o, name)
		return err
	})
	if errors.Is(err, cycle.ErrNoPrevious) {
		return MethodChange{}, WithKind(ErrBadRequest, fmt.Errorf("cannot revert %s.%s: %w", target, name, err))
	}
	return MethodChange{TID: tid, Restored: restored}, err
}

func (l *Local) RemoveSlot(ctx context.Context, target, name string) (SlotRemoved, error) {
	if name == "" {
		return SlotRemoved{}, badRequest("a slot needs a name")
	}
	var removed string
	tid, err := l.rt.Update(ctx, TopicSlot, func(tx *image.Tx) error {
		tx.Note(fmt.Sprintf("slot remove %s %s", target, name))
		o, err := l.object(tx, target)
		if err != nil {
			return err
		}
		v, ok := o.Peek(name)
		if !ok {
			return fmt.Errorf("%w: %s has no own slot %s", ErrNotFound, target, name)
		}
		removed = clipRepr(v, 200)
		_, err = o.Delete(name)
		return err
	})
	if err != nil {
		return SlotRemoved{}, err
	}
	return SlotRemoved{TID: tid, Removed: removed}, nil
}

// object resolves target in tx and loads it.
func (l *Local) object(tx *image.Tx, target string) (*image.Object, error) {
	oid, err := tx.Resolve(target)
	if err != nil {
		return nil, err
	}
	return tx.Object(oid)
}

func (l *Local) InitiateCycle(ctx context.Context, target, brief string) (CycleHandle, error) {
	oid, err := l.resolve(ctx, target)
	if err != nil {
		return CycleHandle{}, err
	}
	m := l.rt.Cycles()
	if m == nil {
		return CycleHandle{}, &vm.NoMindError{Doing: fmt.Sprintf("start a cycle for %s (%q)", oid, clip(brief))}
	}
	id, _, err := m.Start(ctx, cycle.Mission{Message: vm.Message{Receiver: oid}, Brief: brief}, false)
	if err != nil {
		return CycleHandle{}, err
	}
	return l.handle(ctx, id)
}

// handle answers a cycle's handle.
func (l *Local) handle(ctx context.Context, id int64) (CycleHandle, error) {
	state, err := cycleState(ctx, l.rt.DB(), id)
	if err != nil {
		return CycleHandle{}, err
	}
	return CycleHandle{Cycle: id, State: state.String()}, nil
}

func (l *Local) ListCycles(ctx context.Context, limit int) ([]CycleView, error) {
	return listCycles(ctx, l.rt.DB(), limit)
}

func (l *Local) ShowCycle(ctx context.Context, id int64) (*CycleView, error) {
	return showCycle(ctx, l.rt.DB(), id)
}

// RetryCycle runs a FAILED cycle again from where it failed, keeping every
// recorded answer. It needs a mind; the cycle's own rules (cycle.Retryable)
// are checked first, so a cycle that cannot be retried is refused as such
// even without one.
func (l *Local) RetryCycle(ctx context.Context, id int64) (CycleHandle, error) {
	if err := l.Retryable(ctx, id); err != nil {
		return CycleHandle{}, err
	}
	m := l.rt.Cycles()
	if m == nil {
		return CycleHandle{}, &vm.NoMindError{Doing: fmt.Sprintf("retry cycle %d", id)}
	}
	if err := m.Retry(ctx, id); err != nil {
		return CycleHandle{}, err
	}
	return l.handle(ctx, id)
}

// Retryable refuses a cycle a retry cannot run, as the machine's Retry
// would.
func (l *Local) Retryable(ctx context.Context, id int64) error {
	return l.rt.DB().View(ctx, func(tx *image.Tx) error { return cycle.Retryable(tx, id) })
}

// CancelCycle fails an unfinished cycle with the reason "cancelled" and
// answers the state it was in. Without a mind nothing runs the cycle, so
// the cancellation is only recorded (it will not resume).
func (l *Local) CancelCycle(ctx context.Context, id int64) (Cancelled, error) {
	was, err := cycleState(ctx, l.rt.DB(), id)
	if err != nil {
		return Cancelled{}, err
	}
	m := l.rt.Cycles()
	if m == nil {
		// A machine with nothing to run only records the cancellation.
		m = cycle.New(l.rt.DB(), nil, nil, nil)
		defer m.Close()
	}
	if err := m.Cancel(ctx, id); err != nil {
		return Cancelled{Cycle: id, Was: was.String()}, err
	}
	return Cancelled{Cycle: id, State: cycle.Failed.String(), Was: was.String()}, nil
}

// LearningError is returned when a send's cycle failed (Err wraps
// ErrLearningFailed), did not finish in time, or stopped because the
// image is closing (Err is cycle.ErrClosed).
type LearningError struct {
	Cycle int64
	State cycle.State
	Err   error
}

func (e *LearningError) Error() string {
	if errors.Is(e.Err, ErrLearningFailed) {
		return e.Err.Error()
	}
	if errors.Is(e.Err, cycle.ErrClosed) {
		return fmt.Sprintf("shutting down: cycle %d stopped in %s; it resumes when the image next opens with a mind", e.Cycle, e.State)
	}
	return fmt.Sprintf("still learning: cycle %d is %s (%v)", e.Cycle, e.State, e.Err)
}

func (e *LearningError) Unwrap() error { return e.Err }
