// Package protocol is batos's request protocol, apart from any transport:
// the commands a client may send, how their arguments are read, how their
// results and errors are written as plain data (docs/protocol.md), and
// Remote, the command layer's Service for a client, over any transport's
// Caller. The ZeroMQ bridge (zmqbridge) and the HTTP API both serve
// through Handle, so the two cannot answer the same request differently;
// each transport only encodes the plain data (msgpack, JSON) and adds what
// is its own (the bridge's cancel).
package protocol
