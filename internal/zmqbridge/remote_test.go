package zmqbridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/protocol"
	"batos/internal/store"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
	"batos/internal/vm"
	"batos/internal/zmqbridge"
)

// cycleMind is echoMind, except that ROBIN writes a method whose selector
// starts "never" so that it fails its tests every time, and, asked for
// one starting "held", says so on asked and waits for the end of its
// context.
type cycleMind struct{ asked chan string }

func (m *cycleMind) respond(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	sel := ""
	if match := methodFor.FindStringSubmatch(req.Messages[len(req.Messages)-1].Content); match != nil {
		sel = match[1]
	}
	if llmtest.Persona(req) == "ROBIN" {
		switch {
		case strings.HasPrefix(sel, "never"):
			b, _ := json.Marshal(map[string]any{"source": "def " + sel + "(self, *args):\n    return 'not " + sel + "'\n", "tests": []any{}})
			return llmtest.Reply{Text: string(b)}, nil
		case strings.HasPrefix(sel, "held"):
			m.asked <- sel
			<-ctx.Done()
			return llmtest.Reply{}, ctx.Err()
		}
	}
	return echoMind(ctx, req)
}

// imageWithCycles makes an image holding three cycles and closes it:
// cycle 1 COMPLETE (genesis learned learned_once), cycle 2 FAILED
// (never_works failed its tests), cycle 3 unfinished (the image closed
// while ROBIN wrote held_back).
func imageWithCycles(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "img")
	m := &cycleMind{asked: make(chan string, 1)}
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: m.respond}}
	u, _ := uvmtest.OpenAt(t, path, &uvm.Options{Mind: server})
	local := command.NewLocal(u, "")
	if _, err := local.Send(ctx, command.SendRequest{Target: "genesis", Selector: "learned_once"}); err != nil {
		t.Fatalf("learn learned_once: %v", err)
	}
	if _, err := local.Send(ctx, command.SendRequest{Target: "genesis", Selector: "never_works"}); command.KindOf(err) != command.KindLearningFailed {
		t.Fatalf("learn never_works: %v, want learning_failed", err)
	}
	if _, err := local.Send(ctx, command.SendRequest{Target: "genesis", Selector: "held_back", Learn: command.Learn{Handle: true}}); err != nil {
		t.Fatalf("learn held_back: %v", err)
	}
	select {
	case <-m.asked:
	case <-time.After(30 * time.Second):
		t.Fatal("ROBIN was never asked for held_back")
	}
	if err := u.Close(); err != nil {
		t.Fatalf("close the image: %v", err)
	}
	return path
}

// recorder serves the service it wraps, keeping the last answer of the
// commands that change the image, so that a test compares a Remote's
// answer with the one the server's service gave to that very request.
type recorder struct {
	command.Service
	mu   sync.Mutex
	last any
}

func (r *recorder) keep(v any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = v
}

func (r *recorder) answered() any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *recorder) Undo(ctx context.Context, tid store.TID) (command.Undone, error) {
	u, err := r.Service.Undo(ctx, tid)
	r.keep(u)
	return u, err
}

func (r *recorder) Pack(ctx context.Context, req command.PackRequest) (command.Packed, error) {
	p, err := r.Service.Pack(ctx, req)
	r.keep(p)
	return p, err
}

func (r *recorder) SetMethod(ctx context.Context, req command.MethodRequest) (command.MethodChange, error) {
	c, err := r.Service.SetMethod(ctx, req)
	r.keep(c)
	return c, err
}

func (r *recorder) RevertMethod(ctx context.Context, target, name string) (command.MethodChange, error) {
	c, err := r.Service.RevertMethod(ctx, target, name)
	r.keep(c)
	return c, err
}

func (r *recorder) CancelCycle(ctx context.Context, id int64) (command.Cancelled, error) {
	c, err := r.Service.CancelCycle(ctx, id)
	r.keep(c)
	return c, err
}

