package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
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
	return remoteImage{c}, true
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
	return remoteImage{c}, nil
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
// minute more.
type remoteImage struct{ c *zmqbridge.Client }

const remoteTimeout = time.Minute

func (r remoteImage) call(ctx context.Context, command string, args map[string]any) (any, error) {
	return r.callFor(ctx, remoteTimeout, command, args)
}

func (r remoteImage) callFor(ctx context.Context, timeout time.Duration, command string, args map[string]any) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return r.c.Call(ctx, command, args)
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
		req["learn"], req["timeout_ms"], wait = "wait", max(how.Timeout.Milliseconds(), 1), how.Timeout
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
// batos run recorded, if that server answers, so sends and evals learn
// here too. Cycles left unfinished stay for batos run to resume. Without
// a recorded server, or with one that does not answer, messages nothing
// understands stay errors that say how to get a mind.
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
	server, err := mind.Connect(ctx, cfg)
	if err != nil {
		return
	}
	_ = l.EnableMindFor(server, &mind.Options{CacheDir: cacheDir(e)}, nil)
}
