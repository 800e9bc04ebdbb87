package vm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"batos/internal/image"
	"batos/internal/store"
)

// Options configures a VM; nil means the defaults.
type Options struct {
	// MaxSteps bounds the Starlark steps of one execution; default 10M.
	MaxSteps uint64
	// Timeout bounds one execution's wall time; default 5 s.
	Timeout time.Duration
	// MaxDepth bounds nested sends; default 200.
	MaxDepth int
	// MaxMemory: an execution is stopped when the process heap grows by
	// more than this while it runs, or would grow past it by an
	// allocation one of its operations is about to make; default 512 MiB,
	// and never more than MaxTotalMemory.
	MaxMemory uint64
	// MaxTotalMemory bounds the process's heap as every execution sees
	// it, its own allocations and those of all others (of every VM)
	// together: an operation that would take the heap past it fails, and
	// while it is past, the execution that has grown it most is stopped;
	// default 1 GiB. The heap holds the image's caches too: a big image
	// wants more.
	MaxTotalMemory uint64
	// MaxResult bounds what an execution answers as a reply carries it:
	// its value (as the bridge encodes it), its repr and its printed
	// output; default 16 MiB. Output past it is dropped (with a note); a
	// value and repr past it fail with a ReplyLimit error, which leaves
	// the execution's changes to the caller to commit.
	MaxResult int
	// Now is the clock method code sees; default time.Now.
	Now func() time.Time
	// Handler answers messages nothing understands; default: an error
	// saying there is no mind to learn them (NotUnderstoodError).
	Handler Handler
	// Primitives are the Go functions primitive slots name.
	Primitives map[string]Primitive
	// Globals are extra names Eval binds (not method code): helpers for
	// a REPL or tests.
	Globals starlark.StringDict
	// Telemetry, when set, counts every method execution there (see
	// Telemetry); nil counts nothing.
	Telemetry *Telemetry
}

