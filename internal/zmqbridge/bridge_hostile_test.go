package zmqbridge_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/vm"
	"batos/internal/zmqbridge"
)

// waitService answers "echo" sends with their arguments, and holds
// "wait" sends until their context ends and "hold" sends until release
// is closed too, keeping each one's context by its target, so a test
// sees which requests the bridge cancelled, and why.
type waitService struct {
	command.Service
	mu      sync.Mutex
	ctxs    map[string]context.Context
	release chan struct{}
}

func newWaitService() *waitService {
	return &waitService{ctxs: map[string]context.Context{}, release: make(chan struct{})}
}

func (w *waitService) Send(ctx context.Context, req command.SendRequest) (vm.Result, error) {
	var release chan struct{} // nil: a wait send waits for its context alone
	switch req.Selector {
	case "hold":
		release = w.release
	case "wait":
	default:
		return vm.Result{Value: image.NewList(req.Args...), Repr: req.Selector}, nil
	}
	w.mu.Lock()
	w.ctxs[req.Target] = ctx
	w.mu.Unlock()
	select {
	case <-release:
		return vm.Result{Value: image.String(req.Target), Repr: req.Target}, nil
	case <-ctx.Done():
		return vm.Result{}, context.Cause(ctx)
	}
}

// running waits until the wait or hold send with target name runs, and returns
// its context.
func (w *waitService) running(t *testing.T, name string) context.Context {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		w.mu.Lock()
		ctx := w.ctxs[name]
		w.mu.Unlock()
		if ctx != nil {
			return ctx
		}
	}
	t.Fatalf("the wait send %q never ran", name)
	return nil
}

// sendWait sends a wait send for target name on d, without waiting for
// its reply.
func sendWait(t *testing.T, d *zmq.Socket, name string) {
	t.Helper()
	sendAll(t, d, map[string]any{"id": name, "command": "send", "target": name, "selector": "wait"})
}

// assertGone checks that ctx is cancelled, within a generous while, as
// a closed connection's requests are.
func assertGone(t *testing.T, what string, ctx context.Context) {
	t.Helper()
	select {
	case <-ctx.Done():
		if cause := context.Cause(ctx); !strings.Contains(fmt.Sprint(cause), "connection closed") {
			t.Errorf("%s: cancelled with %v, want the client's connection closed", what, cause)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s: still running 5s after its client's connection closed", what)
	}
}

// assertRunning checks that ctx is not cancelled: a pause lets a wrong
// cancellation arrive (a slow machine only makes the check weaker).
func assertRunning(t *testing.T, what string, ctx context.Context) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	if ctx.Err() != nil {
		t.Errorf("%s: cancelled (%v) while its client is still connected", what, context.Cause(ctx))
	}
}

