package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"batos/internal/zmqbridge"
)

// benchNode is a "batos run" process on the bench's database.
type benchNode struct {
	cmd     *exec.Cmd
	req, ev string // its request and event endpoints
	logPath string // its stderr
	exited  chan struct{}
	waitErr error
	stopped bool
}

// nodeServing is the line batos run prints once it serves.
var nodeServing = regexp.MustCompile(`requests on (\S+), events on ([^\s,;]+)[,;]`)

// nodeStartTimeout bounds a node's start-up.
const nodeStartTimeout = time.Minute

// startNode runs "batos -store URL run" on free loopback ports, without
// HTTP or audits, its catalog's files in the bench's directory, and waits
// until it serves.
func (b *pgBencher) startNode(ctx context.Context, n int) (*benchNode, error) {
	logPath := filepath.Join(b.dir, fmt.Sprintf("node-%d.log", n))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(b.opts.Exe, "-store", b.nodesURL, "run",
		"-listen", "tcp://127.0.0.1:*", "-events", "tcp://127.0.0.1:*", "-http", "off", "-heartbeat", "0")
	// A database's nodes keep their catalog indexes in the user's cache
	// directory: the bench's own, removed with it.
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(b.dir, "cache"))
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node %s: %w", b.opts.Exe, err)
	}
	node := &benchNode{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	serving := make(chan []string, 1)
	go func() {
		// Read stdout to its end, so the node never blocks writing it.
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := nodeServing.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case serving <- m:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
		node.waitErr = cmd.Wait()
		close(node.exited)
	}()
	select {
	case m := <-serving:
		node.req, node.ev = m[1], m[2]
		return node, nil
	case <-node.exited:
		return nil, fmt.Errorf("node %d exited before serving: %v%s", n, node.waitErr, node.logTail())
	case <-time.After(nodeStartTimeout):
		node.stop()
		return nil, fmt.Errorf("node %d did not serve within %s%s", n, nodeStartTimeout, node.logTail())
	case <-ctx.Done():
		node.stop()
		return nil, ctx.Err()
	}
}

// stop interrupts the node, as Ctrl-C does, and waits for it to close
// its image; one that does not within a while is killed.
func (n *benchNode) stop() error {
	if n.stopped {
		return nil
	}
	n.stopped = true
	n.cmd.Process.Signal(os.Interrupt)
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		n.cmd.Process.Kill()
		<-n.exited
		return fmt.Errorf("node did not stop when interrupted; killed%s", n.logTail())
	}
	if n.waitErr != nil {
		return fmt.Errorf("node exited: %v%s", n.waitErr, n.logTail())
	}
	return nil
}

// logTail is the end of the node's log, to explain its failure.
func (n *benchNode) logTail() string {
	b, _ := os.ReadFile(n.logPath)
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	if s == "" {
		return ""
	}
	return ":\n" + s
}

// benchBumpSetup installs the method the node phases send and makes
// count objects whose parent is genesis, one per client; it answers
// their OIDs.
const benchBumpSetup = `
genesis.bench_bump = method("def bench_bump(self):\n    self.count = self.count + 1\n    return self.count")
genesis.bench_counters = [new(genesis, count = 0) for i in range(%d)]
[oid(c) for c in genesis.bench_counters]
`

// nodeCallTimeout bounds one request to a node.
const nodeCallTimeout = 30 * time.Second

// nodes measures batos run nodes on one database: clients on 1 node,
// then on sizes.Nodes nodes, each client bumping its own object, and the
// latency from a commit answered on one node to its event on another.
func (b *pgBencher) nodes(ctx context.Context) error {
	s := b.sizes
	var nodes []*benchNode
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	b.phase("nodes: starting node 1 (%s)", b.opts.Exe)
	first, err := b.startNode(ctx, 1)
	if err != nil {
		return err
	}
	nodes = append(nodes, first)
	counters, err := setupCounters(ctx, first.req, s.Nodes*s.ClientsPerNode)
	if err != nil {
		return err
	}
	if b.res.Nodes1TxPerS, err = b.nodeThroughput(ctx, nodes, counters); err != nil {
		return err
	}
	for n := 2; n <= s.Nodes; n++ {
		b.phase("nodes: starting node %d", n)
		node, err := b.startNode(ctx, n)
		if err != nil {
			return err
		}
		nodes = append(nodes, node)
	}
	if b.res.NodesNTxPerS, err = b.nodeThroughput(ctx, nodes, counters); err != nil {
		return err
	}
	if err := b.latency(ctx, nodes[0], nodes[1], counters[0]); err != nil {
		return err
	}
	b.phase("nodes: stopping %d nodes", len(nodes))
	for _, n := range nodes {
		if err := n.stop(); err != nil {
			return err
		}
	}
	return nil
}

// setupCounters installs bench_bump and n counters through the node at
// addr and returns the counters' OIDs ("oid:7").
func setupCounters(ctx context.Context, addr string, n int) ([]string, error) {
	c, err := zmqbridge.Dial(addr, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, nodeCallTimeout)
	defer cancel()
	got, err := c.Call(ctx, "eval", map[string]any{"code": fmt.Sprintf(benchBumpSetup, n)})
	if err != nil {
		return nil, fmt.Errorf("install bench_bump and its counters: %w", err)
	}
	res, _ := got.(map[string]any)
	list, _ := res["value"].([]any)
	oids := make([]string, 0, len(list))
	for _, v := range list {
		if s, ok := v.(string); ok {
			oids = append(oids, s)
		}
	}
	if len(oids) != n {
		return nil, fmt.Errorf("the counters' setup answered %v, want %d OIDs", got, n)
	}
	return oids, nil
}

