// Package zmqbridge is the Synaptic Bridge: a ZeroMQ ROUTER socket taking
// msgpack requests and a PUB socket publishing events. It is the only
// package that imports ZeroMQ (github.com/pebbe/zmq4 over Debian's
// libzmq). The protocol is in docs/protocol.md.
//
// # Sockets and goroutines
//
// Each socket is used by exactly one goroutine. The router goroutine owns
// the ROUTER socket: it receives requests, hands them to workers, which
// handle them concurrently, and sends the replies they queue in the
// outbox. When it is asleep in its poll, a worker's reply wakes it
// through the ringer goroutine, which owns a PUSH socket, and a PULL
// socket the router goroutine polls. The publisher goroutine owns the PUB
// socket. A slow or stalled client never delays the others: replies to a
// peer that does not read are dropped by ZeroMQ, not queued without
// bound.
package zmqbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"

	"batos/internal/command"
	"batos/internal/protocol"
)

// Options configures a Server; nil means the defaults.
type Options struct {
	// RequestAddr is the ROUTER endpoint; default tcp://127.0.0.1:5555.
	RequestAddr string
	// EventAddr is the PUB endpoint; default tcp://127.0.0.1:5556.
	EventAddr string
	// Limits bound what a request may hold.
	Limits Limits
	// Workers is how many goroutines handle requests; default 64. When
	// all are busy a request gets a new goroutine, so a burst of slow
	// requests never stops the router reading; it stays to handle more
	// until it has been idle for a second, so a steady load beyond
	// Workers does not start one per request.
	Workers int
	// Curve, when set, encrypts and authenticates every connection.
	Curve *Curve
	// Logger receives the bridge's logs; default slog.Default().
	Logger *slog.Logger
}

// Curve configures CURVE security: the server's key pair and the public
// keys of the clients allowed in (Z85 text, as zmq_curve_keypair makes).
type Curve struct {
	ServerPublic, ServerSecret string
	ClientPublics              []string
}

