package protocol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"syscall"
	"time"

	"batos/internal/command"
	"batos/internal/store"
	"batos/internal/vm"
)

// Caller carries one request to a server and brings back its result, or
// the server's error as a *command.Error: a transport's client (the
// ZeroMQ bridge's Client, say). A call whose ctx ends first cancels the
// request on the server where the transport can.
type Caller interface {
	Call(ctx context.Context, command string, args map[string]any) (any, error)
	Close() error
}

// Remote runs the commands on the server at the other end of a Caller:
// the command layer's Service over a transport. A call that gets no answer
// in a minute gives up (the server may still finish it); a call that may
// wait for a cognitive cycle waits as long as the server does, and a
// minute more; a pack, a catalog add and a reindex wait a day. When the
// server's process is known and visible here, a call ends as soon as that
// process exits: its answer will never come.
type Remote struct {
	c   Caller
	pid int
}

var _ command.Service = (*Remote)(nil)

// NewRemote serves the commands through c; serverPID is the server's
// process, or 0 when unknown.
func NewRemote(c Caller, serverPID int) *Remote { return &Remote{c: c, pid: serverPID} }

// Close closes the connection.
func (r *Remote) Close() error { return r.c.Close() }

// Timeouts of remote calls.
const (
	remoteTimeout = time.Minute
	packTimeout   = 24 * time.Hour
)

// ErrServerGone is wrapped when the server's process exited before it
// answered.
var ErrServerGone = errors.New("the server stopped before answering")

// serverCheck is how often a call looks whether its server still runs.
const serverCheck = 250 * time.Millisecond

func (r *Remote) call(ctx context.Context, command string, args map[string]any) (any, error) {
	return r.callFor(ctx, remoteTimeout, command, args)
}

func (r *Remote) callFor(ctx context.Context, timeout time.Duration, command string, args map[string]any) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx, stop := r.watchServer(ctx, command)
	defer stop()
	res, err := r.c.Call(ctx, command, args)
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, ErrServerGone) {
		return nil, cause
	}
	return res, err
}

// watchServer returns ctx, cancelled when the server's process exits;
// stop ends the watch and waits for it. A server whose process is not
// visible here (another PID namespace, say) is not watched.
func (r *Remote) watchServer(ctx context.Context, command string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	if r.pid <= 0 || !processRuns(r.pid) {
		return ctx, func() { cancel(nil) }
	}
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(serverCheck)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if !processRuns(r.pid) {
				cancel(fmt.Errorf("%w %s: its process (%d) is gone; a cycle it was running resumes when it starts again", ErrServerGone, command, r.pid))
				return
			}
		}
	}()
	return ctx, func() { cancel(nil); <-exited }
}

