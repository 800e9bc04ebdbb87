package zmqbridge

import "testing"

// TestConns: a connection is remembered by an identity the ROUTER made,
// never by one the client chose, and forgotten when its descriptor
// closes or another connection is given it.
func TestConns(t *testing.T) {
	made := func(n byte) string { return string([]byte{0, 0, 0, 0, n}) }
	c := newConns()
	c.add(made(1), 7)
	c.add("client-chosen", 8)
	c.add(string([]byte{1, 0, 0, 0, 2}), 9) // five bytes, no leading zero: chosen
	c.add(made(3), -1)                      // descriptor unknown
	if got, ok := c.lookup([]byte(made(1))); !ok || got != (conn{made(1), 7}) {
		t.Errorf("lookup(made 1) = %v, %v; want fd 7", got, ok)
	}
	for _, id := range []string{"client-chosen", string([]byte{1, 0, 0, 0, 2}), made(3), made(4)} {
		if got, ok := c.lookup([]byte(id)); ok {
			t.Errorf("lookup(%q) = %v; want nothing remembered", id, got)
		}
	}
	c.closed(7)
	if got, ok := c.lookup([]byte(made(1))); ok {
		t.Errorf("after its descriptor closed, lookup = %v; want it forgotten", got)
	}
	c.add(made(5), 7)
	c.add(made(6), 7) // the descriptor's close was missed: the newer connection has it
	if got, ok := c.lookup([]byte(made(5))); ok {
		t.Errorf("lookup(made 5) = %v; want it forgotten for made 6", got)
	}
	if got, ok := c.lookup([]byte(made(6))); !ok || got.fd != 7 {
		t.Errorf("lookup(made 6) = %v, %v; want fd 7", got, ok)
	}
	if len(c.byID) != 1 || len(c.byFD) != 1 {
		t.Errorf("%d identities and %d descriptors kept; want 1 each", len(c.byID), len(c.byFD))
	}
}
