package zmqbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"batos/internal/command"
	"batos/internal/protocol"
)

// Cancellation. Every request runs under a context of its own, derived
// from the server's. Three things end it before the request does:
//
//   - the client's `cancel` request naming its id, on the same connection
//     (ids are the clients' own, so two connections may use the same one);
//   - the client's connection closing: ZeroMQ does not tell a ROUTER that
//     a peer went away, but its socket monitor reports the closed file
//     descriptor, and each message carries the descriptor it came on
//     (the "__fd" property), so the requests that came on it are found;
//   - the server's shutdown, once its grace period is over.
//
// The VM stops a cancelled execution within milliseconds and its
// transaction is not committed; a request that had committed when the
// cancellation came answers as it would have.

// The causes a request's context is cancelled with: they decide its
// reply's kind and message.
var (
	errCancelledByClient = fmt.Errorf("%w by the client", command.ErrCancelled)
	errClientGone        = fmt.Errorf("%w: the client's connection closed", command.ErrCancelled)
	errStoppedRunning    = fmt.Errorf("%w: the server stopped while the request ran (its grace period was over)", command.ErrShuttingDown)
)

// inflight is one request being handled.
type inflight struct {
	fd     int    // the connection's file descriptor; -1 when not known
	peer   string // the connection's routing identity
	key    string // the id, encoded; "" when it has none that can be read
	ctx    requestCtx
	cancel context.CancelCauseFunc
	// finished is set, under the registry's lock, once it is forgotten.
	finished bool
	// env and id address the reply; answered is set by whoever sends
	// it: the request's worker, or a shutdown that could not wait for it.
	env      [][]byte
	id       any
	answered atomic.Bool
}

// claimReply reports whether the caller is the one to answer req: the
// first to claim it. A reply is sent once, whoever sends it.
func (req *inflight) claimReply() bool { return req.answered.CompareAndSwap(false, true) }

// requestCtx is the context a request runs under: its own cancellation,
// and the caller the cancel command looks for (one value where two
// context.WithValue layers cost an allocation each).
type requestCtx struct {
	context.Context
	caller caller
}

func (c *requestCtx) Value(key any) any {
	if _, ok := key.(callerKey); ok {
		return c.caller
	}
	return c.Context.Value(key)
}

// registry tracks the requests being handled by connection and by id.
type registry struct {
	mu   sync.Mutex
	all  map[*inflight]struct{}
	byFD map[int]map[*inflight]struct{}
	byID map[requestKey][]*inflight
	// stopped, once set, cancels every request running and every one
	// registered after.
	stopped error
}

type requestKey struct{ peer, id string }

func newRegistry() *registry {
	return &registry{all: map[*inflight]struct{}{}, byFD: map[int]map[*inflight]struct{}{}, byID: map[requestKey][]*inflight{}}
}

// start registers a request from the envelope env, from peer (the
// routing identity env starts with), with the given id (hasID false when
// it has none that can be read), as it is received from the connection on
// fd, under a context derived from base, which nothing cancels: the
// registry does (stop). It runs on the router goroutine, in the order
// requests arrive, so a cancel sent right after its request always finds
// it.
func (r *registry) start(base context.Context, fd int, peer string, env [][]byte, id any, hasID bool) *inflight {
	ctx, cancel := context.WithCancelCause(base)
	req := &inflight{fd: fd, peer: peer, env: env, id: id, cancel: cancel}
	req.ctx = requestCtx{ctx, caller{r, req}}
	if hasID {
		if key, err := idKey(id); err == nil {
			req.key = key
		}
	}
	r.mu.Lock()
	if r.stopped != nil {
		cancel(r.stopped)
	}
	r.all[req] = struct{}{}
	if fd >= 0 {
		set := r.byFD[fd]
		if set == nil {
			set = map[*inflight]struct{}{}
			r.byFD[fd] = set
		}
		set[req] = struct{}{}
	}
	if req.key != "" {
		k := requestKey{req.peer, req.key}
		r.byID[k] = append(r.byID[k], req)
	}
	r.mu.Unlock()
	return req
}