// nodeThroughput has ClientsPerNode clients on each node send bench_bump
// to their own counters, one send at a time each, for the phase; it
// returns the sends per second of all of them.
func (b *pgBencher) nodeThroughput(ctx context.Context, nodes []*benchNode, counters []string) (float64, error) {
	s := b.sizes
	clients := make([]*zmqbridge.Client, 0, len(nodes)*s.ClientsPerNode)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for _, n := range nodes {
		for range s.ClientsPerNode {
			c, err := zmqbridge.Dial(n.req, nil)
			if err != nil {
				return 0, err
			}
			clients = append(clients, c)
		}
	}
	b.phase("nodes: %d node(s), %d clients each, for %s", len(nodes), s.ClientsPerNode, benchSeconds(s.PhaseS))
	p, err := measureFor(ctx, benchSeconds(s.PhaseS), len(clients), func(ctx context.Context, i int) error {
		return bump(ctx, clients[i], counters[i])
	})
	if err != nil {
		return 0, fmt.Errorf("bench_bump through %d node(s): %w", len(nodes), err)
	}
	b.phase("nodes: %d node(s): %.0f tx/s", len(nodes), p.perS())
	return p.perS(), nil
}

// bump sends bench_bump to the counter through c and checks it answered
// a count.
func bump(ctx context.Context, c *zmqbridge.Client, counter string) error {
	ctx, cancel := context.WithTimeout(ctx, nodeCallTimeout)
	defer cancel()
	got, err := c.Call(ctx, "send", map[string]any{"target": counter, "selector": "bench_bump"})
	if err != nil {
		return err
	}
	if res, _ := got.(map[string]any); res == nil {
		return fmt.Errorf("bench_bump to %s answered %v", counter, got)
	} else if _, ok := res["value"].(int64); !ok {
		return fmt.Errorf("bench_bump to %s answered %v, not a count", counter, got)
	}
	return nil
}

// eventTimeout bounds the wait for a commit's event.
const eventTimeout = 10 * time.Second

// subscribeCounter subscribes to node's commit events of sends to
// counter; it hands each on ch, stamped with when it arrived.
func subscribeCounter(node *benchNode, counter string, ch chan<- zmqbridge.Event) (*zmqbridge.Subscriber, error) {
	return zmqbridge.Subscribe(node.ev, "commit.send", func(ev zmqbridge.Event) {
		if ev.Fields["target"] == counter {
			select {
			case ch <- ev:
			default: // the bench reads every event it waits for; others may go
			}
		}
	})
}

// latency sends bench_bump to counter through node a, one send at a
// time, and times each commit's event arriving on node b's SUB socket
// against the send's reply on a.
func (b *pgBencher) latency(ctx context.Context, a, other *benchNode, counter string) error {
	onB := make(chan zmqbridge.Event, 1024)
	sub, err := subscribeCounter(other, counter, onB)
	if err != nil {
		return err
	}
	defer sub.Close()
	c, err := zmqbridge.Dial(a.req, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	// A SUB socket sees nothing before its subscription reaches the
	// publisher: send until an event comes through.
	b.phase("latency: waiting for node 2's SUB socket to receive node 1's commits")
	joined := false
	for deadline := time.Now().Add(eventTimeout); !joined && time.Now().Before(deadline); {
		if err := bump(ctx, c, counter); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
		joined = len(onB) > 0
	}
	if !joined {
		return fmt.Errorf("node 2's event socket published none of node 1's commits in %s", eventTimeout)
	}
	b.phase("latency: %d sends through node 1, each commit's event on node 2", b.sizes.Samples)
	var replyToB, sendToB, replies []time.Duration
	for range b.sizes.Samples {
		drain(onB)
		sent := time.Now()
		if err := bump(ctx, c, counter); err != nil {
			return err
		}
		replied := time.Now()
		ev, err := awaitEvent(ctx, onB, "node 2")
		if err != nil {
			return err
		}
		if ev.At.Before(replied) {
			b.res.EventsBeforeReply++
		}
		replyToB = append(replyToB, ev.At.Sub(replied))
		sendToB = append(sendToB, ev.At.Sub(sent))
		replies = append(replies, replied.Sub(sent))
	}
	r := b.res
	r.EventP50Ms, r.EventP90Ms = quantileMs(replyToB, 0.5), quantileMs(replyToB, 0.9)
	r.SendToEventP50Ms, r.SendToEventP90Ms = quantileMs(sendToB, 0.5), quantileMs(sendToB, 0.9)
	r.ReplyP50Ms = quantileMs(replies, 0.5)
	b.phase("latency: reply on A → event on B p50 %.3f ms, p90 %.3f ms; send on A → event on B p50 %.3f ms, p90 %.3f ms",
		r.EventP50Ms, r.EventP90Ms, r.SendToEventP50Ms, r.SendToEventP90Ms)
	return nil
}

// awaitEvent waits for the next event on ch.
func awaitEvent(ctx context.Context, ch <-chan zmqbridge.Event, node string) (zmqbridge.Event, error) {
	select {
	case ev := <-ch:
		return ev, nil
	case <-time.After(eventTimeout):
		return zmqbridge.Event{}, fmt.Errorf("%s published no event of node 1's commit in %s", node, eventTimeout)
	case <-ctx.Done():
		return zmqbridge.Event{}, ctx.Err()
	}
}

// drain empties ch of what it holds now.
func drain(ch chan zmqbridge.Event) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