func (o *Options) withDefaults() Options {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.RequestAddr == "" {
		opts.RequestAddr = "tcp://127.0.0.1:5555"
	}
	if opts.EventAddr == "" {
		opts.EventAddr = "tcp://127.0.0.1:5556"
	}
	if opts.Limits == (Limits{}) {
		opts.Limits = DefaultLimits
	}
	if opts.Workers <= 0 {
		opts.Workers = 64
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return opts
}

// ErrInsecure is returned when a non-loopback address is to be bound
// without CURVE.
var ErrInsecure = errors.New("zmqbridge: refusing to listen beyond loopback without CURVE (generate keys with batos key gen)")

// Server serves the commands over ZeroMQ.
type Server struct {
	opts    Options
	service command.Service
	log     *slog.Logger

	router, pull, push, pub *zmq.Socket
	// monitor receives the ROUTER's disconnections (owned by the router
	// goroutine), so a closed connection's requests are cancelled.
	monitor *zmq.Socket
	conns   *conns // the connections seen (owned by the router goroutine)
	// closedFDs are the descriptors the monitor reported closed and not
	// accepted again since (owned by the router goroutine): a message
	// taken from one came on a connection already gone.
	closedFDs map[int]bool
	reqs      *registry

	out      outbox
	bell     chan struct{} // wakes the router goroutine (see outbox)
	events   chan event
	work     chan job
	closing  atomic.Bool
	inflight atomic.Int64   // requests being handled
	done     sync.WaitGroup // the goroutines owning sockets
	stop     chan struct{}
	once     sync.Once
	served   atomic.Bool
	// base is the context requests run under. Nothing cancels it, so a
	// request's start and end lock no parent shared by all: Shutdown,
	// once its grace is over, and Close cancel the requests through the
	// registry (reqs.stop), so nothing keeps running against an image
	// about to close.
	base context.Context
}

type outgoing struct {
	envelope [][]byte // identity (and delimiter) frames
	payload  []byte
	buf      *[]byte // the pooled buffer payload is in, if it is (see replyBufs)
}

// replyBufs are buffers replies are encoded into, given back once sent
// (ZeroMQ copies what it sends).
var replyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledReply is the largest buffer given back to replyBufs: a rare
// big reply's is left to the collector.
const maxPooledReply = 64 << 10

type event struct {
	topic   string
	payload []byte
}

var bridgeSeq atomic.Int64

// Listen binds the sockets. Binding beyond loopback without CURVE is
// refused with ErrInsecure.
func Listen(service command.Service, o *Options) (*Server, error) {
	opts := o.withDefaults()
	for _, addr := range []string{opts.RequestAddr, opts.EventAddr} {
		if opts.Curve == nil && !isLoopback(addr) {
			return nil, fmt.Errorf("%w: %s", ErrInsecure, addr)
		}
	}
	s := &Server{opts: opts, service: service, log: opts.Logger,
		bell: make(chan struct{}, 1), events: make(chan event, 1024),
		work: make(chan job), stop: make(chan struct{}), conns: newConns(), closedFDs: map[int]bool{}, reqs: newRegistry()}
	s.base = protocol.WithTransport(context.Background(), "bridge")
	if err := s.bind(); err != nil {
		s.closeSockets()
		return nil, err
	}
	return s, nil
}

func (s *Server) bind() error {
	var err error
	if s.router, err = zmq.NewSocket(zmq.ROUTER); err != nil {
		return err
	}
	// Oversized messages drop the peer before they are read whole; a peer
	// that stops reading has replies dropped at the high-water mark.
	s.router.SetMaxmsgsize(int64(s.opts.Limits.MaxBytes))
	s.router.SetSndhwm(1000)
	s.router.SetRcvhwm(1000)
	s.router.SetLinger(0)
	s.router.SetHandshakeIvl(5 * time.Second)
	// ZMTP heartbeats close a connection whose peer vanished without
	// closing it (a cable pulled, a machine gone), so its requests are
	// cancelled as for a client that closed its socket.
	s.router.SetHeartbeatIvl(5 * time.Second)
	s.router.SetHeartbeatTimeout(15 * time.Second)
	monitorAddr := fmt.Sprintf("inproc://batos-monitor-%d", bridgeSeq.Add(1))
	if err := s.router.Monitor(monitorAddr, zmq.EVENT_ACCEPTED|zmq.EVENT_DISCONNECTED); err != nil {
		return fmt.Errorf("monitor the request socket: %w", err)
	}
	if s.monitor, err = zmq.NewSocket(zmq.PAIR); err != nil {
		return err
	}
	s.monitor.SetLinger(0)
	if err := s.monitor.Connect(monitorAddr); err != nil {
		return fmt.Errorf("monitor the request socket: %w", err)
	}
	if s.pub, err = zmq.NewSocket(zmq.PUB); err != nil {
		return err
	}
	s.pub.SetLinger(0)
	s.pub.SetSndhwm(10000)
	if err := s.secure(); err != nil {
		return err
	}
	// An IPv6 address ([::1]) needs IPv6 turned on; IPv4 ones bind alike
	// either way.
	for _, sock := range []*zmq.Socket{s.router, s.pub} {
		if strings.Contains(s.opts.RequestAddr+s.opts.EventAddr, "[") {
			sock.SetIpv6(true)
		}
	}
	if err := s.router.Bind(s.opts.RequestAddr); err != nil {
		return fmt.Errorf("bind %s: %w", s.opts.RequestAddr, err)
	}
	if err := s.pub.Bind(s.opts.EventAddr); err != nil {
		return fmt.Errorf("bind %s: %w", s.opts.EventAddr, err)
	}
	inproc := fmt.Sprintf("inproc://batos-bell-%d", bridgeSeq.Add(1))
	if s.pull, err = zmq.NewSocket(zmq.PULL); err != nil {
		return err
	}
	if err := s.pull.Bind(inproc); err != nil {
		return err
	}
	if s.push, err = zmq.NewSocket(zmq.PUSH); err != nil {
		return err
	}
	s.push.SetLinger(0)
	return s.push.Connect(inproc)
}

// authOnce starts ZeroMQ's authentication handler, one per process.
var authOnce = sync.OnceValue(zmq.AuthStart)

func (s *Server) secure() error {
	c := s.opts.Curve
	if c == nil {
		return nil
	}
	if err := authOnce(); err != nil {
		return fmt.Errorf("start CURVE authentication: %w", err)
	}
	if len(c.ClientPublics) == 0 {
		return fmt.Errorf("CURVE: no client public keys allowed; nobody could connect")
	}
	zmq.AuthCurveAdd("batos", c.ClientPublics...)
	for _, sock := range []*zmq.Socket{s.router, s.pub} {
		if err := sock.ServerAuthCurve("batos", c.ServerSecret); err != nil {
			return fmt.Errorf("CURVE server key: %w", err)
		}
	}
	return nil
}

func isLoopback(addr string) bool {
	if strings.HasPrefix(addr, "inproc://") || strings.HasPrefix(addr, "ipc://") {
		return true
	}
	hostport, ok := strings.CutPrefix(addr, "tcp://")
	if !ok {
		return false
	}
	host := hostport
	if i := strings.LastIndex(hostport, ":"); i >= 0 {
		host = hostport[:i] // the port may be * (any)
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Endpoints are the addresses bound (with a port chosen by the system
// where one was asked for with *).
func (s *Server) Endpoints() (requests, events string) {
	r, _ := s.router.GetLastEndpoint()
	e, _ := s.pub.GetLastEndpoint()
	return r, e
}

// Serve runs until Shutdown or Close. It starts the goroutines that own
// the sockets and returns when they have stopped.
func (s *Server) Serve() {
	if !s.served.CompareAndSwap(false, true) {
		return
	}
	for range s.opts.Workers {
		go s.worker()
	}
	s.done.Add(3)
	go s.routerLoop()
	go s.ringLoop()
	go s.publisherLoop()
	s.done.Wait()
	s.closeSockets()
}

// Publish sends an event to subscribers; topic is a prefix such as
// "commit." or "cycle.". It never blocks: events beyond the buffer are
// dropped (subscribers are told by a gap in seq).
func (s *Server) Publish(topic string, payload map[string]any) {
	b, err := EncodeReply(payload)
	if err != nil {
		s.log.Error("encode event", "topic", topic, "err", err)
		return
	}
	select {
	case s.events <- event{topic, b}:
	default:
	}
}

// routerPoll is how long the router goroutine, idle, waits before it
// looks whether to stop.
const routerPoll = 50 * time.Millisecond

// maxBatch is how many requests the router goroutine takes in before it
// sends the replies waiting, however many more requests wait.
const maxBatch = 256

func (s *Server) routerLoop() {
	defer s.done.Done()
	poller := zmq.NewPoller()
	// The monitor first: a disconnection is handled before the messages
	// that follow it (see receive).
	poller.Add(s.monitor, zmq.POLLIN)
	poller.Add(s.router, zmq.POLLIN)
	poller.Add(s.pull, zmq.POLLIN)
	var sent []outgoing
	for {
		sent = s.sendReplies(sent)
		select {
		case <-s.stop:
			return // Shutdown has let requests in flight finish
		default:
		}
		timeout := routerPoll
		if !s.out.sleep() {
			timeout = 0 // replies wait: only look what else does
		}
		polled, err := poller.Poll(timeout)
		s.out.wake()
		if err != nil {
			if zmq.AsErrno(err) == zmq.Errno(zmq.ETERM) {
				return
			}
			continue
		}
		// Take what is waiting on each socket before polling again: a
		// poll per message would make the poll the bottleneck.
		for _, p := range polled {
			switch p.Socket {
			case s.monitor:
				s.disconnections()
			case s.router:
				for n := 0; n < maxBatch && s.receive(); n++ {
				}
			case s.pull:
				for {
					if _, err := s.pull.RecvBytes(zmq.DONTWAIT); err != nil {
						break
					}
				}
			}
		}
	}
}

// sendReplies sends the replies the outbox holds out of the ROUTER; it
// takes the slice it returned last time, to reuse.
func (s *Server) sendReplies(spare []outgoing) []outgoing {
	q := s.out.take(spare)
	for _, out := range q {
		s.send(out)
	}
	return q
}

// send sends one reply out of the ROUTER. DONTWAIT: a peer that stopped
// reading loses its reply, no one else waits for it.
func (s *Server) send(out outgoing) {
	sent := true
	for _, f := range out.envelope {
		if _, err := s.router.SendBytes(f, zmq.SNDMORE|zmq.DONTWAIT); err != nil {
			sent = false
			break
		}
	}
	if sent {
		s.router.SendBytes(out.payload, zmq.DONTWAIT)
	}
	if out.buf != nil && cap(out.payload) <= maxPooledReply {
		*out.buf = out.payload[:0]
		replyBufs.Put(out.buf)
	}
}

// receive reads one message from the ROUTER, if one is waiting, and
// hands it to a worker; it reports whether there was one.
func (s *Server) receive() bool {
	frames, c, known, err := s.recvMessage()
	if err != nil || len(frames) == 0 {
		return false
	}
	if !known {
		// A descriptor is reused once closed: the closing of the
		// connection that had it before is reported (and its requests
		// cancelled) before this message's request is registered under
		// it. The monitor is told of a close before the descriptor is
		// released, so reading it now sees any close that came before
		// this message. A connection's later messages need not look
		// again (see conns).
		s.disconnections()
		if c.fd >= 0 && s.closedFDs[c.fd] {
			// Its connection closed before the message was taken in,
			// and no connection has had the descriptor since: its
			// requests were cancelled already, and a reply could not
			// reach it. Filed now, it would run until another
			// connection with the descriptor closed.
			return true
		}
		s.conns.add(c.peer, c.fd)
	}
	env, payload, err := splitEnvelope(frames)
	if err != nil {
		s.reply(outgoing{envelope: env}, map[string]any{"id": nil, "ok": false,
			"error": map[string]any{"kind": string(command.KindBadRequest), "message": err.Error()}})
		return true
	}
	s.inflight.Add(1) // before the check, so Shutdown never misses it
	if s.closing.Load() {
		s.inflight.Add(-1)
		s.reply(outgoing{envelope: env}, map[string]any{"id": requestID(payload, s.opts.Limits), "ok": false,
			"error": map[string]any{"kind": string(command.KindShuttingDown), "message": protocol.ErrServerClosing.Error()}})
		return true
	}
	id, hasID := findRequestID(payload, s.opts.Limits)
	j := job{env, payload, s.reqs.start(s.base, c.fd, c.peer, env, id, hasID)}
	select {
	case s.work <- j:
	default:
		go s.extraWorker(j) // all workers busy: never block the router
	}
	return true
}

// fdProperty is the message property libzmq gives the file descriptor of
// the connection a message came on.
const fdProperty = "__fd"

// recvMessage reads one whole message, if one is waiting, with the
// connection it came on: its routing identity and file descriptor (-1
// when libzmq does not say), and whether that connection was known (see
// conns). The descriptor of an unknown connection is read from the
// second frame: after a poll, the ROUTER hands out the routing-identity
// frame it made itself without the connection's properties.
func (s *Server) recvMessage() (frames [][]byte, c conn, known bool, err error) {
	first, err := s.router.RecvBytes(zmq.DONTWAIT)
	if err != nil {
		return nil, conn{}, false, err
	}
	if c, known = s.conns.lookup(first); !known {
		c = conn{peer: string(first), fd: -1}
	}
	frames = make([][]byte, 1, 3) // identity, (delimiter,) payload
	frames[0] = first
	for {
		// The ROUTER puts the identity before every message a peer
		// sends, which has a frame at least: only after that frame is
		// it worth asking whether more follow.
		if len(frames) > 1 {
			if more, err := s.router.GetRcvmore(); err != nil || !more {
				return frames, c, known, nil
			}
		}
		var frame []byte
		if len(frames) == 1 && !known {
			var props map[string]string
			frame, props, err = s.router.RecvBytesWithMetadata(0, fdProperty)
			if n, perr := strconv.Atoi(props[fdProperty]); perr == nil {
				c.fd = n
			}
		} else {
			frame, err = s.router.RecvBytes(0)
		}
		if err != nil {
			return frames, c, known, err
		}
		frames = append(frames, frame)
	}
}

// disconnections reads the monitor's reports of closed connections and
// cancels the requests that came on them.
func (s *Server) disconnections() {
	for {
		// receive calls this for every new connection's first message,
		// and there is almost never a report: asking whether one is
		// waiting (ZMQ_EVENTS, which takes in the socket's pending
		// commands as a receive does) is one call into libzmq where a
		// receive that finds nothing is three.
		if st, err := s.monitor.GetEvents(); err != nil || st&zmq.POLLIN == 0 {
			return
		}
		ev, _, fd, err := s.monitor.RecvEvent(zmq.DONTWAIT)
		if err != nil {
			return
		}
		if ev == zmq.EVENT_ACCEPTED {
			delete(s.closedFDs, fd)
		}
		if ev == zmq.EVENT_DISCONNECTED {
			s.closedFDs[fd] = true
			s.conns.closed(fd)
			if n := s.reqs.disconnected(fd); n > 0 {
				s.log.Info("client disconnected: its requests are cancelled", "requests", n)
			}
		}
	}
}

// job is one received request.
type job struct {
	env     [][]byte
	payload []byte
	req     *inflight
}

// worker handles requests until the server stops; long-lived workers
// save starting (and growing the stack of) a goroutine per request.
func (s *Server) worker() {
	for {
		select {
		case j := <-s.work:
			s.handleJob(j)
		case <-s.stop:
			return
		}
	}
}

// extraIdle is how long a worker started beyond Options.Workers waits
// for another request before it ends.
const extraIdle = time.Second

// extraWorker handles j, started because every worker was busy, then
// handles requests as a worker does until none has come for extraIdle.
func (s *Server) extraWorker(j job) {
	s.handleJob(j)
	idle := time.NewTimer(extraIdle)
	defer idle.Stop()
	for {
		select {
		case j := <-s.work:
			s.handleJob(j)
			idle.Reset(extraIdle)
		case <-idle.C:
			return
		case <-s.stop:
			return
		}
	}
}

// splitEnvelope separates routing frames from the one payload frame:
// [identity, payload] from a DEALER, [identity, "", payload] from a REQ.
func splitEnvelope(frames [][]byte) ([][]byte, []byte, error) {
	switch {
	case len(frames) == 2:
		return frames[:1], frames[1], nil
	case len(frames) == 3 && len(frames[1]) == 0:
		return frames[:2], frames[2], nil
	case len(frames) < 2:
		return frames, nil, fmt.Errorf("%w: empty message (want one msgpack frame)", command.ErrBadRequest)
	}
	env := frames[:1]
	if len(frames[1]) == 0 {
		env = frames[:2] // a REQ client: keep its delimiter, or it drops the reply
	}
	return env, nil, fmt.Errorf("%w: %d frames (want one msgpack frame, after an empty delimiter from REQ sockets)", command.ErrBadRequest, len(frames)-1)
}

func (s *Server) handleJob(j job) {
	defer s.inflight.Add(-1)
	env, payload := j.env, j.payload
	var id any
	defer func() {
		// A bug in a handler answers its request with an error; it never
		// takes the server down for everyone else.
		if p := recover(); p != nil {
			s.log.Error("request handler panicked", "panic", p, "stack", string(debug.Stack()))
			s.reqs.finish(j.req)
			if j.req.claimReply() {
				s.reply(outgoing{envelope: env}, map[string]any{"id": id, "ok": false,
					"error": map[string]any{"kind": string(command.KindInternal), "message": fmt.Sprintf("internal error: %v", p)}})
			}
		}
	}()
	req, err := DecodeRequest(payload, s.opts.Limits)
	var reply map[string]any
	if err != nil {
		// The id may still be readable: a client matching replies to
		// requests in flight needs it most when its request was refused.
		reply = map[string]any{"id": requestID(payload, s.opts.Limits), "ok": false,
			"error": map[string]any{"kind": string(command.KindBadRequest), "message": err.Error()}}
	} else {
		id = req["id"]
		reply = protocol.Handle(&j.req.ctx, s.service, req)
	}
	// Unregistered before the reply goes: a client that has its reply
	// never finds the request running any more.
	s.reqs.finish(j.req)
	if j.req.claimReply() {
		s.reply(outgoing{envelope: env}, reply)
	}
}

// reply encodes reply and queues it for the router goroutine to send to
// out's envelope. It never blocks; any goroutine may call it.
func (s *Server) reply(out outgoing, reply map[string]any) {
	bp := replyBufs.Get().(*[]byte)
	b, err := appendStringMap((*bp)[:0], reply, 0)
	if err != nil {
		b, _ = appendStringMap((*bp)[:0], map[string]any{"id": reply["id"], "ok": false,
			"error": map[string]any{"kind": string(command.KindInternal), "message": "encode reply: " + err.Error()}}, 0)
	}
	out.payload, out.buf = b, bp
	if s.out.put(out) {
		select {
		case s.bell <- struct{}{}:
		default: // rung already
		}
	}
}

// ringLoop owns the PUSH socket: it wakes the router goroutine when a
// worker finds it asleep with a reply to send (see outbox).
func (s *Server) ringLoop() {
	defer s.done.Done()
	for {
		select {
		case <-s.bell:
			s.push.SendBytes(nil, zmq.DONTWAIT)
		case <-s.stop:
			return
		}
	}
}

// publisherLoop owns the PUB socket.
func (s *Server) publisherLoop() {
	defer s.done.Done()
	for {
		select {
		case ev := <-s.events:
			s.pub.SendMessageDontwait(ev.topic, ev.payload)
		case <-s.stop:
			return
		}
	}
}

// Shutdown stops taking requests, lets those in flight finish until ctx
// ends (the grace period), then cancels those still running, answers
// them "shutting_down", and stops the server. Requests arriving
// meanwhile are answered "shutting_down" at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.idle(ctx)
	err := ctx.Err()
	if s.inflight.Load() > 0 {
		s.log.Warn("shutdown: cancelling the requests still running", "requests", s.inflight.Load())
		s.reqs.stop(errStoppedRunning)
		// A cancelled execution stops within milliseconds; a handler
		// that ignores its context is not waited for long.
		cctx, cancel := context.WithTimeout(context.Background(), cancelledStop)
		s.idle(cctx)
		cancel()
		// Those that did not stop in time are answered now, so that no
		// client waits for a reply that will never come; whatever they
		// do later is not sent.
		for _, req := range s.reqs.running() {
			if req.claimReply() {
				s.log.Warn("shutdown: a request did not stop when cancelled; answered shutting_down without it")
				s.reply(outgoing{envelope: req.env}, map[string]any{"id": req.id, "ok": false,
					"error": protocol.ErrorMap(errStoppedRunning)})
			}
		}
	}
	// Let the router forward the last replies before stopping.
	time.Sleep(100 * time.Millisecond)
	s.Close()
	return err
}

// cancelledStop is how long Shutdown waits for cancelled requests to
// answer.
const cancelledStop = 2 * time.Second

// idle waits until no request is being handled, or ctx ends.
func (s *Server) idle(ctx context.Context) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for s.inflight.Load() > 0 && ctx.Err() == nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
}

// closeMonitor stops the ROUTER's monitor before closing the socket that
// reads it. libzmq sends monitor events from its I/O thread with a
// blocking send: a disconnection reported once the reader is gone would
// block that thread for good, and with it every socket of the process's
// context (each server started after would never answer). What is
// waiting is read first, so the stop never waits on a full queue.
func (s *Server) closeMonitor() {
	if s.router != nil {
		if s.monitor != nil {
			s.disconnections()
		}
		s.router.Monitor("", 0)
	}
	if s.monitor != nil {
		s.monitor.Close()
	}
}

// Close stops the server at once: requests still running see their
// context cancelled. Safe to call twice, and before Serve.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.stop)
		s.reqs.stop(errStoppedRunning)
		if s.served.CompareAndSwap(false, true) {
			s.closeSockets() // Serve never ran: nothing else will
		}
	})
	return nil
}

func (s *Server) closeSockets() {
	s.closeMonitor()
	for _, sock := range []*zmq.Socket{s.router, s.pull, s.push, s.pub} {
		if sock != nil {
			sock.Close()
		}
	}
}
