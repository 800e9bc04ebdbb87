package zmqbridge_test

// Hostile tests of the server: odd ids, odd arguments, odd results,
// panicking services, many clients, clients that vanish, shutdown under
// load, publishing after close, and REQ clients.

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	zmq "github.com/pebbe/zmq4"
	"github.com/tinylib/msgp/msgp"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/uvm"
	"batos/internal/vm"
	"batos/internal/zmqbridge"
)

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
		return command.ObjectView{OID: "oid:1", Own: []command.SlotView{{Name: target, Value: v, Repr: "?", Owner: "oid:1"}}}, nil
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
		return command.ObjectView{OID: "released"}, nil
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

func req(t *testing.T, d *zmq.Socket, m map[string]any) map[string]any {
	t.Helper()
	b, err := zmqbridge.EncodeReply(m) // the bridge's encoder writes image.Ref
	if err != nil {
		t.Fatal(err)
	}
	return roundTrip(t, d, b)
}

// TestHostileIDsEchoed: every kind of msgpack id comes back as sent.
func TestHostileIDsEchoed(t *testing.T) {
	_, addr, _ := startServer(t, &fakeService{})
	d := dealer(t, addr)
	refExt := []byte{0xd7, 0x01, 0, 0, 0, 0, 0, 0, 0, 7}
	ids := map[string]struct {
		raw  []byte // msgpack of the id
		want any
	}{
		"nil":      {[]byte{0xc0}, nil},
		"true":     {[]byte{0xc3}, true},
		"negint":   {msgp.AppendInt64(nil, math.MinInt64), int64(math.MinInt64)},
		"maxint":   {msgp.AppendInt64(nil, math.MaxInt64), int64(math.MaxInt64)},
		"uint63":   {msgp.AppendUint64(nil, math.MaxInt64), int64(math.MaxInt64)},
		"float32":  {msgp.AppendFloat32(nil, 1.5), 1.5},
		"float64":  {msgp.AppendFloat64(nil, math.Inf(-1)), math.Inf(-1)},
		"str":      {msgp.AppendString(nil, "é\x00id"), "é\x00id"},
		"bin":      {msgp.AppendBytes(nil, []byte{0, 1}), []byte{0, 1}},
		"emptybin": {msgp.AppendBytes(nil, nil), []byte{}},
		"array":    {append([]byte{0x92, 0x01}, msgp.AppendString(nil, "x")...), []any{int64(1), "x"}},
		"map":      {append([]byte{0x81, 0xa1, 'k'}, 0x90), map[string]any{"k": []any{}}},
		"refext":   {refExt, image.Ref(7)},
		"reftag":   {append([]byte{0x81, 0xa4, '$', 'r', 'e', 'f'}, msgp.AppendString(nil, "oid:9")...), image.Ref(9)},
		"hugestr":  {msgp.AppendString(nil, strings.Repeat("i", 900_000)), strings.Repeat("i", 900_000)},
	}
	for name, tc := range ids {
		t.Run(name, func(t *testing.T) {
			b := []byte{0x82}
			b = msgp.AppendString(b, "id")
			b = append(b, tc.raw...)
			b = msgp.AppendString(b, "command")
			b = msgp.AppendString(b, "ping")
			r := roundTrip(t, d, b)
			if r["ok"] != true || !reflect.DeepEqual(r["id"], tc.want) {
				t.Errorf("id %s: got %#v (ok %v), want %#v", name, r["id"], r["ok"], tc.want)
			}
		})
	}
}

