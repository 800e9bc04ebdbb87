package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"syscall"
	"time"

	"batos/internal/image"
	"batos/internal/mind"
	"batos/internal/store"
	"batos/internal/uvm"
	"batos/internal/vm"
	"batos/internal/zmqbridge"
)

// imageAccess is what send, eval, inspect and repl need: the image opened
// here, or, when `batos run` holds it, the running server.
type imageAccess interface {
	EvalWith(ctx context.Context, code string, vars map[string]image.Value) (vm.Result, error)
	SendWith(ctx context.Context, target, selector string, args []image.Value, kwargs []image.Slot, how uvm.Learn) (vm.Result, error)
	Inspect(ctx context.Context, target string) (uvm.ObjectView, error)
	Close() error
}

// bridgeFile is where `batos run` leaves its request endpoint, beside the
// image, for other batos processes to find it.
func bridgeFile(img string) string { return img + ".bridge" }

// remoteFor returns a client of the server holding the image, when err
// says the image is in use and that server left its endpoint.
func remoteFor(e *env, err error) (remoteImage, bool) {
	if !errors.Is(err, store.ErrInUse) {
		return remoteImage{}, false
	}
	addr, rerr := os.ReadFile(bridgeFile(e.image))
	if rerr != nil {
		return remoteImage{}, false
	}
	c, derr := zmqbridge.Dial(strings.TrimSpace(string(addr)), nil)
	if derr != nil {
		return remoteImage{}, false
	}
	return remoteImage{c: c, pid: holderPID(err)}, true
}

// holderPID is the process holding the image, as err names it, or 0.
func holderPID(err error) int {
	var inUse *store.InUseError
	if errors.As(err, &inUse) {
		return inUse.PID
	}
	return 0
}

// txInfoOf reads a transaction as the bridge's log and history give it.
func txInfoOf(m map[string]any) store.TxInfo {
	t := store.TxInfo{User: str(m["user"]), Description: str(m["description"])}
	t.TID, _ = store.ParseTID(str(m["tid"]))
	t.Time, _ = time.Parse(time.RFC3339Nano, str(m["time"]))
	for _, o := range list(m["oids"]) {
		if oid, err := store.ParseOID(str(o)); err == nil {
			t.OIDs = append(t.OIDs, oid)
		}
	}
	if ext, ok := m["extension"].(map[string]any); ok && len(ext) > 0 {
		t.Extension = map[string]string{}
		for k, v := range ext {
			t.Extension[k] = str(v)
		}
	}
	return t
}

// accessImage opens the image, or reaches the server holding it. The
// user never has to care which.
func accessImage(ctx context.Context, e *env, create bool) (imageAccess, error) {
	u, err := awakenImage(ctx, e, create)
	if err == nil {
		return localImage{u}, nil
	}
	if !errors.Is(err, store.ErrInUse) {
		return nil, err
	}
	addr, rerr := os.ReadFile(bridgeFile(e.image))
	if rerr != nil {
		return nil, err // held, but not by a server we can talk to
	}
	c, derr := zmqbridge.Dial(strings.TrimSpace(string(addr)), nil)
	if derr != nil {
		return nil, fmt.Errorf("%v; and its server could not be reached: %w", err, derr)
	}
	return remoteImage{c: c, pid: holderPID(err)}, nil
}

type localImage struct{ *uvm.UVM }

func (l localImage) Inspect(ctx context.Context, target string) (uvm.ObjectView, error) {
	var view uvm.ObjectView
	err := l.DB().View(ctx, func(tx *image.Tx) error {
		oid, err := uvm.Resolve(tx, target)
		if err != nil {
			return err
		}
		view, err = uvm.Inspect(tx, oid)
		return err
	})
	return view, err
}

// remoteImage talks to a running server. A call that gets no answer in
// a minute gives up; the server may still finish it. A call that may
// wait for a cognitive cycle waits as long as the server does, and a
// minute more — unless the server's process (pid, when known) exits
// meanwhile: its answer will never come.
type remoteImage struct {
	c   *zmqbridge.Client
	pid int
}

const remoteTimeout = time.Minute

func (r remoteImage) call(ctx context.Context, command string, args map[string]any) (any, error) {
	return r.callFor(ctx, remoteTimeout, command, args)
}

