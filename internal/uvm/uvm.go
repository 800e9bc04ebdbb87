// Package uvm wires batos together, and does nothing else. It opens the
// image and awakens it (creating the primordial objects on first run,
// upgrading system objects on later ones); runs sends and evaluations on
// a bounded pool of workers, each in its own transaction, handing a
// message nothing understands to the cycle machine and sending it again
// once learned; gives the image its mind (now, on demand, or when a
// server found in the background answers); and, in Serve, starts the
// bridge over the command layer and shuts everything down in the order
// that loses nothing. What the commands do is internal/command's; the
// wire is internal/zmqbridge's; cycles are internal/cycle's.
package uvm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"batos/internal/catalog/embed"
	"batos/internal/catalog/index"
	"batos/internal/catalog/library"
	"batos/internal/command"
	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/mind"
	"batos/internal/store"
	"batos/internal/store/bolt"
	"batos/internal/store/lease"
	"batos/internal/vm"
)

// Options configures a UVM; nil means the defaults.
type Options struct {
	// Workers bounds how many sends run at once; default 4 × GOMAXPROCS.
	Workers int
	// User is recorded in the log for the transactions sends make.
	User string
	// Existing refuses a database image that holds no image yet, rather
	// than creating one there (an image file's absence is the caller's
	// to check).
	Existing bool
	// VM configures method execution.
	VM *vm.Options
	// Image configures the object layer.
	Image *image.Options
	// Events, if set, is told of every commit of the image, once, under
	// the topics command.TopicSend and the rest name, with the payload
	// onCommit makes; and of the cycles' events. The bridge publishes
	// them. It is called on the committing goroutine: it must not block.
	Events func(topic string, payload map[string]any)
	// Mind, if set, is the inference server the personas speak through,
	// and what nothing understands is learned: such a message becomes a
	// cognitive cycle. Nil: such a message is an error saying there is
	// no mind (vm.ErrNoMind).
	Mind *mind.Server
	// MindOptions configure the mind (adapter cache, clock, logger).
	MindOptions *mind.Options
	// Cycle configures the cycles (their Events and Deliver are the
	// UVM's).
	Cycle *cycle.Options
	// Store configures the storage engine (its logger receives what no
	// caller can be told: a full disk, a failed checkpoint).
	Store *bolt.Options
	// Logger receives what the knowledge catalog cannot return (an index
	// rebuilt, a cache started anew); nil discards it.
	Logger *slog.Logger
	// NoTelemetry turns the method telemetry off (benchmarks measure its
	// cost with it); by default every method execution is counted.
	NoTelemetry bool
	// Node names this process among the nodes sharing a database image,
	// in the leases it holds; default cycle.DefaultNode().
	Node string
	// LeaseTTL is how long a node's leases (a cycle's, the heartbeat's)
	// last unless renewed on a database image: how long its work waits
	// for another node when it dies. Default cycle.DefaultLeaseTTL.
	LeaseTTL time.Duration
}

// ErrShutdown is returned for sends after Shutdown or Close began.
var ErrShutdown = fmt.Errorf("the image is closing: %w", command.ErrShuttingDown)

// UVM is an awakened image with its VM. It is safe for concurrent use.
type UVM struct {
	store store.Engine
	db    *image.DB
	// vm runs sends; a mind arriving while sends run replaces it with one
	// that learns (useLearningVM), so it is loaded once per send.
	vm     atomic.Pointer[vm.VM]
	events func(topic string, payload map[string]any)
	// The mind, guarded by mindMu: an on-demand mind arrives during a send.
	mindMu      sync.Mutex
	cycles      *cycle.Machine // nil without a mind
	connect     func(context.Context) (*mind.Server, error)
	connectOpts *mind.Options
	learning    bool // vm's doesNotUnderstand aborts the send to learn
	vmOpts      vm.Options
	mind        *mind.Mind

	// The knowledge catalog, opened on first use (Catalog).
	path    string
	log     *slog.Logger
	catMu   sync.Mutex
	catalog *library.Library
	// indexLock holds the catalog index directory of a database image
	// for this process (claimIndexDir); nil for an image file.
	indexLock  *os.File
	embedCache *embed.Cache
	// catalogReport is what opening the catalog did to its indexes.
	catalogReport index.Report
	// catalogProgress, if set, is told how a rebuild of the catalog's
	// indexes advances.
	catalogProgress func(done, total int)

	// telemetry counts method executions (nil when off); hb is the
	// heartbeat that saves and audits them.
	telemetry *vm.Telemetry
	hb        heartbeatParts

	// eventSeq numbers the commit events published; stopWatch stops
	// publishing other nodes' commits.
	eventSeq  atomic.Int64
	stopWatch func()

	// leases is the store's, when several nodes share it (nil for an
	// image file): cycles and the heartbeat run on one node at a time.
	leases   store.Leaser
	node     string
	leaseTTL time.Duration
	// beatHolder is this process's name in the heartbeat's lease.
	beatHolder string
	// observer is the cycle machine as other nodes' commits reach it:
	// read without mindMu, which an on-demand mind holds while it
	// connects.
	observer atomic.Pointer[cycle.Machine]

	slots    chan struct{} // the pool: one token per running send
	mu       sync.Mutex
	closing  bool
	inflight sync.WaitGroup
	closed   sync.Once
	closeErr error
}

