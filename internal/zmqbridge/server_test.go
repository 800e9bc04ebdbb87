package zmqbridge_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

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
	return command.ObjectView{OID: target}, nil
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
