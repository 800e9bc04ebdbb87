package zmqbridge

// Connections. The registry (cancel.go) files each request under the file
// descriptor of the connection it came on, so that the monitor's report of
// that descriptor closing cancels it. Reading a message's descriptor (a
// message property) and asking the monitor whether a report waits cost a
// dozen calls into libzmq and a system call per message; both are needed
// only for a connection's first message. The router goroutine remembers,
// by routing identity, the descriptor of each connection it has had a
// message from, until the monitor reports the descriptor closed.
//
// Only identities the ROUTER made itself are remembered: it makes a new
// one for every connection and never gives one out twice, so a message
// from a remembered identity came on the same connection as the first,
// and any close of its descriptor the monitor has not reported yet is that
// connection's own (a close of an earlier connection that had the same
// descriptor was reported before the first message was filed). A client
// that sets its own identity may reconnect under it on another descriptor
// before the old one's close is reported: its messages are looked at as
// first messages, every time. (One that sets its identity to one the
// ROUTER made for a connection now closed can only misfile its own
// requests.)

// conns is the router goroutine's record of the connections it has had a
// message from. Only the router goroutine uses it (and Close, once that
// goroutine has stopped).
type conns struct {
	byID map[string]conn // by routing identity
	byFD map[int]string  // descriptor → routing identity
}

// conn is a connection remembered.
type conn struct {
	peer string // its routing identity, kept so its messages need not allocate it
	fd   int
}

func newConns() *conns {
	return &conns{byID: map[string]conn{}, byFD: map[int]string{}}
}

// lookup reports the connection with routing identity id, if it is
// remembered.
func (c *conns) lookup(id []byte) (conn, bool) {
	k, ok := c.byID[string(id)]
	return k, ok
}

// add remembers that peer's connection has descriptor fd, once the
// monitor's reports up to its first message have been read; an identity
// the client chose, or an unknown descriptor, is not remembered.
func (c *conns) add(peer string, fd int) {
	if fd < 0 || !madeByRouter(peer) {
		return
	}
	if old, ok := c.byFD[fd]; ok {
		delete(c.byID, old)
	}
	c.byID[peer] = conn{peer, fd}
	c.byFD[fd] = peer
}

// closed forgets the connection that had descriptor fd.
func (c *conns) closed(fd int) {
	if peer, ok := c.byFD[fd]; ok {
		delete(c.byID, peer)
		delete(c.byFD, fd)
	}
}

// madeByRouter reports whether a routing identity is one a ROUTER made:
// a zero byte, then a 32-bit count. (libzmq reserves identities starting
// with a zero byte for itself.)
func madeByRouter(peer string) bool { return len(peer) == 5 && peer[0] == 0 }