func (o *Options) withDefaults() Options {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.MaxSteps == 0 {
		opts.MaxSteps = 10_000_000
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.MaxDepth == 0 {
		opts.MaxDepth = 200
	}
	if opts.MaxTotalMemory == 0 {
		opts.MaxTotalMemory = 1 << 30
	}
	if opts.MaxMemory == 0 {
		opts.MaxMemory = 512 << 20
	}
	opts.MaxMemory = min(opts.MaxMemory, opts.MaxTotalMemory)
	if opts.MaxResult <= 0 {
		opts.MaxResult = 16 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Handler == nil {
		opts.Handler = noMind{}
	}
	return opts
}

// Handler answers a message that nothing in the receiver's chain
// understands. It runs inside the sender's transaction.
type Handler interface {
	DoesNotUnderstand(ctx context.Context, tx *image.Tx, msg *Message) (image.Value, error)
}

// Message is a send that found no slot.
type Message struct {
	Receiver store.OID
	Selector string
	Args     []image.Value
	Kwargs   []image.Slot
}

type noMind struct{}

func (noMind) DoesNotUnderstand(ctx context.Context, tx *image.Tx, msg *Message) (image.Value, error) {
	return nil, &NotUnderstoodError{Receiver: describe(tx, msg.Receiver), Selector: msg.Selector}
}

// describe names an object for messages: its OID and, if it has one, its
// name slot.
func describe(tx *image.Tx, oid store.OID) string {
	o, err := tx.Object(oid)
	if err != nil {
		return oid.String()
	}
	if n, ok := o.Get("name"); ok {
		if s, ok := n.(image.String); ok {
			return fmt.Sprintf("%s (%s)", oid, string(s))
		}
	}
	return oid.String()
}

// Primitive is a Go function a primitive slot names. It is called with the
// receiver and the arguments of the send.
type Primitive func(ctx context.Context, tx *image.Tx, self image.Ref, args []image.Value) (image.Value, error)

// VM runs method code. It is safe for concurrent use; each execution has
// its own thread.
type VM struct {
	opts    Options
	methods sync.Map // methodKey -> *starlark.Function
	watch   watchdog
}

// New returns a VM.
func New(opts *Options) *VM { return &VM{opts: opts.withDefaults()} }

// CompiledMethods reports how many method functions are cached.
func (vm *VM) CompiledMethods() int {
	n := 0
	vm.methods.Range(func(any, any) bool { n++; return true })
	return n
}

// Result is what an execution produced.
type Result struct {
	// Value is the answer as an image value, nil when it has none (a
	// function, say); Repr is its Starlark representation.
	Value image.Value
	Repr  string
	// Output is what print wrote.
	Output string
	// Globals are the names an Eval's statements defined, as image
	// values (names whose values cannot be stored are left out).
	Globals map[string]image.Value
	// Dropped names globals, defined or rebound by the statements, that
	// cannot be carried to another execution (a set, a bound method, a
	// function that Defs does not carry), sorted.
	Dropped []string
	// Defs are the function definitions an Eval carries to a later one
	// (EvalAfter): those given and those its input made at the top
	// level, for the names still bound to the function they made, in
	// the order to define them again.
	Defs []Def
	// Steps are the Starlark steps the execution took, nested sends
	// included, whether it succeeded or not.
	Steps uint64
}

func (vm *VM) send(ctx context.Context, tx *image.Tx, target store.OID, selector string, args []image.Value, kwargs []image.Slot) (Result, error) {
	ex, err := vm.start(ctx, tx)
	if err != nil {
		return Result{}, err
	}
	defer ex.stop()
	recv, err := ex.object(target)
	if err != nil {
		return Result{}, err
	}
	sargs := make(starlark.Tuple, len(args))
	for i, a := range args {
		if sargs[i], err = ex.toStarlark(a); err != nil {
			return Result{}, err
		}
	}
	var skw []starlark.Tuple
	for _, kw := range kwargs {
		v, err := ex.toStarlark(kw.Value)
		if err != nil {
			return Result{}, err
		}
		skw = append(skw, starlark.Tuple{starlark.String(kw.Name), v})
	}
	fn, err := recv.callee(selector)
	if err != nil {
		return Result{}, ex.fail(err)
	}
	if pm, ok := fn.(*pendingMessage); ok {
		// Not understood at the top: the handler's answer, or its error,
		// is the send's, with no Starlark frame around it.
		v, err := pm.CallInternal(ex.thread, sargs, skw)
		return ex.finishCounted(v, err)
	}
	v, err := recv.deliver(ex.thread, selector, fn, sargs, skw)
	return ex.finishCounted(v, err)
}

// finishCounted is finish, with the steps taken in the result.
func (ex *execution) finishCounted(v starlark.Value, err error) (Result, error) {
	res, err := ex.finish(v, err)
	res.Steps = ex.thread.ExecutionSteps()
	return res, err
}

// Send sends selector to target with arguments, in tx. A read-only tx
// makes a read-only execution. A ReplyLimit error says the execution
// finished but its result is too big to return: the caller may commit
// tx.
func (vm *VM) Send(ctx context.Context, tx *image.Tx, target store.OID, selector string, args []image.Value, kwargs []image.Slot) (Result, error) {
	res, err := vm.send(ctx, tx, target, selector, args, kwargs)
	freeAfter(err)
	return res, err
}

// Eval runs code (an expression, or statements) with the given globals
// bound (root names as image.Ref values, say), in tx. As in a REPL, the
// result is the value of the code's last top-level statement when that
// is an expression statement (code that is one expression included),
// else None; the globals (those given and those defined) come back in
// Result.Globals, so a REPL can carry them to its next input. A
// ReplyLimit error is as for Send.
func (vm *VM) Eval(ctx context.Context, tx *image.Tx, code string, globals map[string]image.Value) (Result, error) {
	return vm.EvalAfter(ctx, tx, nil, code, globals)
}

// EvalAfter is Eval after defining defs, in order, in code's globals
// (over the given ones): the functions a REPL session carries from its
// earlier inputs (Result.Defs). Each runs as a chunk of its own, so
// code's errors keep code's line numbers.
func (vm *VM) EvalAfter(ctx context.Context, tx *image.Tx, defs []Def, code string, globals map[string]image.Value) (Result, error) {
	res, err := vm.eval(ctx, tx, defs, code, globals, true)
	freeAfter(err)
	return res, err
}

// eval is EvalAfter; unless answerLast, statements answer None, whatever
// the last one.
func (vm *VM) eval(ctx context.Context, tx *image.Tx, defs []Def, code string, globals map[string]image.Value, answerLast bool) (Result, error) {
	ex, err := vm.start(ctx, tx)
	if err != nil {
		return Result{}, err
	}
	defer ex.stop()
	env, err := vm.environment(ex, globals)
	if err != nil {
		return Result{}, err
	}
	made, err := ex.define(env, defs)
	if err != nil {
		return ex.finishCounted(nil, err)
	}
	v, defined, mine, err := evalChunk(ex.thread, code, env, answerLast)
	res, err := ex.finishCounted(v, err)
	if err == nil && len(defined) > 0 {
		res.Defs = carried(defined, defs, made, mine)
		if err = ex.globals(&res, defined); err != nil {
			return Result{Output: res.Output}, ex.fail(err)
		}
	}
	return res, err
}

// environment is what evaluated code sees: the built-ins, the VM's
// globals, then the caller's (which win).
func (vm *VM) environment(ex *execution, globals map[string]image.Value) (starlark.StringDict, error) {
	env := make(starlark.StringDict, len(globals)+len(predeclared)+len(vm.opts.Globals))
	for k, v := range predeclared {
		env[k] = v
	}
	for k, v := range vm.opts.Globals {
		env[k] = v
	}
	for name, v := range globals {
		sv, err := ex.toStarlark(v)
		if err != nil {
			return nil, fmt.Errorf("global %s: %w", name, err)
		}
		env[name] = sv
	}
	return env, nil
}

// globals converts the names an Eval defined into res, while the
// execution's limits still apply (its watchdog runs until it stops):
// all of them together within what a reply could carry, a value to
// each byte of it, or it is a ReplyLimit error. Names whose values
// cannot be stored are dropped, but for the functions res.Defs carries.
func (ex *execution) globals(res *Result, defined starlark.StringDict) error {
	res.Globals = map[string]image.Value{}
	byDef := make(map[string]bool, len(res.Defs))
	for _, d := range res.Defs {
		byDef[d.Name] = true
	}
	left := uint64(ex.vm.opts.MaxResult)
	for name, dv := range defined {
		if _, extra := ex.vm.opts.Globals[name]; extra || byDef[name] {
			continue
		}
		n, err := ex.expansion(dv, left, ReplyLimit, fmt.Sprintf("the globals an eval hands back are at most the %s reply limit", mib(uint64(ex.vm.opts.MaxResult))))
		if err != nil {
			var le *LimitError
			if errors.As(err, &le) && le.Limit == ReplyLimit {
				le.Detail = "global " + name + ": " + le.Detail
			}
			return err
		}
		left -= n
		held, err := ex.reserve(times(n, slotSize))
		if err != nil {
			return err
		}
		iv, cerr := ex.convert(dv, 0)
		release(held)
		if cerr == nil {
			res.Globals[name] = iv
		} else {
			res.Dropped = append(res.Dropped, name)
		}
	}
	slices.Sort(res.Dropped)
	return nil
}

// GlobalsOf binds object references by name, for Eval.
func GlobalsOf(names map[string]store.OID) map[string]image.Value {
	g := make(map[string]image.Value, len(names))
	for n, oid := range names {
		g[n] = image.Ref(oid)
	}
	return g
}

// execution is one Send or Eval: a thread, the objects it has wrapped,
// and the container slots to write back.
type execution struct {
	vm       *VM
	caller   context.Context // the sender's context: its end cancels the execution
	tx       *image.Tx
	thread   *starlark.Thread // from the pool (threads); nil once stopped
	objects  wrapped
	slots    map[slotKey]starlark.Value // containers handed out, to write back; made on first use
	out      strings.Builder
	dropped  int    // bytes of output past MaxResult, not kept
	heapBase uint64 // the heap when it started
	// deadline is when the time limit trips (Unix nanoseconds) while the
	// watchdog watches ex, zero otherwise (watch, unwatch).
	deadline int64
	counted  uint64 // small allocations counted since the heap was checked
	// notUnderstood is the error the doesNotUnderstand handler last
	// returned: telemetry counts the methods it fails as not understood.
	notUnderstood error

	mu        sync.Mutex // guards what follows, which the watchdog sets too
	tripped   *LimitError
	cancelled error
	// ctx is what Go code the execution calls (primitives, the handler)
	// gets: it ends when the caller's does or a limit trips. It is made
	// when first asked for (context): most sends call no Go code.
	ctx     context.Context
	stopCtx context.CancelFunc
}

type slotKey struct {
	oid  store.OID
	name string
}

const execKey = "batos.execution"

func (vm *VM) start(ctx context.Context, tx *image.Tx) (*execution, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ex := &execution{vm: vm, caller: ctx, tx: tx}
	ex.thread = takeThread(ex)
	now := time.Now()
	ex.heapBase = recentHeap(now)
	ex.watch(now)
	return ex, nil
}

// context is the context Go code the execution calls gets, made on
// first use; it is done already if the execution was stopped.
func (ex *execution) context() context.Context {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.ctx == nil {
		ex.ctx, ex.stopCtx = context.WithCancel(ex.caller)
		if ex.tripped != nil || ex.cancelled != nil {
			ex.stopCtx()
		}
	}
	return ex.ctx
}

// endContextLocked cancels the context handed to Go code, if one was.
func (ex *execution) endContextLocked() {
	if ex.stopCtx != nil {
		ex.stopCtx()
	}
}

// print keeps a line of output, or, past MaxResult, counts it dropped.
func (ex *execution) print(msg string) {
	if ex.dropped == 0 && ex.out.Len()+len(msg)+1 <= ex.vm.opts.MaxResult {
		ex.out.WriteString(msg)
		ex.out.WriteByte('\n')
		return
	}
	ex.dropped += len(msg) + 1
}

// trip records the first limit hit and cancels the thread.
func (ex *execution) trip(l *LimitError) {
	ex.mu.Lock()
	if ex.tripped == nil && ex.cancelled == nil {
		ex.tripped = l
	}
	ex.endContextLocked()
	ex.mu.Unlock()
	ex.thread.Cancel(l.Limit.String() + " exceeded")
}

// cancel stops the thread because the caller's context ended.
func (ex *execution) cancel(err error) {
	ex.mu.Lock()
	if ex.tripped == nil && ex.cancelled == nil {
		ex.cancelled = err
	}
	ex.endContextLocked()
	ex.mu.Unlock()
	ex.thread.Cancel(err.Error())
}

// stop ends the execution: the watchdog forgets it, the context Go code
// got ends, and its thread goes back to the pool unless it was
// cancelled.
func (ex *execution) stop() {
	ex.unwatch()
	ex.mu.Lock()
	ex.endContextLocked()
	reusable := ex.tripped == nil && ex.cancelled == nil
	ex.mu.Unlock()
	releaseThread(ex.thread, reusable)
	ex.thread = nil
}

func executionOf(thread *starlark.Thread) *execution {
	ex, _ := thread.Local(execKey).(*execution)
	return ex
}

// finish writes back changed containers and converts the answer.
func (ex *execution) finish(v starlark.Value, err error) (Result, error) {
	// A limit can trip, or the caller give up, with no Starlark step left
	// to notice (the last call was Go code): look before accepting.
	ex.checkLimitsNow()
	if err == nil {
		err = ex.stopped()
	}
	if err != nil {
		return Result{Output: ex.out.String()}, ex.fail(err)
	}
	if err := ex.writeBack(); err != nil {
		var le *LimitError
		if errors.As(err, &le) {
			return Result{Output: ex.out.String()}, ex.fail(err)
		}
		return Result{Output: ex.out.String()}, &Error{Msg: err.Error(), Err: err}
	}
	if v == nil {
		v = starlark.None
	}
	return ex.result(v)
}

// stopped reports a tripped limit or cancellation, if any.
func (ex *execution) stopped() error {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.cancelled != nil {
		return ex.cancelled
	}
	if ex.tripped != nil {
		return ex.tripped
	}
	return nil
}

// fail turns a Starlark error into a LimitError or an Error with its
// backtrace.
func (ex *execution) fail(err error) error {
	var backtrace string
	var evalErr *starlark.EvalError
	if errors.As(err, &evalErr) {
		backtrace = shortenBacktrace(evalErr.Backtrace())
	}
	ex.mu.Lock()
	tripped, cancelled := ex.tripped, ex.cancelled
	ex.mu.Unlock()
	if cancelled != nil {
		return cancelled
	}
	if tripped != nil {
		l := *tripped
		l.Backtrace = backtrace
		return &l
	}
	if strings.Contains(err.Error(), "Starlark stack overflow") {
		return &LimitError{Limit: DepthLimit, Detail: "Starlark's own recursion limit", Backtrace: backtrace}
	}
	var le *LimitError
	if errors.As(err, &le) {
		l := *le
		l.Backtrace = backtrace
		return &l
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if evalErr != nil {
		return &Error{Msg: clip(evalErr.Msg), Backtrace: backtrace, Err: errors.Unwrap(evalErr)}
	}
	// A syntax or resolve error in the code itself, say: the code's
	// fault, reported as such.
	if se := syntaxError(err); se != nil {
		se.Msg = clip(se.Msg)
		return &Error{Msg: se.Error(), Err: se}
	}
	return &Error{Msg: clip(err.Error()), Err: err}
}

// syntaxError is err as a SyntaxError when the parser or resolver made
// it (the first of a resolver's), else nil.
// SyntaxPosition is where the parser or resolver stopped in err (a
// method's source refused by CheckMethod, say), both from 1; 0, 0 when
// err is no syntax error.
func SyntaxPosition(err error) (line, col int) {
	if se := syntaxError(err); se != nil {
		return se.Line, se.Col
	}
	return 0, 0
}

func syntaxError(err error) *SyntaxError {
	var se syntax.Error
	var list resolve.ErrorList
	switch {
	case errors.As(err, &se):
		return &SyntaxError{Line: int(se.Pos.Line), Col: int(se.Pos.Col), Msg: se.Msg}
	case errors.As(err, &list) && len(list) > 0:
		msg := list[0].Msg
		if len(list) > 1 {
			msg += fmt.Sprintf(" (and %d more)", len(list)-1)
		}
		return &SyntaxError{Line: int(list[0].Pos.Line), Col: int(list[0].Pos.Col), Msg: msg}
	}
	return nil
}

// maxMessage bounds the message of an error, which a reply carries whole
// (fail(big) would make it as big as memory allows).
const maxMessage = 64 << 10

func clip(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s ... (%d bytes more)", s[:cut], len(s)-cut)
}

// backtraceFrames is how many frames a backtrace keeps at each end: a
// runaway recursion would otherwise report thousands of identical lines.
const backtraceFrames = 12

func shortenBacktrace(bt string) string {
	lines := strings.Split(bt, "\n")
	// The first line is a header and the last the error itself.
	if len(lines) <= 2*backtraceFrames+2 {
		return clip(bt)
	}
	head := lines[:1+backtraceFrames]
	tail := lines[len(lines)-1-backtraceFrames:]
	omitted := len(lines) - len(head) - len(tail)
	return clip(strings.Join(head, "\n") + fmt.Sprintf("\n  ... %d more frames ...\n", omitted) + strings.Join(tail, "\n"))
}