// processRuns reports whether process pid runs (a zombie does not).
func processRuns(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: the signal check is all there is
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// refused is a request refused here, as the server would refuse it, in
// the form of the server's error.
func refused(err error) error {
	return &command.Error{Kind: command.KindOf(err), Message: command.Message(err)}
}

// Send sends over the bridge; req.Learn becomes the request's "learn" and
// "timeout_ms".
func (r *Remote) Send(ctx context.Context, req command.SendRequest) (vm.Result, error) {
	// Refused here as Local refuses it: the wire cannot say everything a
	// request can (a handle with a timeout), so a bad one must not leave.
	if err := req.Check(); err != nil {
		return vm.Result{}, refused(err)
	}
	kw := map[string]any{}
	for _, s := range req.Kwargs {
		kw[s.Name] = s.Value
	}
	list := make([]any, len(req.Args))
	for i, a := range req.Args {
		list[i] = a
	}
	args := map[string]any{"target": req.Target, "selector": req.Selector, "args": list, "kwargs": kw}
	wait := command.DefaultLearnTimeout
	switch {
	case req.Learn.Handle:
		args["learn"], wait = "handle", 0
	case req.Learn.Timeout > 0:
		// The bridge takes at most MaxInt32 ms (24 days): a longer wait is
		// that long.
		args["learn"], args["timeout_ms"], wait = "wait", min(max(req.Learn.Timeout.Milliseconds(), 1), math.MaxInt32), req.Learn.Timeout
	}
	res, err := r.callFor(ctx, wait+remoteTimeout, "send", args)
	return resultOf(res), err
}

// Eval evaluates over the bridge; a session lives in the server, as
// Local keeps it.
func (r *Remote) Eval(ctx context.Context, req command.EvalRequest) (vm.Result, error) {
	if err := req.Check(); err != nil {
		return vm.Result{}, err
	}
	args := map[string]any{"code": req.Code}
	if req.Session != "" {
		args["session"] = req.Session
	}
	if req.Self != "" {
		args["self"] = req.Self
	}
	res, err := r.callFor(ctx, command.DefaultLearnTimeout+remoteTimeout, "eval", args)
	out := resultOf(res)
	m, _ := res.(map[string]any)
	for _, name := range list(m["dropped"]) {
		if s, ok := name.(string); ok {
			out.Dropped = append(out.Dropped, s)
		}
	}
	return out, err
}

func (r *Remote) InspectAt(ctx context.Context, target string, at store.TID) (command.ObjectView, error) {
	res, err := r.call(ctx, "inspect", map[string]any{"target": target, "tid": at.String()})
	if err != nil {
		return command.ObjectView{}, err
	}
	return objectViewOf(res), nil
}

func (r *Remote) Inspect(ctx context.Context, target string) (command.ObjectView, error) {
	res, err := r.call(ctx, "inspect", map[string]any{"target": target})
	if err != nil {
		return command.ObjectView{}, err
	}
	return objectViewOf(res), nil
}

func (r *Remote) History(ctx context.Context, target string, limit int) ([]command.Revision, error) {
	res, err := r.call(ctx, "history", map[string]any{"target": target, "limit": int64(limit)})
	if err != nil {
		return nil, err
	}
	return revisionsOf(res), nil
}

func (r *Remote) Log(ctx context.Context, q store.LogQuery) ([]store.TxInfo, error) {
	args := map[string]any{"limit": int64(q.Limit)}
	if q.Before != 0 {
		args["before"] = q.Before.String()
	}
	res, err := r.call(ctx, "log", args)
	if err != nil {
		return nil, err
	}
	var txns []store.TxInfo
	for _, x := range list(res) {
		m, _ := x.(map[string]any)
		txns = append(txns, txOf(m))
	}
	return txns, nil
}

func (r *Remote) Undo(ctx context.Context, tid store.TID) (command.Undone, error) {
	res, err := r.call(ctx, "undo", map[string]any{"tid": tid.String()})
	if err != nil {
		return command.Undone{}, err
	}
	return undoneOf(res), nil
}

func (r *Remote) Pack(ctx context.Context, req command.PackRequest) (command.Packed, error) {
	args := map[string]any{"compact": req.Compact}
	if !req.Before.IsZero() {
		args["before"] = req.Before.UTC().Format(time.RFC3339Nano)
	}
	res, err := r.callFor(ctx, packTimeout, "pack", args)
	if err != nil {
		return command.Packed{}, err
	}
	return packedOf(res), nil
}

func (r *Remote) InitiateCycle(ctx context.Context, target, brief string) (command.CycleHandle, error) {
	res, err := r.call(ctx, "initiate_cognitive_cycle", map[string]any{"target_oid": target, "mission_brief": brief})
	if err != nil {
		return command.CycleHandle{}, err
	}
	return handleOf(res), nil
}

func (r *Remote) ListCycles(ctx context.Context, limit int) ([]command.CycleView, error) {
	res, err := r.call(ctx, "cycle_list", map[string]any{"limit": int64(limit)})
	if err != nil {
		return nil, err
	}
	var views []command.CycleView
	for _, x := range list(res) {
		v, err := cycleViewOf(x)
		if err != nil {
			return nil, fmt.Errorf("the server's cycle list: %w", err)
		}
		views = append(views, *v)
	}
	return views, nil
}

func (r *Remote) ShowCycle(ctx context.Context, id int64) (*command.CycleView, error) {
	res, err := r.call(ctx, "cycle_show", map[string]any{"cycle": id})
	if err != nil {
		return nil, err
	}
	return cycleViewOf(res)
}

func (r *Remote) RetryCycle(ctx context.Context, id int64) (command.CycleHandle, error) {
	res, err := r.call(ctx, "cycle_retry", map[string]any{"cycle": id})
	if err != nil {
		return command.CycleHandle{}, err
	}
	return handleOf(res), nil
}

func (r *Remote) CancelCycle(ctx context.Context, id int64) (command.Cancelled, error) {
	res, err := r.call(ctx, "cycle_cancel", map[string]any{"cycle": id})
	if err != nil {
		return command.Cancelled{}, err
	}
	return cancelledOf(res), nil
}

func (r *Remote) Stats(ctx context.Context) (store.Stats, error) {
	res, err := r.call(ctx, "stats", nil)
	if err != nil {
		return store.Stats{}, err
	}
	return statsOf(res), nil
}

// Verify waits as long as a pack does: it reads the whole image.
func (r *Remote) Verify(ctx context.Context) (*store.Report, error) {
	res, err := r.callFor(ctx, packTimeout, "verify", nil)
	if err != nil {
		return nil, err
	}
	return reportOf(res), nil
}

func (r *Remote) SetMethod(ctx context.Context, req command.MethodRequest) (command.MethodChange, error) {
	res, err := r.call(ctx, "method_set", map[string]any{"target": req.Target, "name": req.Name, "source": req.Source, "from": req.From})
	if err != nil {
		return command.MethodChange{}, err
	}
	return methodChangeOf(res), nil
}

func (r *Remote) RevertMethod(ctx context.Context, target, name string) (command.MethodChange, error) {
	res, err := r.call(ctx, "method_revert", map[string]any{"target": target, "name": name})
	if err != nil {
		return command.MethodChange{}, err
	}
	return methodChangeOf(res), nil
}

func (r *Remote) RemoveSlot(ctx context.Context, target, name string) (command.SlotRemoved, error) {
	res, err := r.call(ctx, "slot_remove", map[string]any{"target": target, "name": name})
	if err != nil {
		return command.SlotRemoved{}, err
	}
	m, _ := res.(map[string]any)
	tid, _ := store.ParseTID(str(m["tid"]))
	return command.SlotRemoved{TID: tid, Removed: str(m["removed"])}, nil
}

func (r *Remote) Personas(ctx context.Context, only string) (command.PersonaReport, error) {
	var res any
	var err error
	if only == "" {
		res, err = r.call(ctx, "persona_list", nil)
	} else {
		res, err = r.call(ctx, "persona_show", map[string]any{"name": only})
	}
	if err != nil {
		return command.PersonaReport{}, err
	}
	return personaReportOf(res)
}

// EditPersona waits as long as a pack does: the server copies the
// adapter into the image. edit.Adapter is a path on the server's
// machine; edit.Progress is not told.
func (r *Remote) EditPersona(ctx context.Context, name string, edit command.PersonaEdit) (command.PersonaChange, error) {
	args := map[string]any{"name": name, "create": edit.Create, "clear_adapter": edit.ClearAdapter}
	for k, v := range map[string]*string{"role": edit.Role, "system_prompt": edit.SystemPrompt, "model": edit.Model} {
		if v != nil {
			args[k] = *v
		}
	}
	if edit.Temperature != nil {
		args["temperature"] = *edit.Temperature
	}
	if edit.Adapter != "" {
		args["adapter"] = edit.Adapter
	}
	res, err := r.callFor(ctx, packTimeout, "persona_set", args)
	if err != nil {
		return command.PersonaChange{}, err
	}
	return personaChangeOf(res), nil
}

// WarmPersonas waits as long as a pack does: warming may push a base
// model's blob to the inference server.
func (r *Remote) WarmPersonas(ctx context.Context, names []string) ([]command.WarmResult, error) {
	list := make([]any, len(names))
	for i, n := range names {
		list[i] = n
	}
	res, err := r.callFor(ctx, packTimeout, "persona_warm", map[string]any{"names": list})
	if err != nil {
		return nil, err
	}
	return warmResultsOf(res), nil
}

// CatalogAdd waits as long as a pack does: the server reads, chunks and
// embeds every file. req.Paths are paths on the server's machine;
// req.Progress is not told.
func (r *Remote) CatalogAdd(ctx context.Context, req command.CatalogAddRequest) (command.CatalogAddResult, error) {
	if err := req.Check(); err != nil {
		return command.CatalogAddResult{}, refused(err)
	}
	args := map[string]any{}
	if len(req.Paths) > 0 {
		paths := make([]any, len(req.Paths))
		for i, p := range req.Paths {
			paths[i] = p
		}
		args["paths"] = paths
	} else {
		args["text"], args["name"] = req.Text, req.Name
		if req.Title != "" {
			args["title"] = req.Title
		}
	}
	if len(req.Meta) > 0 {
		args["meta"] = metaWire(req.Meta)
	}
	res, err := r.callFor(ctx, packTimeout, "catalog_add", args)
	if err != nil {
		return command.CatalogAddResult{}, err
	}
	return viewOf[command.CatalogAddResult](res, "catalog add result")
}

func metaWire(meta map[string]string) map[string]any {
	m := make(map[string]any, len(meta))
	for k, v := range meta {
		m[k] = v
	}
	return m
}

func (r *Remote) CatalogSearch(ctx context.Context, req command.CatalogSearchRequest) (command.CatalogSearchResult, error) {
	if err := req.Check(); err != nil {
		return command.CatalogSearchResult{}, refused(err)
	}
	args := map[string]any{"query": req.Query, "k": int64(req.K), "methods": req.Methods}
	if req.Doc != "" {
		args["doc"] = req.Doc
	}
	if len(req.Meta) > 0 {
		args["meta"] = metaWire(req.Meta)
	}
	res, err := r.call(ctx, "catalog_search", args)
	if err != nil {
		return command.CatalogSearchResult{}, err
	}
	return viewOf[command.CatalogSearchResult](res, "search result")
}

func (r *Remote) CatalogList(ctx context.Context) (command.CatalogList, error) {
	res, err := r.call(ctx, "catalog_list", nil)
	if err != nil {
		return command.CatalogList{}, err
	}
	return viewOf[command.CatalogList](res, "catalog list")
}

func (r *Remote) CatalogShow(ctx context.Context, doc string) (command.CatalogDocument, error) {
	if err := command.CheckDoc(doc); err != nil {
		return command.CatalogDocument{}, refused(err)
	}
	res, err := r.call(ctx, "catalog_show", map[string]any{"doc": doc})
	if err != nil {
		return command.CatalogDocument{}, err
	}
	return viewOf[command.CatalogDocument](res, "document")
}

func (r *Remote) CatalogRemove(ctx context.Context, doc string) (command.CatalogRemoved, error) {
	if err := command.CheckDoc(doc); err != nil {
		return command.CatalogRemoved{}, refused(err)
	}
	res, err := r.call(ctx, "catalog_remove", map[string]any{"doc": doc})
	if err != nil {
		return command.CatalogRemoved{}, err
	}
	return viewOf[command.CatalogRemoved](res, "removed document")
}

// CatalogReindex waits as long as a pack does: the server rebuilds the
// indexes from every document and method.
func (r *Remote) CatalogReindex(ctx context.Context) (command.CatalogReindexed, error) {
	res, err := r.callFor(ctx, packTimeout, "catalog_reindex", nil)
	if err != nil {
		return command.CatalogReindexed{}, err
	}
	return viewOf[command.CatalogReindexed](res, "reindex report")
}

func (r *Remote) CatalogStats(ctx context.Context) (command.CatalogStats, error) {
	res, err := r.call(ctx, "catalog_stats", nil)
	if err != nil {
		return command.CatalogStats{}, err
	}
	return viewOf[command.CatalogStats](res, "catalog stats")
}