// wireOf is an image value as a client of the bridge reads it back: the
// wire keeps a value's data, not its Go type (a method comes back as a
// map holding its source, a tuple as a list, a dict with its keys
// sorted), so values are compared in this form.
func wireOf(v image.Value) any {
	b, err := zmqbridge.EncodeReply(map[string]any{"v": v})
	if err != nil {
		return "unencodable: " + err.Error()
	}
	m, err := zmqbridge.DecodeRequest(b, zmqbridge.Limits{MaxBytes: len(b)})
	if err != nil {
		return "undecodable: " + err.Error()
	}
	return m["v"]
}

// compareOpts compare what went over the wire: image values in their wire
// form, times as instants, an empty map or slice as a missing one.
var compareOpts = cmp.Options{
	cmp.Comparer(func(a, b image.Value) bool { return cmp.Equal(wireOf(a), wireOf(b)) }),
	cmpopts.EquateEmpty(),
}

// carried is the part of a result the wire carries: an eval's globals
// stay with a local REPL.
func carried(r vm.Result) vm.Result {
	return vm.Result{Value: r.Value, Repr: r.Repr, Output: r.Output}
}

// TestRemoteRoundTrip: every command a Remote runs over the bridge, on a
// real image served by command.Local, answers what command.Local answers
// directly, errors included: same kind, message, cycle and path. The
// commands that change the image are compared with what the server's
// Local answered to that very request.
func TestRemoteRoundTrip(t *testing.T) {
	ctx := context.Background()
	u, _ := uvmtest.OpenAt(t, imageWithCycles(t), nil) // no mind
	local := command.NewLocal(u, "tester")
	served := &recorder{Service: local}
	_, addr, _ := startServer(t, served)
	c, err := zmqbridge.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	remote := protocol.NewRemote(c, os.Getpid())
	defer remote.Close()

	pair := `genesis.pair = method("def pair(self, a, b=None):\n    print('pairing', a)\n    return [a, b, self, (1, 'one'), {'k': b, 'n': {1: 'one'}}]")`
	if _, err := local.Eval(ctx, command.EvalRequest{Code: pair}); err != nil {
		t.Fatalf("install pair: %v", err)
	}

	t.Run("send and eval", func(t *testing.T) {
		sends := []command.SendRequest{
			{Target: "genesis", Selector: "pair", Args: []image.Value{image.Int(1)},
				Kwargs: []image.Slot{{Name: "b", Value: image.NewList(image.String("x"), image.Float(2.5), image.None, image.Bool(true))}}},
			{Target: "genesis", Selector: "learned_once"},
			{Target: "genesis", Selector: "describe", Learn: command.Learn{Handle: true}},
			{Target: "genesis", Selector: "describe", Learn: command.Learn{Timeout: 5 * time.Second}},
		}
		for _, req := range sends {
			got, err := remote.Send(ctx, req)
			if err != nil {
				t.Errorf("remote send %s: %v", req.Selector, err)
				continue
			}
			want, err := local.Send(ctx, req)
			if err != nil {
				t.Fatalf("local send %s: %v", req.Selector, err)
			}
			if diff := cmp.Diff(carried(got), carried(want), compareOpts); diff != "" {
				t.Errorf("send %s (-remote +local):\n%s", req.Selector, diff)
			}
		}
		for _, code := range []string{
			`[1, 2.5, "x", None, True, genesis, (1, "t"), {"a": [1]}, {2: "two"}]`,
			`print("hi") or 42`,
			`genesis.pair`,
			`lambda: 1`,
		} {
			got, err := remote.Eval(ctx, command.EvalRequest{Code: code})
			if err != nil {
				t.Errorf("remote eval %s: %v", code, err)
				continue
			}
			want, err := local.Eval(ctx, command.EvalRequest{Code: code})
			if err != nil {
				t.Fatalf("local eval %s: %v", code, err)
			}
			if diff := cmp.Diff(carried(got), carried(want), compareOpts); diff != "" {
				t.Errorf("eval %s (-remote +local):\n%s", code, diff)
			}
		}
	})

	// reads compares every command that only reads.
	reads := func(t *testing.T) {
		t.Helper()
		view, err := local.Inspect(ctx, "genesis")
		if err != nil {
			t.Fatal(err)
		}
		genesisOID := view.OID.String()
		for _, target := range []string{"genesis", "root", genesisOID} {
			got, err := remote.Inspect(ctx, target)
			if err != nil {
				t.Errorf("remote inspect %s: %v", target, err)
				continue
			}
			want, _ := local.Inspect(ctx, target)
			if diff := cmp.Diff(got, want, compareOpts); diff != "" {
				t.Errorf("inspect %s (-remote +local):\n%s", target, diff)
			}
		}
		for _, limit := range []int{0, 2} {
			got, err := remote.History(ctx, "genesis", limit)
			if err != nil {
				t.Errorf("remote history: %v", err)
				continue
			}
			want, _ := local.History(ctx, "genesis", limit)
			// A history entry carries no oids or extension
			// (docs/protocol.md): log has them.
			for i := range want {
				want[i].Tx.OIDs, want[i].Tx.Extension = nil, nil
			}
			if diff := cmp.Diff(got, want, compareOpts); diff != "" || len(want) == 0 {
				t.Errorf("history, limit %d (-remote +local):\n%s", limit, diff)
			}
		}
		all, err := local.Log(ctx, store.LogQuery{})
		if err != nil || len(all) < 4 {
			t.Fatalf("local log: %d transactions, %v", len(all), err)
		}
		for _, q := range []store.LogQuery{{}, {Limit: 3}, {Before: all[2].TID}, {Before: all[1].TID, Limit: 1}} {
			got, err := remote.Log(ctx, q)
			if err != nil {
				t.Errorf("remote log %+v: %v", q, err)
				continue
			}
			want, _ := local.Log(ctx, q)
			if diff := cmp.Diff(got, want, compareOpts); diff != "" {
				t.Errorf("log %+v (-remote +local):\n%s", q, diff)
			}
		}
		for _, limit := range []int{0, 2} {
			got, err := remote.ListCycles(ctx, limit)
			if err != nil {
				t.Errorf("remote cycle list: %v", err)
				continue
			}
			want, _ := local.ListCycles(ctx, limit)
			if diff := cmp.Diff(got, want, compareOpts); diff != "" || len(want) == 0 {
				t.Errorf("cycle list, limit %d (-remote +local):\n%s", limit, diff)
			}
		}
		for id := int64(1); id <= 3; id++ {
			got, err := remote.ShowCycle(ctx, id)
			if err != nil {
				t.Errorf("remote cycle show %d: %v", id, err)
				continue
			}
			want, _ := local.ShowCycle(ctx, id)
			if diff := cmp.Diff(got, want, compareOpts); diff != "" {
				t.Errorf("cycle show %d (-remote +local):\n%s", id, diff)
			}
		}
		if got, err := remote.Stats(ctx); err != nil {
			t.Errorf("remote stats: %v", err)
		} else if want, _ := local.Stats(ctx); got != want || got.Objects == 0 {
			t.Errorf("stats: remote %+v, local %+v", got, want)
		}
		if got, err := remote.Verify(ctx); err != nil {
			t.Errorf("remote verify: %v", err)
		} else if want, _ := local.Verify(ctx); !cmp.Equal(got, want, compareOpts) || !want.OK() || want.Objects == 0 {
			t.Errorf("verify (-remote +local):\n%s", cmp.Diff(got, want, compareOpts))
		}
	}
	t.Run("reads", reads)

	t.Run("errors", func(t *testing.T) {
		cases := []struct {
			name string
			kind command.Kind
			call func(svc command.Service) error
		}{
			{"send to nobody", command.KindNotFound, func(svc command.Service) error {
				_, err := svc.Send(ctx, command.SendRequest{Target: "nobody", Selector: "x"})
				return err
			}},
			{"send not understood", command.KindNoMind, func(svc command.Service) error {
				_, err := svc.Send(ctx, command.SendRequest{Target: "genesis", Selector: "nosuch"})
				return err
			}},
			{"send not understood, handle", command.KindNoMind, func(svc command.Service) error {
				_, err := svc.Send(ctx, command.SendRequest{Target: "genesis", Selector: "nosuch", Learn: command.Learn{Handle: true}})
				return err
			}},
			{"send without selector", command.KindBadRequest, func(svc command.Service) error {
				_, err := svc.Send(ctx, command.SendRequest{Target: "genesis"})
				return err
			}},
			{"eval syntax error", "", func(svc command.Service) error {
				_, err := svc.Eval(ctx, command.EvalRequest{Code: "x = ["})
				return err
			}},
			{"eval failing", command.KindMethodError, func(svc command.Service) error {
				_, err := svc.Eval(ctx, command.EvalRequest{Code: "1 // 0"})
				return err
			}},
			{"inspect nobody", command.KindNotFound, func(svc command.Service) error {
				_, err := svc.Inspect(ctx, "nobody")
				return err
			}},
			{"history of nobody", command.KindNotFound, func(svc command.Service) error {
				_, err := svc.History(ctx, "nobody", 0)
				return err
			}},
			{"undo nothing", command.KindNotFound, func(svc command.Service) error {
				_, err := svc.Undo(ctx, store.TID(1))
				return err
			}},
			{"pack nothing", command.KindBadRequest, func(svc command.Service) error {
				_, err := svc.Pack(ctx, command.PackRequest{})
				return err
			}},
			{"set a method that is none", command.KindBadRequest, func(svc command.Service) error {
				_, err := svc.SetMethod(ctx, command.MethodRequest{Target: "genesis", Name: "twice", Source: "x = 1"})
				return err
			}},
			{"set a method on nobody", command.KindNotFound, func(svc command.Service) error {
				_, err := svc.SetMethod(ctx, command.MethodRequest{Target: "nobody", Name: "twice", Source: "def twice(self):\n    return 2\n"})
				return err
			}},
			{"revert what no cycle installed", command.KindBadRequest, func(svc command.Service) error {
				_, err := svc.RevertMethod(ctx, "genesis", "pair")
				return err
			}},
			{"revert on nobody", command.KindNotFound, func(svc command.Service) error {
				_, err := svc.RevertMethod(ctx, "nobody", "pair")
				return err
			}},
			{"initiate without a mind", command.KindNoMind, func(svc command.Service) error {
				_, err := svc.InitiateCycle(ctx, "genesis", "learn to count")
				return err
			}},
			{"initiate for nobody", command.KindNotFound, func(svc command.Service) error {
				_, err := svc.InitiateCycle(ctx, "nobody", "learn to count")
				return err
			}},
			{"show no cycle", command.KindNotFound, func(svc command.Service) error {
				_, err := svc.ShowCycle(ctx, 99)
				return err
			}},
			{"retry a failed cycle without a mind", command.KindNoMind, func(svc command.Service) error {
				_, err := svc.RetryCycle(ctx, 2)
				return err
			}},
			{"retry a complete cycle", command.KindBadRequest, func(svc command.Service) error {
				_, err := svc.RetryCycle(ctx, 1)
				return err
			}},
			{"retry no cycle", command.KindNotFound, func(svc command.Service) error {
				_, err := svc.RetryCycle(ctx, 99)
				return err
			}},
			{"cancel a complete cycle", command.KindBadRequest, func(svc command.Service) error {
				_, err := svc.CancelCycle(ctx, 1)
				return err
			}},
			{"cancel no cycle", command.KindNotFound, func(svc command.Service) error {
				_, err := svc.CancelCycle(ctx, 99)
				return err
			}},
		}
		// The bridge refuses these requests itself, in words of its own.
		bridgeRefuses := map[string]bool{"pack nothing": true}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				localErr := tc.call(local)
				if localErr == nil || (tc.kind != "" && command.KindOf(localErr) != tc.kind) {
					t.Fatalf("local: %v (kind %s), want kind %s", localErr, command.KindOf(localErr), tc.kind)
				}
				remoteErr := tc.call(remote)
				var re *command.Error
				if !errors.As(remoteErr, &re) {
					t.Fatalf("remote: %#v, want a *command.Error", remoteErr)
				}
				line, col := command.PositionOf(localErr)
				want := command.Error{Kind: command.KindOf(localErr), Message: command.Message(localErr), Path: command.PathOf(localErr), Cycle: command.CycleOf(localErr), Line: line, Col: col}
				if bridgeRefuses[tc.name] && strings.HasPrefix(re.Message, command.ErrBadRequest.Error()+": ") {
					want.Message = re.Message
				}
				if diff := cmp.Diff(*re, want); diff != "" {
					t.Errorf("(-remote +local):\n%s", diff)
				}
				if command.KindOf(remoteErr) != want.Kind {
					t.Errorf("remote error classified %s, want %s", command.KindOf(remoteErr), want.Kind)
				}
			})
		}
		_, err := remote.Send(ctx, command.SendRequest{Target: "genesis", Selector: ""})
		if re := (*command.Error)(nil); !errors.As(err, &re) || re.Kind != command.KindBadRequest || !errors.Is(err, command.ErrBadRequest) {
			t.Errorf("bad request: %#v, want a *command.Error of kind bad_request matching command.ErrBadRequest", err)
		}
	})

	t.Run("undo", func(t *testing.T) {
		if _, err := local.Eval(ctx, command.EvalRequest{Code: "genesis.scratch = 1"}); err != nil {
			t.Fatal(err)
		}
		last, err := local.Log(ctx, store.LogQuery{Limit: 1})
		if err != nil || len(last) != 1 {
			t.Fatalf("log: %v %v", last, err)
		}
		got, err := remote.Undo(ctx, last[0].TID)
		if err != nil {
			t.Fatalf("remote undo: %v", err)
		}
		want := served.answered()
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("undo (-remote +local):\n%s", diff)
		}
		if got.Undone != last[0].TID || got.TID <= got.Undone || got.Objects != len(last[0].OIDs) {
			t.Errorf("undo of %s answered %+v", last[0].TID, got)
		}
	})

	t.Run("methods", func(t *testing.T) {
		set := command.MethodRequest{Target: "genesis", Name: "twice", Source: "def twice(self, x):\n    return 2 * x\n", From: "twice.star"}
		got, err := remote.SetMethod(ctx, set)
		if err != nil {
			t.Fatalf("remote method set: %v", err)
		}
		if diff := cmp.Diff(got, served.answered()); diff != "" || got.TID == 0 {
			t.Errorf("method set %+v (-remote +local):\n%s", got, diff)
		}
		if res, err := remote.Send(ctx, command.SendRequest{Target: "genesis", Selector: "twice", Args: []image.Value{image.Int(21)}}); err != nil || res.Repr != "42" {
			t.Errorf("the method set answers %q, %v; want 42", res.Repr, err)
		}
		got, err = remote.RevertMethod(ctx, "genesis", "learned_once")
		if err != nil {
			t.Fatalf("remote method revert: %v", err)
		}
		if diff := cmp.Diff(got, served.answered()); diff != "" || got.TID == 0 || !strings.HasPrefix(got.Restored, "nothing") {
			t.Errorf("method revert %+v (-remote +local):\n%s", got, diff)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		got, err := remote.CancelCycle(ctx, 3)
		if err != nil {
			t.Fatalf("remote cancel: %v", err)
		}
		want := served.answered()
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("cancel (-remote +local):\n%s", diff)
		}
		if got.Cycle != 3 || got.State != "FAILED" || got.Was == "FAILED" || got.Was == "COMPLETE" {
			t.Errorf("cancel of the unfinished cycle 3 answered %+v", got)
		}
	})

	t.Run("pack", func(t *testing.T) {
		got, err := remote.Pack(ctx, command.PackRequest{Before: time.Now(), Compact: true})
		if err != nil {
			t.Fatalf("remote pack: %v", err)
		}
		want, _ := served.answered().(command.Packed)
		want.Took = want.Took.Truncate(time.Millisecond) // the wire carries ms
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("pack (-remote +local):\n%s", diff)
		}
		if got.Pack.Revisions == 0 || got.Compact.BytesBefore == 0 {
			t.Errorf("pack answered %+v, want revisions dropped and the file's size", got)
		}
		got, err = remote.Pack(ctx, command.PackRequest{Compact: true})
		if err != nil {
			t.Fatalf("remote compaction: %v", err)
		}
		want, _ = served.answered().(command.Packed)
		want.Took = want.Took.Truncate(time.Millisecond)
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("compaction (-remote +local):\n%s", diff)
		}
	})

	t.Run("reads after", reads)
}