// TestHostileArguments: arguments that cannot convert, refs to missing
// objects, huge and mistyped values all get replies.
func TestHostileArguments(t *testing.T) {
	_, addr, _ := startServer(t, &fakeService{})
	d := dealer(t, addr)
	cases := []struct {
		name string
		m    map[string]any
		kind command.Kind // "" means ok
	}{
		{"ref args", map[string]any{"id": 1, "command": "send", "target": "g", "selector": "echo", "args": []any{image.Ref(math.MaxInt64)}}, ""},
		{"kwargs nested", map[string]any{"id": 1, "command": "send", "target": "g", "selector": "echo", "kwargs": map[string]any{"a": map[string]any{"b": []any{nil, []byte{}}}, "": int64(1)}}, ""},
		{"args not array", map[string]any{"id": 1, "command": "send", "target": "g", "selector": "echo", "args": "x"}, command.KindBadRequest},
		{"kwargs not map", map[string]any{"id": 1, "command": "send", "target": "g", "selector": "echo", "kwargs": []any{}}, command.KindBadRequest},
		{"target ref", map[string]any{"id": 1, "command": "inspect", "target": image.Ref(5)}, ""},
		{"target bool", map[string]any{"id": 1, "command": "inspect", "target": true}, command.KindBadRequest},
		{"limit negative", map[string]any{"id": 1, "command": "history", "target": "g", "limit": int64(-1)}, command.KindBadRequest},
		{"limit huge", map[string]any{"id": 1, "command": "history", "target": "g", "limit": int64(math.MaxInt64)}, command.KindBadRequest},
		{"limit float", map[string]any{"id": 1, "command": "log", "limit": 1.5}, command.KindBadRequest},
		{"before junk", map[string]any{"id": 1, "command": "log", "before": "zz"}, command.KindBadRequest},
		{"tid junk", map[string]any{"id": 1, "command": "undo", "tid": strings.Repeat("f", 100)}, command.KindBadRequest},
		{"command int", map[string]any{"id": 1, "command": int64(3)}, command.KindBadRequest},
		{"command empty", map[string]any{"id": 1, "command": ""}, command.KindBadRequest},
		{"command missing", map[string]any{"id": 1}, command.KindBadRequest},
		{"command proto", map[string]any{"id": 1, "command": "__proto__"}, command.KindUnknownCommand},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := req(t, d, tc.m)
			if tc.kind == "" && r["ok"] != true {
				t.Errorf("got %v, want ok", r)
			}
			if tc.kind != "" && (r["ok"] != false || errKind(r) != tc.kind) {
				t.Errorf("got %v, want %s", r, tc.kind)
			}
			if r["id"] != int64(1) {
				t.Errorf("id not echoed: %v", r)
			}
		})
	}
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
	} else if m, _ := zmqbridge.DecodeRequest(b, zmqbridge.DefaultLimits); !cmp.Equal(m["result"], map[string]any{"oid": "released", "parents": []any{}, "own": []any{}, "inherited": []any{}}) {
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

// TestHostileRealImage: command.Local over an image, with hostile arguments.
func TestHostileRealImage(t *testing.T) {
	ctx := context.Background()
	u, _, err := uvm.Open(ctx, filepath.Join(t.TempDir(), "img"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	d := dealer(t, addr)
	cases := []map[string]any{
		{"command": "send", "target": "genesis", "selector": "nosuch", "args": []any{image.Ref(1 << 40)}},
		{"command": "send", "target": image.Ref(1 << 40), "selector": "x"},
		{"command": "send", "target": int64(math.MaxInt64), "selector": "x"},
		{"command": "send", "target": "", "selector": ""},
		{"command": "send", "target": "genesis", "selector": "__init__", "kwargs": map[string]any{"a": image.Ref(1 << 40), "b": map[string]any{"": []byte{}}}},
		{"command": "eval", "code": "genesis"},
		{"command": "eval", "code": "lambda: 1"},
		{"command": "eval", "code": "def f():\n  pass\nf"},
		{"command": "eval", "code": "{1: 2, (1,2): [3]}"},
		{"command": "eval", "code": "set([1])"},
		{"command": "eval", "code": "x = ["},
		{"command": "eval", "code": strings.Repeat("[", 500) + strings.Repeat("]", 500)},
		{"command": "inspect", "target": "oid:0"},
		{"command": "inspect", "target": image.Ref(1 << 40)},
		{"command": "inspect", "target": "genesis"},
		{"command": "history", "target": "genesis", "limit": int64(math.MaxInt32)},
		{"command": "log", "limit": int64(0)},
		{"command": "log", "before": "ffffffffffffffff"},
		{"command": "undo", "tid": "0000000000000000"},
		{"command": "undo", "tid": "ffffffffffffffff"},
		{"command": "initiate_cognitive_cycle", "target_oid": image.Ref(1 << 40), "mission_brief": ""},
		{"command": "initiate_cognitive_cycle", "target_oid": "genesis", "mission_brief": "learn to count"},
		{"command": "send", "target": "genesis", "selector": "nosuch", "learn": "handle"},
		{"command": "send", "target": "genesis", "selector": "nosuch", "timeout_ms": int64(1)},
		{"command": "send", "target": "nobody", "selector": "x", "learn": "wait"},
		{"command": "cycle_list", "limit": int64(math.MaxInt32)},
		{"command": "cycle_show", "cycle": int64(math.MaxInt64)},
		{"command": "cycle_show", "cycle": "c1"},
		{"command": "cycle_retry", "cycle": int64(1)},
		{"command": "cycle_cancel", "cycle": int64(1 << 40)},
	}
	for i, m := range cases {
		m["id"] = int64(i)
		d.SetRcvtimeo(5 * time.Second)
		r := req(t, d, m)
		if r["id"] != int64(i) {
			t.Errorf("%v: %v", m, r)
		}
		// internal means a server fault; a client's bad target or bad
		// code is not_found or bad_request (or method_error).
		if r["ok"] == false && errKind(r) == command.KindInternal {
			t.Errorf("client error classified internal: %v: %v", m, r["error"])
		}
	}
}
