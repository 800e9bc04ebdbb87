package zmqbridge_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	zmq "github.com/pebbe/zmq4"
	"github.com/tinylib/msgp/msgp"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
	"batos/internal/zmqbridge"
)

// fakeService answers the bridge's commands from memory, so these tests
// exercise the bridge alone; command.Local is tested with the image. A
// command it does not implement calls the nil Service it embeds and
// panics, which the server answers as an internal error.
type fakeService struct {
	command.Service
	slow chan struct{}
}

func (f *fakeService) Send(ctx context.Context, req command.SendRequest) (vm.Result, error) {
	switch req.Selector {
	case "slow":
		<-f.slow
		return vm.Result{Value: image.String("slow done"), Repr: `"slow done"`}, nil
	case "missing":
		return vm.Result{}, &vm.NotUnderstoodError{Receiver: req.Target, Selector: req.Selector}
	}
	return vm.Result{Value: image.NewList(req.Args...), Repr: req.Selector}, nil
}

func (f *fakeService) Eval(ctx context.Context, req command.EvalRequest) (vm.Result, error) {
	return vm.Result{Value: image.String(req.Code), Repr: req.Code}, nil
}

func (f *fakeService) Inspect(ctx context.Context, target string) (command.ObjectView, error) {
	return command.ObjectView{OID: 1, Name: target}, nil
}

func (f *fakeService) History(ctx context.Context, target string, limit int) ([]command.Revision, error) {
	return nil, nil
}

func (f *fakeService) Log(ctx context.Context, q store.LogQuery) ([]store.TxInfo, error) {
	return nil, nil
}

func (f *fakeService) Undo(ctx context.Context, tid store.TID) (command.Undone, error) {
	return command.Undone{Undone: tid, Objects: -1}, nil
}

func (f *fakeService) InitiateCycle(ctx context.Context, target, brief string) (command.CycleHandle, error) {
	return command.CycleHandle{}, fmt.Errorf("cannot start a cycle for %s: %w", target, vm.ErrNoMind)
}