// newSocket makes a socket of type kind connected to addr, with the
// routing identity id when it is not "", closed at the test's end.
func newSocket(t *testing.T, kind zmq.Type, addr, id string) *zmq.Socket {
	t.Helper()
	s, err := zmq.NewSocket(kind)
	if err != nil {
		t.Fatal(err)
	}
	s.SetLinger(0)
	s.SetRcvtimeo(5 * time.Second)
	if id != "" {
		if err := s.SetIdentity(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Connect(addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestHostileDisconnectCancelsEveryKindOfClient: a client's running
// request is cancelled when its connection closes, whatever the client:
// a DEALER, a REQ, one with a routing identity of its own (even one
// shaped as the ROUTER makes them), one whose first message was
// malformed.
func TestHostileDisconnectCancelsEveryKindOfClient(t *testing.T) {
	ws := newWaitService()
	_, addr, _ := startServer(t, ws)
	for _, tc := range []struct {
		name  string
		kind  zmq.Type
		id    string
		first [][]byte // sent before the wait send, answered first
	}{
		{name: "dealer", kind: zmq.DEALER},
		{name: "req", kind: zmq.REQ},
		{name: "own-identity", kind: zmq.DEALER, id: "client-7"},
		{name: "router-like-identity", kind: zmq.DEALER, id: "\x00\x00\x00\x00\x07"},
		{name: "malformed-first", kind: zmq.DEALER, first: [][]byte{{0xc1}}},
		{name: "two-frames-first", kind: zmq.DEALER, first: [][]byte{{0x80}, {0x80}}},
		{name: "pinged-first", kind: zmq.DEALER, first: [][]byte{encode(t, map[string]any{"id": 1, "command": "ping"})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newSocket(t, tc.kind, addr, tc.id)
			if tc.first != nil {
				roundTrip(t, d, tc.first...)
			}
			sendWait(t, d, tc.name)
			ctx := ws.running(t, tc.name)
			d.Close()
			assertGone(t, tc.name, ctx)
		})
	}
}

// TestHostileReconnectUnderOwnIdentity: a client with a routing identity
// of its own that reconnects has the requests of its first connection
// cancelled, never those of its second while it stays connected.
func TestHostileReconnectUnderOwnIdentity(t *testing.T) {
	for _, id := range []string{"client-9", "\x00\x00\x00\x00\x09"} {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			ws := newWaitService()
			_, addr, _ := startServer(t, ws)
			first := newSocket(t, zmq.DEALER, addr, id)
			sendWait(t, first, "first")
			ctx1 := ws.running(t, "first")
			first.Close()
			assertGone(t, "the first connection's request", ctx1)
			second := answered(t, addr, id)
			sendWait(t, second, "second")
			ctx2 := ws.running(t, "second")
			assertRunning(t, "the second connection's request", ctx2)
			second.Close()
			assertGone(t, "the second connection's request", ctx2)
		})
	}
}

// answered connects a DEALER with routing identity id to addr, once a
// ping on it is answered. A ROUTER sets aside a connection whose
// identity a connection it has not yet dropped still has, and libzmq
// may never serve it: a client reconnecting under its own identity
// tries again on a new connection.
func answered(t *testing.T, addr, id string) *zmq.Socket {
	t.Helper()
	for try := range 20 {
		d := newSocket(t, zmq.DEALER, addr, id)
		d.SetRcvtimeo(500 * time.Millisecond)
		sendAll(t, d, map[string]any{"id": int64(try), "command": "ping"})
		if _, err := d.RecvBytes(0); err == nil {
			d.SetRcvtimeo(5 * time.Second)
			return d
		}
		d.Close()
	}
	t.Fatalf("no connection as %q answered in 20 tries", id)
	return nil
}

// TestHostileDescriptorReuse: connections opened and closed one after
// another are given the descriptors the closed ones had; a request is
// cancelled when its own connection closes, never when another that had
// its descriptor before does.
func TestHostileDescriptorReuse(t *testing.T) {
	ws := newWaitService()
	_, addr, _ := startServer(t, ws)
	stay := newSocket(t, zmq.DEALER, addr, "")
	sendWait(t, stay, "stay")
	stayCtx := ws.running(t, "stay")
	var prev *zmq.Socket
	var prevCtx context.Context
	for i := range 6 {
		name := fmt.Sprintf("conn-%d", i)
		d := newSocket(t, zmq.DEALER, addr, "")
		if prev != nil {
			prev.Close() // its descriptor is free for the next
			assertGone(t, fmt.Sprintf("conn-%d", i-1), prevCtx)
		}
		roundTrip(t, d, encode(t, map[string]any{"id": 0, "command": "ping"}))
		sendWait(t, d, name)
		ctx := ws.running(t, name)
		assertRunning(t, name, ctx)
		prev, prevCtx = d, ctx
	}
	prev.Close()
	assertGone(t, "the last connection", prevCtx)
	assertRunning(t, "the connection that stayed", stayCtx)
	stay.Close()
	assertGone(t, "the connection that stayed", stayCtx)
}

// TestHostileRepliesKeepTheirBytes: many clients send at once requests
// whose replies are of every size, around the pooled buffers' sizes and
// far beyond; every reply reaches its own sender, whole and exact.
func TestHostileRepliesKeepTheirBytes(t *testing.T) {
	_, addr, _ := startServer(t, newWaitService())
	sizes := []int{0, 1, 400, 511, 512, 513, 4000, 64<<10 - 100, 64 << 10, 64<<10 + 1, 300 << 10}
	const clients, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		d := newSocket(t, zmq.DEALER, addr, "")
		wg.Go(func() {
			want := map[string]string{}
			for i := range each {
				id := fmt.Sprintf("%d/%d", c, i)
				n := sizes[(c+i)%len(sizes)]
				arg := strings.Repeat(fmt.Sprintf("<%s>", id), n/len(id)+1)[:n]
				want[id] = arg
				b, err := zmqbridge.EncodeReply(map[string]any{"id": id, "command": "send", "target": "g", "selector": "echo", "args": []any{arg}})
				if err != nil {
					errs <- err
					return
				}
				if _, err := d.SendBytes(b, 0); err != nil {
					errs <- err
					return
				}
			}
			for range each {
				f, err := d.RecvBytes(0)
				if err != nil {
					errs <- fmt.Errorf("client %d: %v with %d replies missing", c, err, len(want))
					return
				}
				m, err := zmqbridge.DecodeRequest(f, zmqbridge.Limits{MaxBytes: 1 << 30, MaxDepth: 32, MaxItems: 1000})
				if err != nil {
					errs <- fmt.Errorf("client %d: undecodable reply: %v", c, err)
					return
				}
				id, _ := m["id"].(string)
				arg, ok := want[id]
				if !ok {
					errs <- fmt.Errorf("client %d: reply to %q, not one of its requests waiting", c, id)
					return
				}
				delete(want, id)
				res, _ := m["result"].(map[string]any)
				vals, _ := res["value"].([]any)
				if len(vals) != 1 || vals[0] != arg {
					errs <- fmt.Errorf("client %d: reply to %s: %.200v, want its argument of %d bytes back", c, id, m, len(arg))
					return
				}
				if !bytes.Equal(f, mustEncodeReply(t, m)) {
					errs <- fmt.Errorf("client %d: reply to %s is not its own encoding", c, id)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func mustEncodeReply(t *testing.T, m map[string]any) []byte {
	b, err := zmqbridge.EncodeReply(m)
	if err != nil {
		t.Error(err)
	}
	return b
}

// TestHostileCloseLeavesNoGoroutines: a server whose workers were all
// busy, so that it started more, leaves no goroutine behind once closed,
// and its requests' contexts are cancelled.
func TestHostileCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	ws := newWaitService()
	s, err := zmqbridge.Listen(ws, &zmqbridge.Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*", Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	addr, _ := s.Endpoints()
	d := newSocket(t, zmq.DEALER, addr, "")
	var ctxs []context.Context
	for i := range 10 {
		sendWait(t, d, fmt.Sprint(i))
	}
	for i := range 10 {
		ctxs = append(ctxs, ws.running(t, fmt.Sprint(i)))
	}
	s.Close()
	<-served
	for i, ctx := range ctxs {
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Errorf("request %d still running after Close", i)
		}
	}
	d.Close()
	assertGoroutinesBack(t, before)
}

// assertGoroutinesBack checks that the goroutines a test started have
// ended, within a generous while: no more run than before.
func assertGoroutinesBack(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines left, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestHostileMalformedOnAKnownConnection: a connection's later messages,
// read without looking at the connection again, are refused as its
// first would be, with the same kinds and ids, and the connection goes
// on being served.
func TestHostileMalformedOnAKnownConnection(t *testing.T) {
	_, addr, _ := startServer(t, newWaitService())
	d := newSocket(t, zmq.DEALER, addr, "")
	ping := encode(t, map[string]any{"id": int64(1), "command": "ping"})
	for _, tc := range []struct {
		name   string
		frames [][]byte
		id     any
		kind   command.Kind
	}{
		{"non-msgpack bytes", [][]byte{{0xc1}}, nil, command.KindBadRequest},
		{"two payload frames", [][]byte{ping, ping}, nil, command.KindBadRequest},
		{"empty frame", [][]byte{{}}, nil, command.KindBadRequest},
		{"duplicate key", [][]byte{rawMap(mpStr("id"), mpStr("d"), mpStr("command"), mpStr("ping"), mpStr("command"), mpStr("ping"))}, "d", command.KindBadRequest},
		{"unknown command", [][]byte{encode(t, map[string]any{"id": "u", "command": "nope"})}, "u", command.KindUnknownCommand},
		{"three frames, empty first", [][]byte{{}, ping, ping}, nil, command.KindBadRequest},
	} {
		r := roundTrip(t, d, ping)
		if r["result"] != "pong" {
			t.Fatalf("before %s: %v", tc.name, r)
		}
		r = roundTrip(t, d, tc.frames...)
		if r["ok"] != false || errKind(r) != tc.kind || r["id"] != tc.id {
			t.Errorf("%s: got %v, want %s with id %v", tc.name, r, tc.kind, tc.id)
		}
	}
	t.Run("REQ", func(t *testing.T) {
		r := newSocket(t, zmq.REQ, addr, "")
		if m := roundTrip(t, r, ping); m["result"] != "pong" {
			t.Fatalf("REQ ping: %v", m)
		}
		if _, err := r.SendMessage(ping, ping); err != nil {
			t.Fatal(err)
		}
		b, err := r.RecvBytes(0)
		if err != nil {
			t.Fatalf("a known REQ connection sending two frames got no reply: %v", err)
		}
		if m, _ := zmqbridge.DecodeRequest(b, zmqbridge.DefaultLimits); errKind(m) != command.KindBadRequest {
			t.Errorf("two frames from a known REQ: %v", m)
		}
	})
}

// TestHostileShutdownWithExtraWorkers: with every worker busy, so that
// more were started, a shutdown lets every request in flight finish and
// answers each, answers those arriving meanwhile shutting_down, and
// leaves no goroutine behind.
func TestHostileShutdownWithExtraWorkers(t *testing.T) {
	before := runtime.NumGoroutine()
	ws := newWaitService()
	s, err := zmqbridge.Listen(ws, &zmqbridge.Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*", Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	addr, _ := s.Endpoints()
	d := newSocket(t, zmq.DEALER, addr, "")
	const n = 8
	for i := range n {
		sendAll(t, d, map[string]any{"id": int64(i), "command": "send", "target": fmt.Sprint(i), "selector": "hold"})
	}
	for i := range n {
		ws.running(t, fmt.Sprint(i))
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	time.Sleep(200 * time.Millisecond)
	late := newSocket(t, zmq.DEALER, addr, "")
	if r := req(t, late, map[string]any{"id": "late", "command": "ping"}); errKind(r) != command.KindShuttingDown || r["id"] != "late" {
		t.Errorf("a request during the shutdown: %v", r)
	}
	close(ws.release)
	got := map[int64]bool{}
	for range n {
		r := recvReply(t, d)
		id, _ := r["id"].(int64)
		res, _ := r["result"].(map[string]any)
		if r["ok"] != true || res["value"] != fmt.Sprint(id) || got[id] {
			t.Errorf("reply %v", r)
		}
		got[id] = true
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	<-served
	d.Close()
	late.Close()
	assertGoroutinesBack(t, before)
}

// TestHostileRequestArrivingWithItsClose: clients that send a request
// and close at once. The close can be reported before the request is
// taken in; the request must then not be left running, filed under a
// connection already gone. Every request that ran is cancelled.
func TestHostileRequestArrivingWithItsClose(t *testing.T) {
	ws := newWaitService()
	_, addr, _ := startServer(t, ws)
	const clients = 40
	for i := range clients {
		d, err := zmq.NewSocket(zmq.DEALER)
		if err != nil {
			t.Fatal(err)
		}
		d.SetLinger(time.Second) // the request leaves before the socket closes
		if err := d.Connect(addr); err != nil {
			t.Fatal(err)
		}
		sendWait(t, d, fmt.Sprintf("quick-%d", i))
		d.Close()
	}
	// Whatever ran must end: a request the bridge dropped as its
	// connection was gone never ran at all. The requests arrive over a
	// while: look once it has passed.
	time.Sleep(time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ws.mu.Lock()
		var running []string
		for name, ctx := range ws.ctxs {
			if ctx.Err() == nil {
				running = append(running, name)
			}
		}
		ran := len(ws.ctxs)
		ws.mu.Unlock()
		if len(running) == 0 {
			t.Logf("%d of %d requests ran before their connection's close was seen, and were cancelled", ran, clients)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests still running 10s after their clients closed: %v", len(running), running)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
