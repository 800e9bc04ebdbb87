package zmqbridge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/tinylib/msgp/msgp"
)

// This file holds the raw sockets of "batos bench bridge": a bare ROUTER
// echo, the transport's own round trip to compare the bridge with, and a
// closed-loop load that keeps many requests in flight. They live here
// because only this package may use ZeroMQ.

// EchoServer is a bare ROUTER that sends every message back to its sender
// unchanged, as fast as one goroutine can: a baseline for the bridge's
// figures. Its goroutine owns the socket; Close stops it.
type EchoServer struct {
	endpoint string
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

// echoPoll is how often the echo goroutine, idle, looks whether to stop.
const echoPoll = 50 * time.Millisecond

// StartEcho binds a ROUTER at addr (loopback only: it has no CURVE, see
// ErrInsecure) and starts echoing. A port of * picks a free one; Endpoint
// tells which.
func StartEcho(addr string) (*EchoServer, error) {
	if !isLoopback(addr) {
		return nil, fmt.Errorf("%w: %s", ErrInsecure, addr)
	}
	sock, err := zmq.NewSocket(zmq.ROUTER)
	if err != nil {
		return nil, err
	}
	// The bridge's ROUTER settings, so the two differ only in what
	// happens between receiving and replying.
	sock.SetSndhwm(1000)
	sock.SetRcvhwm(1000)
	sock.SetLinger(0)
	sock.SetRcvtimeo(echoPoll)
	if err := sock.Bind(addr); err != nil {
		sock.Close()
		return nil, fmt.Errorf("bind %s: %w", addr, err)
	}
	endpoint, err := sock.GetLastEndpoint()
	if err != nil {
		sock.Close()
		return nil, err
	}
	e := &EchoServer{endpoint: endpoint, stop: make(chan struct{}), done: make(chan struct{})}
	go e.loop(sock)
	return e, nil
}

// Endpoint is the address bound.
func (e *EchoServer) Endpoint() string { return e.endpoint }

func (e *EchoServer) loop(sock *zmq.Socket) {
	defer close(e.done)
	defer sock.Close()
	var parts []any
	for {
		select {
		case <-e.stop:
			return
		default:
		}
		msg, err := sock.RecvMessageBytes(0)
		if err != nil {
			continue // the receive timeout: look at stop again
		}
		parts = parts[:0]
		for _, f := range msg {
			parts = append(parts, f)
		}
		// DONTWAIT, as the bridge: a peer that stopped reading loses it.
		sock.SendMessageDontwait(parts...)
	}
}

// Close stops the echo and closes its socket. Safe to call twice.
func (e *EchoServer) Close() error {
	e.once.Do(func() { close(e.stop) })
	<-e.done
	return nil
}

// Load is a closed-loop load on a ROUTER endpoint: Clients DEALER sockets,
// each owned by its own goroutine, keep InFlight requests outstanding
// between them, each reply sending the next request. It works against the
// bridge and against an EchoServer alike.
type Load struct {
	// Addr is the ROUTER endpoint to connect to.
	Addr string
	// Clients is the number of DEALER sockets; default 1.
	Clients int
	// InFlight is the number of requests outstanding in total, shared
	// among the clients as evenly as can be; default 1, at least one per
	// client.
	InFlight int
	// Request is the request each message carries, without "id": every
	// message gets its own integer id, by which its reply is matched.
	Request map[string]any
	// Warmup runs the load unmeasured before Duration is measured.
	Warmup, Duration time.Duration
	// Requests, when positive, replaces the time window: exactly this
	// many requests are sent, all measured, and Elapsed is how long they
	// took (for a Go benchmark's b.N).
	Requests int
	// Stall ends the run with an error when a client gets no reply for
	// this long; default 10s.
	Stall time.Duration
}

// LoadResult is what a Load measured.
type LoadResult struct {
	// RoundTrips counts replies received during the measured Duration.
	RoundTrips int
	// Elapsed is the measured Duration.
	Elapsed time.Duration
	// Latencies are the round trips' times from send to reply, sorted.
	Latencies []time.Duration
}

// PerS is round trips per second.
func (r *LoadResult) PerS() float64 { return float64(r.RoundTrips) / r.Elapsed.Seconds() }

// Quantile is the latency below which the fraction q of round trips fell
// (nearest rank); 0 when there were none.
func (r *LoadResult) Quantile(q float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	i := min(max(int(math.Ceil(q*float64(n)))-1, 0), n-1)
	return r.Latencies[i]
}

// ErrStalled is returned when a load client waited Load.Stall for a reply.
var ErrStalled = errors.New("zmqbridge: no reply to a request in flight")

// Run runs the load until Warmup and Duration have passed and the
// requests still in flight have been answered. A reply with "ok": false
// ends it with an error, as does ctx ending. Run may be called from any
// goroutine; its sockets are its own.
func (l Load) Run(ctx context.Context) (*LoadResult, error) {
	clients := max(l.Clients, 1)
	inFlight := max(l.InFlight, clients)
	if l.Stall <= 0 {
		l.Stall = 10 * time.Second
	}
	enc, err := EncodeReply(l.Request)
	if err != nil {
		return nil, err
	}
	fields, body, err := msgp.ReadMapHeaderBytes(enc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := loadWindow{from: time.Now().Add(l.Warmup)}
	w.until = w.from.Add(l.Duration)
	var left *atomic.Int64
	if l.Requests > 0 {
		left = new(atomic.Int64)
		left.Store(int64(l.Requests))
		w = loadWindow{from: time.Now(), until: time.Now().Add(100 * 365 * 24 * time.Hour)}
	}
	start := time.Now()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		lat   []time.Duration
		first error
	)
	for c := range clients {
		n := inFlight / clients
		if c < inFlight%clients {
			n++
		}
		lc := &loadClient{load: &l, window: w, left: left, fields: fields + 1, body: body}
		wg.Go(func() {
			err := lc.run(ctx, n)
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, lc.lat...)
			if err != nil && first == nil {
				first = err
				cancel()
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	slices.Sort(lat)
	elapsed := l.Duration
	if l.Requests > 0 {
		elapsed = time.Since(start)
	}
	return &LoadResult{RoundTrips: len(lat), Elapsed: elapsed, Latencies: lat}, nil
}

// loadWindow is when replies are counted.
type loadWindow struct{ from, until time.Time }

// loadClient is one DEALER of a Load and the state of its goroutine.
type loadClient struct {
	load   *Load
	window loadWindow
	left   *atomic.Int64 // requests still to send, when Load.Requests says
	fields uint32        // map entries of a request, with id
	body   []byte        // the request's entries after its map header, without id
	sock   *zmq.Socket
	nextID int64
	sent   map[int64]time.Time
	buf    []byte
	lat    []time.Duration
}

// run connects, sends n requests, and then one per reply until the window
// closes; it returns when every request has been answered.
func (c *loadClient) run(ctx context.Context, n int) error {
	sock, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		return err
	}
	defer sock.Close()
	sock.SetLinger(0)
	sock.SetRcvtimeo(100 * time.Millisecond)
	if err := sock.Connect(c.load.Addr); err != nil {
		return fmt.Errorf("connect %s: %w", c.load.Addr, err)
	}
	c.sock, c.sent = sock, make(map[int64]time.Time, n)
	for range n {
		if err := c.send(); err != nil {
			return err
		}
	}
	last := time.Now()
	for len(c.sent) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		reply, err := sock.RecvBytes(0)
		now := time.Now()
		if err != nil {
			if now.Sub(last) > c.load.Stall {
				return fmt.Errorf("%w after %s (%d outstanding)", ErrStalled, c.load.Stall, len(c.sent))
			}
			continue // the receive timeout: look at ctx again
		}
		last = now
		if err := c.received(reply, now); err != nil {
			return err
		}
		if now.Before(c.window.until) {
			if err := c.send(); err != nil {
				return err
			}
		}
	}
	return nil
}

// send sends one request with the next id, unless Load.Requests have
// all been sent.
func (c *loadClient) send() error {
	if c.left != nil && c.left.Add(-1) < 0 {
		return nil
	}
	c.nextID++
	b := msgp.AppendMapHeader(c.buf[:0], c.fields)
	b = msgp.AppendString(b, "id")
	b = msgp.AppendInt64(b, c.nextID)
	c.buf = append(b, c.body...)
	c.sent[c.nextID] = time.Now()
	if _, err := c.sock.SendBytes(c.buf, 0); err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	return nil
}

// received matches a reply to its request and records its latency when it
// came within the window.
func (c *loadClient) received(reply []byte, now time.Time) error {
	id, err := replyID(reply)
	if err != nil {
		return err
	}
	at, ok := c.sent[id]
	if !ok {
		return fmt.Errorf("reply to request %d, which is not in flight", id)
	}
	delete(c.sent, id)
	if !now.Before(c.window.from) && now.Before(c.window.until) {
		c.lat = append(c.lat, now.Sub(at))
	}
	return nil
}

// replyID reads a reply's id without decoding the rest; a reply with
// "ok": false is an error carrying the server's. An echoed request has
// no "ok" and passes.
func replyID(b []byte) (int64, error) {
	n, rest, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return 0, fmt.Errorf("undecodable reply: %w", err)
	}
	var (
		id    int64
		hasID bool
		ok    = true
		key   []byte
	)
	for range n {
		if key, rest, err = msgp.ReadStringZC(rest); err != nil {
			return 0, fmt.Errorf("undecodable reply: %w", err)
		}
		switch string(key) {
		case "id":
			id, rest, err = msgp.ReadInt64Bytes(rest)
			hasID = err == nil
		case "ok":
			ok, rest, err = msgp.ReadBoolBytes(rest)
		default:
			rest, err = msgp.Skip(rest)
		}
		if err != nil {
			return 0, fmt.Errorf("undecodable reply: %w", err)
		}
	}
	if !ok {
		return 0, errorReply(b)
	}
	if !hasID {
		return 0, errors.New("reply without an integer id")
	}
	return id, nil
}

// errorReply is the error an "ok": false reply carries.
func errorReply(b []byte) error {
	m, err := DecodeRequest(b, DefaultLimits)
	if err != nil {
		return fmt.Errorf("undecodable error reply: %w", err)
	}
	e, _ := m["error"].(map[string]any)
	return fmt.Errorf("error reply: %v: %v", e["kind"], e["message"])
}
