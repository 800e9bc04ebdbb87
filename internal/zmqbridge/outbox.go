package zmqbridge

import (
	"sync"
	"sync/atomic"
)

// outbox holds the replies workers have made until the router goroutine,
// which owns the ROUTER socket, sends them. The router goroutine takes
// them all at once each time round its loop, so a reply costs a lock and
// an append where a message passed through an inproc socket cost a dozen
// calls into libzmq. Only a router goroutine asleep in its poll needs
// waking for a reply: the worker that finds it so rings the bell (see
// Server.ringLoop), once, however many replies follow.
type outbox struct {
	mu    sync.Mutex
	queue []outgoing
	// asleep is set while the router goroutine polls, or is about to,
	// with no reply queued; the first reply queued then clears it and
	// wakes the router.
	asleep atomic.Bool
}

// put queues a reply; it reports whether the caller must wake the router
// goroutine. Safe for concurrent use.
func (o *outbox) put(out outgoing) (wake bool) {
	o.mu.Lock()
	o.queue = append(o.queue, out)
	o.mu.Unlock()
	// After the append: either the router sees the reply before it
	// sleeps, or this sees it asleep (sleep sets asleep before it looks).
	return o.asleep.CompareAndSwap(true, false)
}

// take hands the router goroutine the queued replies, and keeps spare
// (emptied) as the next queue, so two slices serve for good.
func (o *outbox) take(spare []outgoing) []outgoing {
	clear(spare)
	o.mu.Lock()
	q := o.queue
	o.queue = spare[:0]
	o.mu.Unlock()
	return q
}

// sleep tells the outbox the router goroutine is about to poll; it
// reports false, and the router must not sleep, when replies are queued.
func (o *outbox) sleep() bool {
	o.asleep.Store(true)
	o.mu.Lock()
	n := len(o.queue)
	o.mu.Unlock()
	if n > 0 {
		o.asleep.Store(false)
		return false
	}
	return true
}

// wake tells the outbox the router goroutine is back from its poll.
func (o *outbox) wake() { o.asleep.Store(false) }
