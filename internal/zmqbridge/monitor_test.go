package zmqbridge

import (
	"testing"
	"time"

	"batos/internal/command"

	zmq "github.com/pebbe/zmq4"
)

// TestMonitorClosedWithoutStallingTheContext: a client that disconnects
// after the server's monitor reader has closed must not stall libzmq's I/O
// thread, which every socket of the process shares. It did when the
// reader was closed while the ROUTER still reported to it: every server
// started after never answered (CI saw each later test time out).
func TestMonitorClosedWithoutStallingTheContext(t *testing.T) {
	s, err := Listen(nil, &Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*"})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := s.Endpoints()
	d := connectedDealer(t, addr)
	// The order that stalled: the monitor's reader goes, then a client.
	s.closeMonitor()
	d.Close()
	time.Sleep(200 * time.Millisecond) // the disconnection reaches the ROUTER
	s.monitor = nil
	s.closeSockets()

	fresh, err := Listen(pingOnly{}, &Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*"})
	if err != nil {
		t.Fatal(err)
	}
	go fresh.Serve()
	defer fresh.Close()
	freshAddr, _ := fresh.Endpoints()
	d2 := connectedDealer(t, freshAddr)
	defer d2.Close()
	b, err := EncodeReply(map[string]any{"id": int64(1), "command": "ping"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d2.SendBytes(b, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.RecvBytes(0); err != nil {
		t.Fatalf("a server started after another's client left answers nothing: %v", err)
	}
}

// connectedDealer returns a DEALER whose connection to addr is up.
func connectedDealer(t *testing.T, addr string) *zmq.Socket {
	t.Helper()
	d, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		t.Fatal(err)
	}
	d.SetLinger(0)
	d.SetRcvtimeo(3 * time.Second)
	if err := d.Connect(addr); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	return d
}

// pingOnly is a service that is never asked anything but ping.
type pingOnly struct{ command.Service }