func (r remoteImage) callFor(ctx context.Context, timeout time.Duration, command string, args map[string]any) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx, stop := r.watchServer(ctx, command)
	defer stop()
	res, err := r.c.Call(ctx, command, args)
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, errServerGone) {
		return nil, cause
	}
	return res, err
}

// errServerGone is wrapped when the server exited before answering.
var errServerGone = errors.New("the server stopped before answering")

// serverCheck is how often a call looks whether its server still runs.
const serverCheck = 250 * time.Millisecond

// watchServer returns ctx, cancelled when the server's process exits;
// stop ends the watch and waits for it. A server whose process is not
// visible here (another PID namespace, say) is not watched.
func (r remoteImage) watchServer(ctx context.Context, command string) (context.Context, func()) {
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
				cancel(fmt.Errorf("%w %s: batos run (process %d) is gone; a cycle it was running resumes when batos run starts again", errServerGone, command, r.pid))
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

func (r remoteImage) EvalWith(ctx context.Context, code string, vars map[string]image.Value) (vm.Result, error) {
	res, err := r.callFor(ctx, uvm.DefaultLearnTimeout+remoteTimeout, "eval", map[string]any{"code": code})
	return resultOf(res), err
}

// SendWith sends over the bridge; how becomes the request's "learn" and
// "timeout_ms".
func (r remoteImage) SendWith(ctx context.Context, target, selector string, args []image.Value, kwargs []image.Slot, how uvm.Learn) (vm.Result, error) {
	kw := map[string]any{}
	for _, s := range kwargs {
		kw[s.Name] = s.Value
	}
	list := make([]any, len(args))
	for i, a := range args {
		list[i] = a
	}
	req := map[string]any{"target": target, "selector": selector, "args": list, "kwargs": kw}
	wait := uvm.DefaultLearnTimeout
	switch {
	case how.Handle:
		req["learn"], wait = "handle", 0
	case how.Timeout > 0:
		// The bridge takes at most MaxInt32 ms (24 days): a longer wait is
		// that long.
		req["learn"], req["timeout_ms"], wait = "wait", min(max(how.Timeout.Milliseconds(), 1), math.MaxInt32), how.Timeout
	}
	res, err := r.callFor(ctx, wait+remoteTimeout, "send", req)
	return resultOf(res), err
}

func (r remoteImage) Inspect(ctx context.Context, target string) (uvm.ObjectView, error) {
	res, err := r.call(ctx, "inspect", map[string]any{"target": target})
	if err != nil {
		return uvm.ObjectView{}, err
	}
	m, _ := res.(map[string]any)
	view := uvm.ObjectView{OID: str(m["oid"])}
	for _, p := range list(m["parents"]) {
		view.Parents = append(view.Parents, str(p))
	}
	slots := func(v any) []uvm.SlotView {
		var out []uvm.SlotView
		for _, x := range list(v) {
			s, _ := x.(map[string]any)
			val, _ := zmqbridge.ToImage(s["value"])
			out = append(out, uvm.SlotView{Name: str(s["name"]), Value: val, Repr: str(s["repr"]), Owner: str(s["owner"]), Method: str(s["method"])})
		}
		return out
	}
	view.Own, view.Inherited = slots(m["own"]), slots(m["inherited"])
	return view, nil
}

func (r remoteImage) Close() error { return r.c.Close() }

func resultOf(res any) vm.Result {
	m, _ := res.(map[string]any)
	v, _ := zmqbridge.ToImage(m["value"])
	return vm.Result{Value: v, Repr: str(m["repr"]), Output: str(m["output"])}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// learnLocally gives an image this process opened itself the mind that
// batos run recorded, reached only when a message nothing understands
// needs it (a command that learns nothing never touches the server).
// Cycles left unfinished stay for batos run to resume. Without a recorded
// server, messages nothing understands stay errors that say how to get a
// mind; with one that does not answer, the error says so.
func learnLocally(ctx context.Context, e *env, a imageAccess) {
	l, ok := a.(localImage)
	if !ok {
		return // the server learns for its clients
	}
	cfg, err := mind.LoadServerConfig(ctx, l.DB())
	if err != nil || cfg.URL == "" {
		return
	}
	cfg.APIKey = os.Getenv("BATOS_LLM_API_KEY")
	l.EnableMindOnDemand(func(ctx context.Context) (*mind.Server, error) { return mind.Connect(ctx, cfg) }, &mind.Options{CacheDir: cacheDir(e)})
}
