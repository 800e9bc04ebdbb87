package zmqbridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"

	"batos/internal/protocol"
)

// Client is a DEALER connection to a bridge, for batos's own CLI and
// tools. Calls may be made from many goroutines; one socket carries them
// all, used under a mutex, so calls are serialised. A reply that does not
// come within the call's deadline is abandoned (a later reply with its id
// is discarded).
type Client struct {
	mu     sync.Mutex
	sock   *zmq.Socket
	nextID int64
}

// ClientOptions configures Dial; nil means no CURVE.
type ClientOptions struct {
	// ServerPublic, ClientPublic and ClientSecret enable CURVE.
	ServerPublic, ClientPublic, ClientSecret string
}

// Dial connects to a bridge's request endpoint. ZeroMQ connects in the
// background and reconnects after a restart; a request sent meanwhile is
// queued until the server is there.
func Dial(addr string, o *ClientOptions) (*Client, error) {
	sock, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		return nil, err
	}
	sock.SetLinger(0)
	if o != nil && o.ServerPublic != "" {
		if err := sock.ClientAuthCurve(o.ServerPublic, o.ClientPublic, o.ClientSecret); err != nil {
			sock.Close()
			return nil, fmt.Errorf("CURVE client keys: %w", err)
		}
	}
	if err := sock.Connect(addr); err != nil {
		sock.Close()
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	return &Client{sock: sock}, nil
}

// ErrTimeout is returned when no reply came before the context's deadline.
var ErrTimeout = errors.New("no reply in time")

// Call sends a request (command plus arguments) and waits for its reply,
// until ctx ends. It returns the result, or the server's error as a
// *command.Error. When ctx ends first, the request is cancelled on the
// server; when ctx was cancelled (rather than timed out), Call waits a
// moment for the reply that says how the request ended.
func (c *Client) Call(ctx context.Context, command string, args map[string]any) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	id := c.nextID
	req := map[string]any{"id": id, "command": command}
	for k, v := range args {
		req[k] = v
	}
	b, err := EncodeReply(req)
	if err != nil {
		return nil, err
	}
	if _, err := c.sock.SendBytes(b, 0); err != nil {
		return nil, fmt.Errorf("send request: %w", err)
	}
	sent := time.Now()
	reply, err := c.await(ctx, id)
	if err == nil {
		return reply.result()
	}
	if ctx.Err() == nil {
		return nil, err
	}
	// The caller gave up: the server stops the request rather than run it
	// for no one.
	c.cancel(id)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, fmt.Errorf("%w (%s); the request is cancelled in the server", ErrTimeout, time.Since(sent).Round(time.Second))
	}
	if errors.Is(context.Cause(ctx), protocol.ErrServerGone) {
		return nil, context.Cause(ctx) // no one is left to answer
	}
	// Cancelled (Ctrl-C): say what became of the request, which is
	// either cancelled or had finished first.
	wctx, stop := context.WithTimeout(context.Background(), cancelReplyWait)
	defer stop()
	if reply, err := c.await(wctx, id); err == nil {
		return reply.result()
	}
	return nil, fmt.Errorf("interrupted (%w); the server did not say within %s how the request ended", context.Cause(ctx), cancelReplyWait)
}

// cancelReplyWait is how long a cancelled call waits to hear how its
// request ended.
const cancelReplyWait = 2 * time.Second

// reply is a decoded reply.
type reply map[string]any

func (r reply) result() (any, error) {
	if ok, _ := r["ok"].(bool); !ok {
		e, _ := r["error"].(map[string]any)
		return nil, protocol.ReplyError(e)
	}
	return r["result"], nil
}

// await waits for the reply to request id until ctx ends, dropping
// replies to other (abandoned) requests.
func (c *Client) await(ctx context.Context, id int64) (reply, error) {
	for {
		wait := 100 * time.Millisecond
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			wait = max(time.Until(dl), time.Millisecond)
		}
		c.sock.SetRcvtimeo(wait)
		frame, err := c.sock.RecvBytes(0)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		r, err := DecodeRequest(frame, DefaultLimits)
		if err != nil {
			return nil, fmt.Errorf("undecodable reply: %w", err)
		}
		if rid, _ := r["id"].(int64); rid != id {
			continue // a late reply to an abandoned call, or to a cancel
		}
		return r, nil
	}
}

// cancel asks the server to cancel request id; its reply, when it comes,
// is dropped like any other late one.
func (c *Client) cancel(id int64) {
	c.nextID++
	b, err := EncodeReply(map[string]any{"id": c.nextID, "command": "cancel", "request": id})
	if err == nil {
		c.sock.SendBytes(b, zmq.DONTWAIT)
	}
}

// Close closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sock.Close()
}