// finish forgets req and releases its context; again, it does nothing.
func (r *registry) finish(req *inflight) {
	r.mu.Lock()
	if req.finished {
		r.mu.Unlock()
		return
	}
	req.finished = true
	delete(r.all, req)
	if set := r.byFD[req.fd]; set != nil {
		delete(set, req)
		if len(set) == 0 {
			delete(r.byFD, req.fd)
		}
	}
	if req.key != "" {
		k := requestKey{req.peer, req.key}
		list := r.byID[k]
		for i, other := range list {
			if other == req {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(r.byID, k)
		} else {
			r.byID[k] = list
		}
	}
	r.mu.Unlock()
	req.cancel(nil)
}

// disconnected cancels the requests that came on the closed descriptor
// fd, and reports how many there were.
func (r *registry) disconnected(fd int) int {
	r.mu.Lock()
	set := r.byFD[fd]
	delete(r.byFD, fd) // a new connection may be given the same number
	r.mu.Unlock()
	for req := range set {
		req.cancel(errClientGone)
	}
	return len(set)
}

// cancelID cancels the requests from peer with the given id, but not
// self (the cancel itself, should it carry the same id), and reports how
// many it found running.
func (r *registry) cancelID(peer string, id any, self *inflight) (int, error) {
	key, err := idKey(id)
	if err != nil {
		return 0, fmt.Errorf("%w: \"request\": %v", command.ErrBadRequest, err)
	}
	r.mu.Lock()
	var list []*inflight
	for _, req := range r.byID[requestKey{peer, key}] {
		if req != self {
			list = append(list, req)
		}
	}
	r.mu.Unlock()
	for _, req := range list {
		req.cancel(errCancelledByClient)
	}
	return len(list), nil
}

// stop cancels every request running, and every one registered after,
// with cause; after the first, it does nothing.
func (r *registry) stop(cause error) {
	r.mu.Lock()
	if r.stopped != nil {
		r.mu.Unlock()
		return
	}
	r.stopped = cause
	list := make([]*inflight, 0, len(r.all))
	for req := range r.all {
		list = append(list, req)
	}
	r.mu.Unlock()
	for _, req := range list {
		req.cancel(cause)
	}
}

// running lists the requests being handled.
func (r *registry) running() []*inflight {
	r.mu.Lock()
	defer r.mu.Unlock()
	list := make([]*inflight, 0, len(r.all))
	for req := range r.all {
		list = append(list, req)
	}
	return list
}

// idKey is an id's canonical encoding: ids sent as the same value, however
// the client's library encoded them, have the same key.
func idKey(id any) (string, error) {
	var buf [32]byte
	b, err := appendAt(buf[:0], id, 0)
	return string(b), err
}

// callerKey is the context key of the connection a request came on, for
// the cancel command.
type callerKey struct{}

type caller struct {
	reg *registry
	req *inflight // the cancel request itself
}

func init() {
	protocol.Register("cancel", []string{"request"}, func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		id, ok := req["request"]
		if !ok {
			return nil, fmt.Errorf("%w: \"request\" is required: the id of the request to cancel", command.ErrBadRequest)
		}
		c, ok := ctx.Value(callerKey{}).(caller)
		if !ok {
			return nil, fmt.Errorf("%w: cancel is a request to the bridge about its connection's requests", command.ErrBadRequest)
		}
		n, err := c.reg.cancelID(c.req.peer, id, c.req)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: no request with id %s is running on this connection (it may have finished)", command.ErrNotFound, idText(id))
		}
		return map[string]any{"cancelled": int64(n)}, nil
	})
}

// idText shows an id in a message as a client would write it: as JSON
// (null, 5, "a", [1, "x"], {"k": 1}).
func idText(id any) string {
	if b, err := json.Marshal(id); err == nil {
		return string(b)
	}
	return fmt.Sprint(id)
}