func startServer(t *testing.T, svc command.Service) (*zmqbridge.Server, string, string) {
	t.Helper()
	s, err := zmqbridge.Listen(svc, &zmqbridge.Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Serve(); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
	req, ev := s.Endpoints()
	return s, req, ev
}

func dealer(t *testing.T, addr string) *zmq.Socket {
	t.Helper()
	d, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		t.Fatal(err)
	}
	d.SetLinger(0)
	d.SetRcvtimeo(5 * time.Second)
	if err := d.Connect(addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func encode(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := msgp.AppendIntf(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// roundTrip sends raw frames and decodes the one-frame reply.
func roundTrip(t *testing.T, d *zmq.Socket, frames ...[]byte) map[string]any {
	t.Helper()
	parts := make([]any, len(frames))
	for i, f := range frames {
		parts[i] = f
	}
	if _, err := d.SendMessage(parts...); err != nil {
		t.Fatal(err)
	}
	reply, err := d.RecvMessageBytes(0)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	m, err := zmqbridge.DecodeRequest(reply[len(reply)-1], zmqbridge.DefaultLimits)
	if err != nil {
		t.Fatalf("undecodable reply: %v", err)
	}
	return m
}

func errKind(m map[string]any) command.Kind {
	e, _ := m["error"].(map[string]any)
	k, _ := e["kind"].(string)
	return command.Kind(k)
}

func TestRequestsAndReplies(t *testing.T) {
	_, addr, _ := startServer(t, &fakeService{})
	d := dealer(t, addr)
	r := roundTrip(t, d, encode(t, map[string]any{"id": 1, "command": "ping"}))
	if r["ok"] != true || r["result"] != "pong" || r["id"] != int64(1) {
		t.Errorf("ping: %v", r)
	}
	r = roundTrip(t, d, encode(t, map[string]any{"id": "a", "command": "send", "target": "genesis", "selector": "echo", "args": []any{int64(1), "two"}}))
	res, _ := r["result"].(map[string]any)
	if r["ok"] != true || r["id"] != "a" || len(res["value"].([]any)) != 2 {
		t.Errorf("send: %v", r)
	}
	r = roundTrip(t, d, encode(t, map[string]any{"id": 2, "command": "send", "target": "genesis", "selector": "missing"}))
	if errKind(r) != command.KindNoMind {
		t.Errorf("not understood: %v", r)
	}
	r = roundTrip(t, d, encode(t, map[string]any{"id": 3, "command": "initiate_cognitive_cycle", "target_oid": "oid:3", "mission_brief": "x"}))
	if errKind(r) != command.KindNoMind {
		t.Errorf("initiate_cognitive_cycle: %v", r)
	}
}

// TestHostileClients: every malformed message gets an error reply (or is
// dropped), and the server keeps answering others.
func TestHostileClients(t *testing.T) {
	_, addr, _ := startServer(t, &fakeService{})
	good := dealer(t, addr)
	valid := encode(t, map[string]any{"id": 1, "command": "ping"})
	cases := []struct {
		name   string
		frames [][]byte
		kind   command.Kind
	}{
		{"non-msgpack bytes", [][]byte{{0xc1, 0xc1}}, command.KindBadRequest},
		{"truncated msgpack", [][]byte{valid[:len(valid)-2]}, command.KindBadRequest},
		{"array instead of map", [][]byte{{0x91, 0x01}}, command.KindBadRequest},
		{"unknown command", [][]byte{encode(t, map[string]any{"id": 1, "command": "format_disk"})}, command.KindUnknownCommand},
		{"wrong argument type", [][]byte{encode(t, map[string]any{"id": 1, "command": "send", "target": int64(3), "selector": []any{}})}, command.KindBadRequest},
		{"4 GiB array header", [][]byte{{0xdd, 0xff, 0xff, 0xff, 0xff}}, command.KindBadRequest},
		{"deep nesting", [][]byte{append([]byte{0x81, 0xa1, 'x'}, append([]byte(strings.Repeat("\x91", 40)), 0xc0)...)}, command.KindBadRequest},
		{"two payload frames", [][]byte{valid, valid}, command.KindBadRequest},
		{"empty frame", [][]byte{{}}, command.KindBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := dealer(t, addr)
			r := roundTrip(t, d, tc.frames...)
			if r["ok"] != false || errKind(r) != tc.kind {
				t.Errorf("got %v, want error kind %s", r, tc.kind)
			}
			if ok := roundTrip(t, good, valid); ok["result"] != "pong" {
				t.Errorf("server stopped answering others: %v", ok)
			}
		})
	}
	t.Run("message over the size limit drops the peer, not the server", func(t *testing.T) {
		d := dealer(t, addr)
		d.SetRcvtimeo(300 * time.Millisecond)
		d.SendBytes(make([]byte, 2<<20), 0)
		if _, err := d.RecvBytes(0); err == nil {
			t.Errorf("an oversized message was answered")
		}
		if ok := roundTrip(t, good, valid); ok["result"] != "pong" {
			t.Errorf("server stopped answering others: %v", ok)
		}
	})
}

// TestStalledClientsDelayNoOne: a client that never reads its replies, a
// slow request and an idle TCP connection that never completes the ZMTP
// handshake do not delay another client.
func TestStalledClientsDelayNoOne(t *testing.T) {
	fs := &fakeService{slow: make(chan struct{})}
	defer close(fs.slow)
	_, addr, _ := startServer(t, fs)
	host := strings.TrimPrefix(addr, "tcp://")
	raw, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	deaf := dealer(t, addr)
	deaf.SetSndhwm(100000)
	for range 2000 {
		deaf.SendBytes(encode(t, map[string]any{"id": 1, "command": "ping"}), zmq.DONTWAIT)
	}
	slow := dealer(t, addr)
	slow.SendBytes(encode(t, map[string]any{"id": 1, "command": "send", "target": "x", "selector": "slow"}), 0)
	good := dealer(t, addr)
	start := time.Now()
	for i := range 50 {
		if r := roundTrip(t, good, encode(t, map[string]any{"id": int64(i), "command": "ping"})); r["result"] != "pong" {
			t.Fatalf("ping %d: %v", i, r)
		}
	}
	t.Logf("50 pings beside a deaf client, a slow request and a silent TCP connection: %v", time.Since(start))
}

func TestRefusesNonLoopbackWithoutCurve(t *testing.T) {
	_, err := zmqbridge.Listen(&fakeService{}, &zmqbridge.Options{RequestAddr: "tcp://0.0.0.0:*", EventAddr: "tcp://127.0.0.1:*"})
	if !errors.Is(err, zmqbridge.ErrInsecure) {
		t.Fatalf("got %v, want ErrInsecure", err)
	}
}

func TestEventsArePublished(t *testing.T) {
	s, _, evAddr := startServer(t, &fakeService{})
	sub, err := zmq.NewSocket(zmq.SUB)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	sub.SetRcvtimeo(5 * time.Second)
	sub.Connect(evAddr)
	sub.SetSubscribe("commit.")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.Publish("commit.tx", map[string]any{"tid": "0001"})
		sub.SetRcvtimeo(100 * time.Millisecond)
		msg, err := sub.RecvMessageBytes(0)
		if err == nil {
			if string(msg[0]) != "commit.tx" {
				t.Errorf("topic %q", msg[0])
			}
			return
		}
	}
	t.Fatal("no event received")
}

// oddService is fakeService whose Inspect answers odd image values (in
// a slot of the view), panics on request, or blocks until released
// (recording its context), and whose ShowCycle answers a cycle no JSON
// can carry.
type oddService struct {
	fakeService
	mu      sync.Mutex
	ctxs    []context.Context
	release chan struct{}
}

// oddValue is the value of the odd slot named name, and whether there is
// one.
func oddValue(name string) (image.Value, bool) {
	switch name {
	case "cycle":
		d := &image.Dict{}
		d.Set(image.String("self"), d)
		return d, true
	case "cyclelist":
		l := image.NewList(image.None)
		l.Elems[0] = l
		return l, true
	case "nilptr":
		return (*image.Dict)(nil), true
	case "nilmethod":
		return (*image.Method)(nil), true
	case "nillist":
		return (*image.List)(nil), true
	case "ref0":
		return image.Ref(0), true
	case "bigstr":
		return image.String(strings.Repeat("x", 4<<20)), true
	}
	return nil, false
}

func (o *oddService) Inspect(ctx context.Context, target string) (command.ObjectView, error) {
	if v, ok := oddValue(target); ok {
		return command.ObjectView{OID: 1, Own: []command.SlotView{{Name: target, Value: v, Repr: "?", Owner: 1}}}, nil
	}
	switch target {
	case "panic":
		panic("service exploded")
	case "nilerr":
		var e *vm.Error
		return command.ObjectView{}, e // a typed nil error: err != nil, Error() may panic
	case "block":
		o.mu.Lock()
		o.ctxs = append(o.ctxs, ctx)
		o.mu.Unlock()
		select {
		case <-o.release:
		case <-ctx.Done():
		}
		return command.ObjectView{OID: 1, Name: "released"}, nil
	}
	return o.fakeService.Inspect(ctx, target)
}

func (o *oddService) Eval(ctx context.Context, req command.EvalRequest) (vm.Result, error) {
	switch req.Code {
	case "panic":
		panic("eval exploded")
	case "ref0":
		return vm.Result{Value: image.Ref(0), Repr: "?"}, nil
	}
	return o.fakeService.Eval(ctx, req)
}

// ShowCycle answers a cycle whose model time is NaN, which JSON, and so
// the wire form of a cycle, cannot carry.
func (o *oddService) ShowCycle(ctx context.Context, id int64) (*command.CycleView, error) {
	return &command.CycleView{ID: id, State: "COMPLETE", ModelMS: math.NaN()}, nil
}

// TestHostileUnencodableResults: a result that cannot be encoded gets an
// internal error reply with the id, never silence. Results are typed, so
// only what they hold can be odd: image values (a value containing
// itself, a nil method, a reference to OID 0) and a cycle's numbers.
func TestHostileUnencodableResults(t *testing.T) {
	_, addr, _ := startServer(t, &oddService{})
	d := dealer(t, addr)
	for _, target := range []string{"cycle", "cyclelist", "nilmethod", "ref0"} {
		t.Run(target, func(t *testing.T) {
			r := req(t, d, map[string]any{"id": target, "command": "inspect", "target": target})
			if r["ok"] != false || errKind(r) != command.KindInternal || r["id"] != target {
				t.Errorf("got %v, want an internal error with the id", r)
			}
		})
	}
	t.Run("cycle NaN", func(t *testing.T) {
		r := req(t, d, map[string]any{"id": "nan", "command": "cycle_show", "cycle": int64(3)})
		if r["ok"] != false || errKind(r) != command.KindInternal || r["id"] != "nan" {
			t.Errorf("got %v, want an internal error with the id", r)
		}
	})
	for _, target := range []string{"nilptr", "nillist"} {
		t.Run(target, func(t *testing.T) {
			r := req(t, d, map[string]any{"id": target, "command": "inspect", "target": target})
			if r["id"] != target {
				t.Errorf("got %v", r)
			}
		})
	}
	t.Run("eval ref0", func(t *testing.T) {
		r := req(t, d, map[string]any{"id": 1, "command": "eval", "code": "ref0"})
		if r["ok"] != false || errKind(r) != command.KindInternal {
			t.Errorf("got %v", r)
		}
	})
	t.Run("reply over the client's max size", func(t *testing.T) {
		// A 4 MiB reply: the server sends it; the decoder of the test
		// client has a 1 MiB limit, so read the raw frame.
		d.SendBytes(encode(t, map[string]any{"id": 1, "command": "inspect", "target": "bigstr"}), 0)
		b, err := d.RecvBytes(0)
		if err != nil || len(b) < 4<<20 {
			t.Errorf("big reply: %d bytes, %v", len(b), err)
		}
	})
	if r := req(t, d, map[string]any{"id": 2, "command": "ping"}); r["result"] != "pong" {
		t.Errorf("server stopped answering: %v", r)
	}
}

// TestHostileServicePanics: a panic in a handler must become an internal
// error reply; the server must stay up. Runs in a child process, since a
// panic in a server goroutine kills the whole test binary.
func TestHostileServicePanics(t *testing.T) {
	if which := os.Getenv("ZMQBRIDGE_HOSTILE_CHILD"); which != "" {
		_, addr, _ := startServer(t, &oddService{})
		d := dealer(t, addr)
		d.SetRcvtimeo(2 * time.Second)
		var r map[string]any
		switch which {
		case "inspect":
			r = req(t, d, map[string]any{"id": 1, "command": "inspect", "target": "panic"})
		case "eval":
			r = req(t, d, map[string]any{"id": 1, "command": "eval", "code": "panic"})
		case "nilerr":
			r = req(t, d, map[string]any{"id": 1, "command": "inspect", "target": "nilerr"})
		}
		if r["ok"] != false || errKind(r) != command.KindInternal {
			t.Errorf("got %v, want an internal error", r)
		}
		if r := req(t, d, map[string]any{"id": 2, "command": "ping"}); r["result"] != "pong" {
			t.Errorf("server stopped answering: %v", r)
		}
		return
	}
	for _, which := range []string{"inspect", "eval", "nilerr"} {
		t.Run(which, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHostileServicePanics$", "-test.count=1")
			cmd.Env = append(os.Environ(), "ZMQBRIDGE_HOSTILE_CHILD="+which)
			out, err := cmd.CombinedOutput()
			if err != nil {
				first := string(out)
				if i := strings.Index(first, "\ngoroutine "); i > 0 {
					first = first[:i]
				}
				t.Errorf("a panicking %s handler killed the server process: %v\n%s", which, err, first)
			}
		})
	}
}

// TestHostileConcurrentClients: many clients, many requests each, every
// reply to its own sender with its own id.
func TestHostileConcurrentClients(t *testing.T) {
	_, addr, _ := startServer(t, &fakeService{})
	const clients, each = 40, 25
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		d := dealer(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("%d/%d", c, i)
				b, _ := msgp.AppendIntf(nil, map[string]any{"id": id, "command": "send", "target": "g", "selector": "echo", "args": []any{id}})
				if _, err := d.SendBytes(b, 0); err != nil {
					errs <- err
					return
				}
			}
			seen := map[string]bool{}
			for range each {
				f, err := d.RecvBytes(0)
				if err != nil {
					errs <- fmt.Errorf("client %d: %v after %d replies", c, err, len(seen))
					return
				}
				m, err := zmqbridge.DecodeRequest(f, zmqbridge.DefaultLimits)
				if err != nil {
					errs <- err
					return
				}
				id, _ := m["id"].(string)
				if !strings.HasPrefix(id, fmt.Sprintf("%d/", c)) || seen[id] {
					errs <- fmt.Errorf("client %d got reply %v", c, m)
					return
				}
				seen[id] = true
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestHostileDisconnectBeforeReply: clients that send slow requests and
// vanish do not disturb the server or its shutdown.
func TestHostileDisconnectBeforeReply(t *testing.T) {
	fs := &fakeService{slow: make(chan struct{})}
	_, addr, _ := startServer(t, fs)
	for range 20 {
		d, _ := zmq.NewSocket(zmq.DEALER)
		d.SetLinger(0)
		d.Connect(addr)
		d.SendBytes(encode(t, map[string]any{"id": 1, "command": "send", "target": "x", "selector": "slow"}), 0)
		d.SendBytes(encode(t, map[string]any{"id": 2, "command": "ping"}), 0)
		time.Sleep(5 * time.Millisecond)
		d.Close()
	}
	close(fs.slow)
	good := dealer(t, addr)
	if r := req(t, good, map[string]any{"id": 1, "command": "ping"}); r["result"] != "pong" {
		t.Errorf("got %v", r)
	}
}

// TestHostileShutdownUnderLoad: during Shutdown with a request in flight,
// new requests get shutting_down; the request in flight gets its answer;
// Shutdown returns once it has.
func TestHostileShutdownUnderLoad(t *testing.T) {
	odd := &oddService{release: make(chan struct{})}
	s, err := zmqbridge.Listen(odd, &zmqbridge.Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*"})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	addr, _ := s.Endpoints()
	blocked := dealer(t, addr)
	blocked.SendBytes(encode(t, map[string]any{"id": "b", "command": "inspect", "target": "block"}), 0)
	late := dealer(t, addr)
	if r := req(t, late, map[string]any{"id": 0, "command": "ping"}); r["result"] != "pong" {
		t.Fatalf("got %v", r)
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	time.Sleep(50 * time.Millisecond)
	for i := range 20 {
		r := req(t, late, map[string]any{"id": int64(i), "command": "ping"})
		if errKind(r) != command.KindShuttingDown {
			t.Errorf("request during shutdown: %v", r)
		}
	}
	close(odd.release)
	blocked.SetRcvtimeo(2 * time.Second)
	b, err := blocked.RecvBytes(0)
	if err != nil {
		t.Errorf("request in flight got no answer: %v", err)
	} else if m, _ := zmqbridge.DecodeRequest(b, zmqbridge.DefaultLimits); !cmp.Equal(m["result"], map[string]any{"oid": image.Ref(1), "name": "released", "parents": []any{}, "own": []any{}, "inherited": []any{}, "names": map[string]any{}}) {
		t.Errorf("request in flight: %v", m)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Shutdown hangs")
	}
	select {
	case <-served:
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return")
	}
	// After Serve returned: Publish, Close and Shutdown neither block nor panic.
	done := make(chan struct{})
	go func() {
		for range 5000 {
			s.Publish("commit.x", map[string]any{"n": 1})
		}
		s.Close()
		s.Shutdown(context.Background())
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Publish/Close after stop blocks")
	}
}

// TestHostileShutdownStuckService: Shutdown returns when its ctx ends,
// even with a service request that never finishes, and that request's
// context is then cancelled, so the service can stop the work before the
// image it uses is closed.
func TestHostileShutdownStuckService(t *testing.T) {
	odd := &oddService{release: make(chan struct{})}
	defer close(odd.release)
	s, err := zmqbridge.Listen(odd, &zmqbridge.Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*"})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	addr, _ := s.Endpoints()
	d := dealer(t, addr)
	d.SendBytes(encode(t, map[string]any{"id": "b", "command": "inspect", "target": "block"}), 0)
	deadline := time.Now().Add(2 * time.Second)
	for {
		odd.mu.Lock()
		n := len(odd.ctxs)
		odd.mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()
	select {
	case err := <-shut:
		if err == nil {
			t.Errorf("Shutdown with a stuck request returned nil")
		}
		if el := time.Since(start); el > 1500*time.Millisecond {
			t.Errorf("Shutdown took %v after a 300ms ctx", el)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Shutdown hangs on a stuck service request")
	}
	select {
	case <-served:
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return")
	}
	odd.mu.Lock()
	hctx := odd.ctxs[0]
	odd.mu.Unlock()
	select {
	case <-hctx.Done():
	case <-time.After(500 * time.Millisecond):
		t.Errorf("after Shutdown gave up and Serve returned, the stuck request's context is still live: the service keeps running against an image about to be closed")
	}
}

// TestHostilePublish: Publish without subscribers, with unencodable
// payloads, before Serve and after Close never blocks or panics.
func TestHostilePublish(t *testing.T) {
	s, err := zmqbridge.Listen(&fakeService{}, &zmqbridge.Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3000 { // before Serve: buffer fills, then drops
			s.Publish("commit.x", map[string]any{"n": 1})
		}
		s.Publish("commit.bad", map[string]any{"c": make(chan int)})
		s.Publish("", nil)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Publish blocks before Serve")
	}
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	start := time.Now()
	for range 20000 {
		s.Publish("commit.x", map[string]any{"n": 1})
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("20000 Publishes with no subscriber took %v", el)
	}
	s.Close()
	<-served
	for range 3000 {
		s.Publish("commit.x", map[string]any{"n": 1})
	}
}

// TestHostileCloseWithoutServe: Close on a server that never served must
// release its sockets, so the address can be bound again.
func TestHostileCloseWithoutServe(t *testing.T) {
	s, err := zmqbridge.Listen(&fakeService{}, &zmqbridge.Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*"})
	if err != nil {
		t.Fatal(err)
	}
	r, e := s.Endpoints()
	s.Close()
	// libzmq releases a closed socket's port on its own thread, a moment
	// later: allow it a second.
	var s2 *zmqbridge.Server
	for deadline := time.Now().Add(time.Second); ; {
		if s2, err = zmqbridge.Listen(&fakeService{}, &zmqbridge.Options{RequestAddr: r, EventAddr: e}); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("Close without Serve left the sockets bound: %v", err)
		return
	}
	s2.Close()
}

// TestHostileREQClients: REQ sockets (empty delimiter) get their replies,
// for good requests and malformed ones.
func TestHostileREQClients(t *testing.T) {
	_, addr, _ := startServer(t, &fakeService{})
	newREQ := func() *zmq.Socket {
		r, err := zmq.NewSocket(zmq.REQ)
		if err != nil {
			t.Fatal(err)
		}
		r.SetLinger(0)
		r.SetRcvtimeo(700 * time.Millisecond)
		r.Connect(addr)
		t.Cleanup(func() { r.Close() })
		return r
	}
	r := newREQ()
	for i, payload := range [][]byte{
		encode(t, map[string]any{"id": 1, "command": "ping"}),
		{0xc1},
		{},
		encode(t, map[string]any{"id": 2, "command": "nope"}),
	} {
		if _, err := r.SendBytes(payload, 0); err != nil {
			t.Fatal(err)
		}
		b, err := r.RecvBytes(0)
		if err != nil {
			t.Fatalf("REQ request %d: no reply: %v", i, err)
		}
		if _, err := zmqbridge.DecodeRequest(b, zmqbridge.DefaultLimits); err != nil {
			t.Errorf("REQ request %d: %v", i, err)
		}
	}
	t.Run("two frames from REQ", func(t *testing.T) {
		r := newREQ()
		valid := encode(t, map[string]any{"id": 1, "command": "ping"})
		if _, err := r.SendMessage(valid, valid); err != nil {
			t.Fatal(err)
		}
		if _, err := r.RecvBytes(0); err != nil {
			t.Errorf("a REQ client sending two frames gets no bad_request reply (the reply loses the delimiter and REQ drops it): %v", err)
		}
	})
}