// Open opens the image file at path, creating it if needed, and awakens
// it. Created reports whether this awakening created the image.
func Open(ctx context.Context, path string, opts *Options) (u *UVM, created bool, err error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Workers <= 0 {
		o.Workers = 4 * runtime.GOMAXPROCS(0)
	}
	s, err := OpenStore(ctx, path, o.Store, o.Existing || o.Store != nil && o.Store.ReadOnly)
	if err != nil {
		return nil, false, err
	}
	// Sends contend for hot objects (a counter, a log): retry conflicts
	// generously; each retry waits a growing, jittered delay.
	imgOpts := image.Options{MaxRetries: 64}
	if o.Image != nil {
		imgOpts = *o.Image
	}
	if imgOpts.User == "" {
		imgOpts.User = o.User
	}
	u = &UVM{events: o.Events, node: o.Node, leaseTTL: o.LeaseTTL}
	if u.node == "" {
		u.node = cycle.DefaultNode()
	}
	if u.leaseTTL <= 0 {
		u.leaseTTL = cycle.DefaultLeaseTTL
	}
	u.leaseTTL = max(u.leaseTTL, 4*lease.MinTTL)
	u.beatHolder = lease.Holder(u.node)
	u.leases, _ = s.(store.Leaser)
	imgOpts.OnCommit = u.onCommit(imgOpts.OnCommit)
	var vmOpts vm.Options
	if o.VM != nil {
		vmOpts = *o.VM
	}
	u.store, u.db, u.slots, u.path, u.log = s, image.New(s, &imgOpts), make(chan struct{}, o.Workers), path, o.Logger
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	// The caller's map is its own: the catalog's primitive is added to a copy.
	vmOpts.Primitives = maps.Clone(vmOpts.Primitives)
	if vmOpts.Primitives == nil {
		vmOpts.Primitives = map[string]vm.Primitive{}
	}
	vmOpts.Primitives[catalogSearchPrimitive] = u.searchCatalog
	if !o.NoTelemetry {
		u.telemetry = vm.NewTelemetry()
		vmOpts.Telemetry = u.telemetry
	}
	u.vmOpts = vmOpts
	u.vm.Store(vm.New(&vmOpts))
	if o.Store != nil && o.Store.ReadOnly {
		// A read-only image is served as it is: awakening would write.
		created = false
	} else if created, err = u.awaken(ctx); err != nil {
		s.Close()
		return nil, false, err
	} else {
		u.startHeartbeat()
	}
	if o.Mind != nil {
		if err := u.EnableMind(ctx, o.Mind, o.MindOptions, o.Cycle); err != nil {
			s.Close()
			return nil, false, err
		}
	}
	u.stopWatch = u.watchOtherNodes()
	return u, created, nil
}

