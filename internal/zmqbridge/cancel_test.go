package zmqbridge_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"batos/internal/command"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
	"batos/internal/vm"
	"batos/internal/zmqbridge"
)

// spinSource loops far longer than any test waits (tens of seconds at
// Starlark's speed, under the generous limits below) and would then
// write a slot: a cancelled run must never get there.
const spinSource = `def spin(self):
    n = 0
    for i in range(1000000000):
        n += 1
    self.spun = n
    return n
`

// spinningImage is an image whose genesis has the spin method, and
// limits that let it run for a minute.
func spinningImage(t *testing.T) *uvm.UVM {
	t.Helper()
	u := uvmtest.Open(t, &uvm.Options{VM: &vm.Options{MaxSteps: 1 << 40, Timeout: time.Minute}})
	if _, err := command.NewLocal(u, "").SetMethod(context.Background(), command.MethodRequest{Target: "genesis", Name: "spin", Source: spinSource}); err != nil {
		t.Fatal(err)
	}
	return u
}

// spinEnded waits until the spin method's telemetry counts a call ended
// as cancelled, and reports how long that took: the telemetry counts a
// call when its execution has returned, so this shows the execution
// itself stopped, not only that a reply was sent.
func spinEnded(t *testing.T, u *uvm.UVM, from time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, d := range u.Telemetry().Drain() {
			if d.Key.Selector != "spin" {
				continue
			}
			for _, c := range d.Counts {
				if c.ErrorKinds[vm.KindCancelled] > 0 {
					return time.Since(from)
				}
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the spin call never ended as cancelled")
	return 0
}

// assertNothingSaved checks that no spin run wrote its slot.
func assertNothingSaved(t *testing.T, u *uvm.UVM) {
	t.Helper()
	res, err := u.Eval(context.Background(), `"spun" in dir(genesis)`)
	if err != nil {
		t.Fatal(err)
	}
	if res.Repr != "False" {
		t.Errorf("a cancelled spin saved its slot: %q", res.Repr)
	}
}

// startSpin sends spin as request id and waits until it is running.
func startSpin(t *testing.T, u *uvm.UVM, d *zmq.Socket, id int64) {
	t.Helper()
	sendAll(t, d, map[string]any{"id": id, "command": "send", "target": "genesis", "selector": "spin"})
	// It is running once the VM has taken its first steps; a fixed pause
	// is enough: the run lasts tens of seconds.
	time.Sleep(300 * time.Millisecond)
}

// sendAll sends requests one after another without waiting for replies
// (pipelined, as a client with several in flight).
func sendAll(t *testing.T, d *zmq.Socket, requests ...map[string]any) {
	t.Helper()
	for _, m := range requests {
		b, err := zmqbridge.EncodeReply(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.SendBytes(b, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// recvReply reads one reply.
func recvReply(t *testing.T, d *zmq.Socket) map[string]any {
	t.Helper()
	b, err := d.RecvBytes(0)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	m, err := zmqbridge.DecodeRequest(b, zmqbridge.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCancelStopsARunningSend: a client's cancel naming a running send's
// id stops its execution at once; the send answers "cancelled", the
// cancel answers how many requests it cancelled, and nothing the send did
// is saved.
func TestCancelStopsARunningSend(t *testing.T) {
	u := spinningImage(t)
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	d := dealer(t, addr)
	startSpin(t, u, d, 1)
	sent := time.Now()
	sendAll(t, d, map[string]any{"id": int64(2), "command": "cancel", "request": int64(1)})
	got := map[int64]map[string]any{}
	var replied time.Duration
	for len(got) < 2 {
		r := recvReply(t, d)
		id, _ := r["id"].(int64)
		if id == 1 {
			replied = time.Since(sent)
		}
		got[id] = r
	}
	stopped := spinEnded(t, u, sent)
	if res, _ := got[2]["result"].(map[string]any); got[2]["ok"] != true || res["cancelled"] != int64(1) {
		t.Errorf("cancel reply: %v", got[2])
	}
	e, _ := got[1]["error"].(map[string]any)
	if got[1]["ok"] != false || e["kind"] != string(command.KindCancelled) || !strings.Contains(e["message"].(string), "cancelled by the client") {
		t.Errorf("the cancelled send's reply: %v", got[1])
	}
	// Functional, not a benchmark: the run had tens of seconds to go; a
	// second is slack for -race on a loaded machine. The figure is logged.
	if stopped > time.Second {
		t.Errorf("the execution stopped %v after the cancel", stopped)
	}
	t.Logf("cancel → reply %v, execution ended by %v", replied, stopped)
	assertNothingSaved(t, u)

	// The request is no longer running: a second cancel finds nothing.
	r := req(t, d, map[string]any{"id": int64(3), "command": "cancel", "request": int64(1)})
	if r["ok"] != false || errKind(r) != command.KindNotFound {
		t.Errorf("cancel of a finished request: %v", r)
	}
}

// TestDisconnectCancels: a client whose connection closes while its send
// runs has the send cancelled.
func TestDisconnectCancels(t *testing.T) {
	u := spinningImage(t)
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	d, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		t.Fatal(err)
	}
	d.SetLinger(0)
	if err := d.Connect(addr); err != nil {
		t.Fatal(err)
	}
	startSpin(t, u, d, 1)
	closed := time.Now()
	d.Close()
	stopped := spinEnded(t, u, closed)
	if stopped > time.Second {
		t.Errorf("the execution stopped %v after the client disconnected", stopped)
	}
	t.Logf("disconnect → execution ended by %v", stopped)
	assertNothingSaved(t, u)
}

// TestCancelIsPerConnection: ids are the clients' own, so a cancel from
// one connection never reaches another's request with the same id.
func TestCancelIsPerConnection(t *testing.T) {
	u := spinningImage(t)
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	a, b := dealer(t, addr), dealer(t, addr)
	startSpin(t, u, a, 1)
	r := req(t, b, map[string]any{"id": int64(2), "command": "cancel", "request": int64(1)})
	if r["ok"] != false || errKind(r) != command.KindNotFound {
		t.Fatalf("another connection's cancel: %v", r)
	}
	r = req(t, a, map[string]any{"id": int64(3), "command": "cancel", "request": int64(1)})
	// Its own connection's cancel does; then both replies are read.
	first := r
	second := recvReply(t, a)
	for _, m := range []map[string]any{first, second} {
		switch m["id"] {
		case int64(3):
			if m["ok"] != true {
				t.Errorf("own cancel: %v", m)
			}
		case int64(1):
			if errKind(m) != command.KindCancelled {
				t.Errorf("the send: %v", m)
			}
		default:
			t.Errorf("unexpected reply %v", m)
		}
	}
}

// TestCancelBadRequests: a cancel without "request", or with fields it
// does not take, is refused; ids of any type may be cancelled.
func TestCancelBadRequests(t *testing.T) {
	_, addr, _ := startServer(t, command.NewLocal(uvmtest.Open(t, nil), ""))
	d := dealer(t, addr)
	for i, tc := range []struct {
		req  map[string]any
		kind command.Kind
		want string
	}{
		{map[string]any{"command": "cancel"}, command.KindBadRequest, `"request" is required`},
		{map[string]any{"command": "cancel", "request": 1, "id2": 3}, command.KindBadRequest, `unknown field "id2"`},
		{map[string]any{"command": "cancel", "request": "abc"}, command.KindNotFound, `no request with id "abc" is running`},
		{map[string]any{"command": "cancel", "request": []any{int64(1), "x"}}, command.KindNotFound, "no request with id"},
	} {
		tc.req["id"] = int64(100 + i)
		r := req(t, d, tc.req)
		e, _ := r["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if r["id"] != int64(100+i) || errKind(r) != tc.kind || !strings.Contains(msg, tc.want) {
			t.Errorf("%v: got %v, want %s with %q", tc.req, r, tc.kind, tc.want)
		}
	}
}

// TestShutdownCancelsAfterGrace: a server shutting down gives requests in
// flight their grace period, then cancels those still running and
// answers them shutting_down, instead of waiting out their time limit.
func TestShutdownCancelsAfterGrace(t *testing.T) {
	u := spinningImage(t)
	s, err := zmqbridge.Listen(command.NewLocal(u, ""), &zmqbridge.Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*"})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	addr, _ := s.Endpoints()
	d := dealer(t, addr)
	startSpin(t, u, d, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	s.Shutdown(ctx)
	<-served
	took := time.Since(began)
	r := recvReply(t, d)
	if r["id"] != int64(1) || errKind(r) != command.KindShuttingDown {
		t.Errorf("the send cut by the shutdown: %v", r)
	}
	if took > 5*time.Second {
		t.Errorf("shutdown took %v with a grace of 200ms", took)
	}
	t.Logf("shutdown with 200ms grace took %v", took)
	spinEnded(t, u, began)
	assertNothingSaved(t, u)
}

// TestClientCallCancels: a Client call whose context is cancelled (the
// CLI's Ctrl-C) cancels its request on the server and returns how it
// ended there: cancelled, with nothing saved.
func TestClientCallCancels(t *testing.T) {
	u := spinningImage(t)
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	c, err := zmqbridge.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	began := time.Now()
	_, err = c.Call(ctx, "send", map[string]any{"target": "genesis", "selector": "spin"})
	took := time.Since(began)
	if command.KindOf(err) != command.KindCancelled {
		t.Fatalf("a cancelled call: %v (kind %s), want kind cancelled", err, command.KindOf(err))
	}
	if took > 2*time.Second {
		t.Errorf("the cancelled call returned after %v", took)
	}
	spinEnded(t, u, began)
	assertNothingSaved(t, u)
	// The connection goes on serving.
	if res, err := c.Call(context.Background(), "ping", nil); err != nil || res != "pong" {
		t.Errorf("ping after a cancel: %v %v", res, err)
	}
}

// TestCancelRightAfterTheRequest: a cancel sent at once after its request
// (pipelined, before the request could have started) always finds it:
// requests are registered in the order they arrive.
func TestCancelRightAfterTheRequest(t *testing.T) {
	u := spinningImage(t)
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	d := dealer(t, addr)
	for round := range 5 {
		id := int64(10 * (round + 1))
		sendAll(t, d,
			map[string]any{"id": id, "command": "send", "target": "genesis", "selector": "spin"},
			map[string]any{"id": id + 1, "command": "cancel", "request": id},
		)
		for range 2 {
			r := recvReply(t, d)
			switch r["id"] {
			case id:
				if errKind(r) != command.KindCancelled {
					t.Errorf("round %d: the send: %v", round, r)
				}
			case id + 1:
				if r["ok"] != true {
					t.Errorf("round %d: the cancel: %v", round, r)
				}
			default:
				t.Errorf("round %d: unexpected reply %v", round, r)
			}
		}
	}
	assertNothingSaved(t, u)
}

// TestShutdownAnswersWhatWillNotStop: a handler that ignores its
// cancelled context still has its client answered shutting_down when the
// server stops, rather than leaving it waiting for a reply that will
// never come.
func TestShutdownAnswersWhatWillNotStop(t *testing.T) {
	fs := &fakeService{slow: make(chan struct{})}
	defer close(fs.slow)
	s, err := zmqbridge.Listen(fs, &zmqbridge.Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*"})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	addr, _ := s.Endpoints()
	d := dealer(t, addr)
	sendAll(t, d, map[string]any{"id": "stuck", "command": "send", "target": "x", "selector": "slow"})
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	s.Shutdown(ctx)
	<-served
	r := recvReply(t, d)
	if r["id"] != "stuck" || errKind(r) != command.KindShuttingDown {
		t.Errorf("the stuck request's reply: %v", r)
	}
}

// TestCancelNilIDAndItself: a request whose id is nil can be cancelled
// (nil is an id like any other); a cancel never counts itself.
func TestCancelNilIDAndItself(t *testing.T) {
	u := spinningImage(t)
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	d := dealer(t, addr)
	sendAll(t, d,
		map[string]any{"id": nil, "command": "send", "target": "genesis", "selector": "spin"},
		map[string]any{"id": "c", "command": "cancel", "request": nil},
	)
	for range 2 {
		r := recvReply(t, d)
		switch r["id"] {
		case nil:
			if errKind(r) != command.KindCancelled {
				t.Errorf("the send with id nil: %v", r)
			}
		case "c":
			if res, _ := r["result"].(map[string]any); res["cancelled"] != int64(1) {
				t.Errorf("cancel of id nil: %v", r)
			}
		}
	}
	r := req(t, d, map[string]any{"id": int64(5), "command": "cancel", "request": int64(5)})
	if errKind(r) != command.KindNotFound {
		t.Errorf("a cancel naming its own id: %v, want not_found", r)
	}
}

// TestIPv6Loopback: the bridge serves on [::1] as on 127.0.0.1, where the
// machine has IPv6 loopback at all.
func TestIPv6Loopback(t *testing.T) {
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		l.Close()
	}
	s, err := zmqbridge.Listen(&fakeService{}, &zmqbridge.Options{RequestAddr: "tcp://[::1]:*", EventAddr: "tcp://[::1]:*"})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Close()
	addr, _ := s.Endpoints()
	d, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.SetLinger(0)
	d.SetIpv6(true)
	d.SetRcvtimeo(5 * time.Second)
	if err := d.Connect(addr); err != nil {
		t.Fatal(err)
	}
	if r := req(t, d, map[string]any{"id": int64(1), "command": "ping"}); r["result"] != "pong" {
		t.Errorf("ping over IPv6: %v", r)
	}
}