// awaken creates or upgrades the primordial image in one transaction: a
// crash half-way leaves nothing.
func (u *UVM) awaken(ctx context.Context) (bool, error) {
	var created bool
	err := u.db.Update(ctx, func(tx *image.Tx) error {
		tx.SetUser("batos")
		tx.SetTopic(command.TopicAwaken, nil)
		var err error
		created, err = awaken(tx)
		if created {
			tx.Note("awaken: create the primordial image")
		} else {
			tx.Note("awaken: upgrade system objects")
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("awaken image: %w", err)
	}
	return created, nil
}

// DB is the image.
func (u *UVM) DB() *image.DB { return u.db }

// VM is the method machine.
func (u *UVM) VM() *vm.VM { return u.vm.Load() }

// Telemetry is the method telemetry the VM counts into, nil when off.
func (u *UVM) Telemetry() *vm.Telemetry { return u.telemetry }

// Store is the store engine.
func (u *UVM) Store() store.Engine { return u.store }

// acquire takes a pool slot, or fails once shutdown began or ctx ended.
func (u *UVM) acquire(ctx context.Context) error {
	u.mu.Lock()
	if u.closing {
		u.mu.Unlock()
		return ErrShutdown
	}
	u.inflight.Add(1)
	u.mu.Unlock()
	select {
	case u.slots <- struct{}{}:
		return nil // a slot was free: ctx's Done channel is not made
	default:
	}
	select {
	case u.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		u.inflight.Done()
		return ctx.Err()
	}
}

func (u *UVM) release() {
	<-u.slots
	u.inflight.Done()
}

// Send sends selector to target (a root name or an OID) in its own
// transaction; write conflicts rerun it. A send that fails changes nothing.
// With a mind, a message nothing understands is learned first (the send
// waits for its cycle, then runs again).
func (u *UVM) Send(ctx context.Context, target, selector string, args []image.Value, kwargs []image.Slot) (vm.Result, error) {
	return u.SendWith(ctx, target, selector, args, kwargs, command.Learn{})
}

// SendWith is Send choosing how a message nothing understands is learned.
func (u *UVM) SendWith(ctx context.Context, target, selector string, args []image.Value, kwargs []image.Slot, how command.Learn) (_ vm.Result, err error) {
	start := time.Now()
	defer func() { observeSend(start, err) }()
	original := func() (cycle.Mission, error) {
		var m cycle.Mission
		err := u.db.View(ctx, func(tx *image.Tx) error {
			oid, err := tx.Resolve(target)
			m = cycle.Mission{Message: vm.Message{Receiver: oid, Selector: selector, Args: args, Kwargs: kwargs}}
			return err
		})
		return m, err
	}
	return u.learnedFor(ctx, how, func() (vm.Result, error) { return u.send(ctx, target, selector, args, kwargs) }, original)
}

func (u *UVM) send(ctx context.Context, target, selector string, args []image.Value, kwargs []image.Slot) (vm.Result, error) {
	name := func() (string, map[string]any) {
		return "send " + selector + " to " + target, map[string]any{"target": target, "selector": selector}
	}
	return u.execute(ctx, command.TopicSend, name, func(tx *image.Tx) (vm.Result, error) {
		oid, err := tx.Resolve(target)
		if err != nil {
			return vm.Result{}, err
		}
		return u.vm.Load().Send(ctx, tx, oid, selector, args, kwargs)
	})
}

// execute runs exec in a transaction of its own in the pool and, if the
// transaction changed anything, notes it and names its commit topic as
// name says (exec names none of its own). name is called only then: most
// sends only read, and commit nothing. A result too big to return does
// not undo the transaction: its error names the commit.
func (u *UVM) execute(ctx context.Context, topic string, name func() (note string, fields map[string]any), exec func(*image.Tx) (vm.Result, error)) (vm.Result, error) {
	if err := u.acquire(ctx); err != nil {
		return vm.Result{}, err
	}
	defer u.release()
	var res vm.Result
	var tooBig *vm.LimitError
	tid, err := u.db.UpdateTID(ctx, func(tx *image.Tx) error {
		var err error
		res, err = exec(tx)
		if !tx.Untouched() {
			note, fields := name()
			tx.Note(note)
			tx.SetTopic(topic, fields)
		}
		return keepUnreturned(err, &tooBig)
	})
	return res, unreturned(err, tooBig, tid)
}

// Eval runs code with the root's names bound, in its own transaction.
func (u *UVM) Eval(ctx context.Context, code string) (vm.Result, error) {
	return u.EvalWith(ctx, code, nil, nil)
}

// EvalWith is Eval after what a REPL session carries from its earlier
// inputs: its variables bound and its functions defined (vm.EvalAfter).
// Root names win over both, and are left out of the Globals and Defs it
// answers, since each input binds them anew.
func (u *UVM) EvalWith(ctx context.Context, code string, vars map[string]image.Value, defs []vm.Def) (vm.Result, error) {
	return u.learned(ctx, command.Learn{}, func() (vm.Result, error) { return u.eval(ctx, code, vars, defs) })
}

func (u *UVM) eval(ctx context.Context, code string, vars map[string]image.Value, defs []vm.Def) (vm.Result, error) {
	name := func() (string, map[string]any) { return evalNote(code), nil }
	return u.execute(ctx, command.TopicEval, name, func(tx *image.Tx) (vm.Result, error) {
		names, err := tx.RootNames()
		if err != nil {
			return vm.Result{}, err
		}
		globals := vm.GlobalsOf(names)
		for k, v := range vars {
			if _, root := globals[k]; !root {
				globals[k] = v
			}
		}
		isRoot := func(d vm.Def) bool { _, root := names[d.Name]; return root }
		res, err := u.vm.Load().EvalAfter(ctx, tx, slices.DeleteFunc(slices.Clone(defs), isRoot), code, globals)
		for name := range names {
			delete(res.Globals, name)
		}
		res.Defs = slices.DeleteFunc(res.Defs, isRoot)
		return res, err
	})
}

// Pack drops history superseded before the given time and every object
// and blob no longer reachable from the root, while sends go on. Shutdown
// waits for it, as for a send.
func (u *UVM) Pack(ctx context.Context, before time.Time) (store.PackResult, error) {
	if err := u.acquire(ctx); err != nil {
		return store.PackResult{}, err
	}
	defer u.release()
	return u.db.Pack(ctx, before)
}

// Stats counts what the image holds.
func (u *UVM) Stats(ctx context.Context) (store.Stats, error) { return u.store.Stats(ctx) }

// Update runs fn in its own transaction in the pool, as a send runs
// (write conflicts rerun it; shutdown waits for it), its commit named
// topic (fn may name it otherwise with Tx.SetTopic).
func (u *UVM) Update(ctx context.Context, topic string, fn func(*image.Tx) error) (store.TID, error) {
	if err := u.acquire(ctx); err != nil {
		return 0, err
	}
	defer u.release()
	return u.db.UpdateTID(ctx, func(tx *image.Tx) error {
		tx.SetTopic(topic, nil)
		return fn(tx)
	})
}

// Compact rewrites the image file without the free space pack leaves,
// while sends go on (commits wait for the copy).
func (u *UVM) Compact(ctx context.Context) (store.CompactResult, error) {
	if err := u.acquire(ctx); err != nil {
		return store.CompactResult{}, err
	}
	defer u.release()
	c, ok := u.store.(compacter)
	if !ok {
		return store.CompactResult{}, fmt.Errorf("%w: compact: %s is a database, which reclaims its own space (VACUUM)", store.ErrInvalid, DisplayName(u.path))
	}
	return c.Compact(ctx)
}

// Shutdown stops taking sends, lets those in flight finish (until ctx
// ends), and closes the image. Safe to call twice.
func (u *UVM) Shutdown(ctx context.Context) error {
	u.mu.Lock()
	u.closing = true
	u.mu.Unlock()
	// Cycles stop where they are (they resume on the next start), and
	// sends waiting for them return.
	if m := u.Cycles(); m != nil {
		m.Close()
	}
	done := make(chan struct{})
	go func() { u.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("uvm: shutdown: sends still running: %w", ctx.Err())
	}
	return u.Close()
}

// Close closes the image at once; sends in flight fail. Safe to call twice.
func (u *UVM) Close() error {
	u.mu.Lock()
	u.closing = true
	u.mu.Unlock()
	u.closed.Do(func() {
		if m := u.Cycles(); m != nil {
			m.Close()
		}
		beatErr := u.stopHeartbeat()
		if beatErr != nil {
			beatErr = fmt.Errorf("save telemetry: %w", beatErr)
		}
		catErr := u.closeCatalog()
		if u.stopWatch != nil {
			u.stopWatch()
		}
		u.closeErr = errors.Join(u.store.Close(), catErr, beatErr)
	})
	return u.closeErr
}

// unfinishedCycles counts the cycles not yet COMPLETE or FAILED.
func (u *UVM) unfinishedCycles(ctx context.Context) int {
	n := 0
	_ = u.db.View(ctx, func(tx *image.Tx) error {
		cs, err := cycle.List(tx)
		for _, c := range cs {
			if !c.State.Terminal() {
				n++
			}
		}
		return err
	})
	return n
}
