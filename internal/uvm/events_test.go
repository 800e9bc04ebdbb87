package uvm_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"batos/internal/command"
	"batos/internal/cycle"
	"batos/internal/gguf/gguftest"
	"batos/internal/heartbeat"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/protocol"
	"batos/internal/store"
	"batos/internal/uvm"
	"batos/internal/zmqbridge"
)

// commitEvent is a commit event as a subscriber reads it.
type commitEvent struct {
	topic   string
	tid     store.TID
	oids    []store.OID
	payload map[string]any
}

// subscriber reads the commit events of a bridge on a real SUB socket.
type subscriber struct {
	mu     sync.Mutex
	events []commitEvent
	bad    []string
	stop   chan struct{}
	done   chan struct{}
}

func subscribe(t *testing.T, addr string) *subscriber {
	t.Helper()
	sock, err := zmq.NewSocket(zmq.SUB)
	if err != nil {
		t.Fatal(err)
	}
	if err := sock.Connect(addr); err != nil {
		t.Fatal(err)
	}
	sock.SetSubscribe("commit.")
	sock.SetRcvtimeo(20 * time.Millisecond)
	s := &subscriber{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer sock.Close()
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			frames, err := sock.RecvMessageBytes(0)
			if err != nil {
				continue
			}
			s.add(frames)
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *subscriber) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

func (s *subscriber) add(frames [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(frames) != 2 {
		s.bad = append(s.bad, fmt.Sprintf("%d frames", len(frames)))
		return
	}
	p, err := zmqbridge.DecodeRequest(frames[1], zmqbridge.DefaultLimits)
	if err != nil {
		s.bad = append(s.bad, err.Error())
		return
	}
	e := commitEvent{topic: string(frames[0]), payload: p}
	tid, _ := p["tid"].(string)
	if e.tid, err = store.ParseTID(tid); err != nil {
		s.bad = append(s.bad, fmt.Sprintf("%s: tid %v", e.topic, p["tid"]))
	}
	oids, _ := p["oids"].([]any)
	for _, o := range oids {
		ref, ok := o.(image.Ref)
		if !ok {
			s.bad = append(s.bad, fmt.Sprintf("%s: oid %T %v, want a reference", e.topic, o, o))
			continue
		}
		e.oids = append(e.oids, store.OID(ref))
	}
	for _, k := range []string{"user", "description"} {
		if _, ok := p[k].(string); !ok {
			s.bad = append(s.bad, fmt.Sprintf("%s: %s is %T", e.topic, k, p[k]))
		}
	}
	s.events = append(s.events, e)
}

func (s *subscriber) snapshot() []commitEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// serveForEvents serves a fresh image with a scripted mind on a real
// bridge, and returns the UVM, a client and a subscriber that already
// receives events (a SUB joins late: the first commits are waited for).
func serveForEvents(t *testing.T, respond func(context.Context, *llm.ChatRequest) (llmtest.Reply, error)) (*uvm.UVM, *protocol.Remote, *subscriber) {
	t.Helper()
	return serveForEventsEvery(t, respond, 0)
}

// serveForEventsEvery is serveForEvents with the heartbeat auditing
// every beat (0: never).
func serveForEventsEvery(t *testing.T, respond func(context.Context, *llm.ChatRequest) (llmtest.Reply, error), beat time.Duration) (*uvm.UVM, *protocol.Remote, *subscriber) {
	t.Helper()
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: respond}}
	type ready struct {
		u       *uvm.UVM
		req, ev string
	}
	readyc := make(chan ready, 1)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	path := filepath.Join(t.TempDir(), "image.db") // removed after the cleanup below
	go func() {
		served <- uvm.Serve(ctx, path, &uvm.ServeOptions{
			Bridge:    zmqbridge.Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*"},
			FindMind:  func(context.Context, *uvm.UVM) (*mind.Server, error) { return server, nil },
			Cycle:     &cycle.Options{MaxAttempts: 3},
			Heartbeat: beat,
			Ready:     func(u *uvm.UVM, req, ev, _ string) { readyc <- ready{u, req, ev} },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var r ready
	select {
	case r = <-readyc:
	case err := <-served:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the bridge never served")
	}
	c, err := zmqbridge.Dial(r.req, nil)
	if err != nil {
		t.Fatal(err)
	}
	remote := protocol.NewRemote(c, 0)
	t.Cleanup(func() { remote.Close() })
	sub := subscribe(t, r.ev)
	// Until the SUB is joined, events are lost: commit until one arrives.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; len(sub.snapshot()) == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no commit event reached the subscriber")
		}
		if _, err := remote.Eval(t.Context(), command.EvalRequest{Code: fmt.Sprintf("root.warm = %d", i)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r.u, remote, sub
}

// TestEveryCommitIsPublished: each command that commits, through a real
// bridge, and what it sets going in the background (a cycle's
// transitions and install, an audit's proposals, telemetry flushes),
// publishes one event per commit: every TID the log gained appears in
// exactly one event, with the OIDs the log says it wrote, under the
// command's topic.
func TestEveryCommitIsPublished(t *testing.T) {
	b := &auditBrain{kind: "fix", plan: fixPlan, methods: []string{fixedAverage}}
	u, r, sub := serveForEvents(t, b.respond)
	ctx := t.Context()
	first := sub.snapshot()[0].tid
	// expect records, per step, the topic its commits must carry.
	type step struct {
		name, topic string
		tids        []store.TID // the commits the command says it made, if it says
	}
	var steps []step
	expect := func(name, topic string, tids ...store.TID) {
		steps = append(steps, step{name, topic, tids})
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	lastTID := func() store.TID { return u.Store().LastTID() }

	_, err := r.Eval(ctx, command.EvalRequest{Code: `root.calc = new(None, name = "calc", n = 0)
heartbeat.policy = "propose"`})
	must("eval", err)
	expect("eval", command.TopicEval, lastTID())

	mc, err := r.SetMethod(ctx, command.MethodRequest{Target: "calc", Name: "average", Source: averageSource})
	must("method_set", err)
	expect("method_set", command.TopicMethod, mc.TID)
	mc, err = r.SetMethod(ctx, command.MethodRequest{Target: "calc", Name: "bump", Source: "def bump(self):\n    self.n = self.n + 1\n    return self.n\n"})
	must("method_set", err)
	expect("method_set", command.TopicMethod, mc.TID)

	_, err = r.Send(ctx, command.SendRequest{Target: "calc", Selector: "bump"})
	must("send", err)
	bumped := lastTID()
	expect("send", command.TopicSend, bumped)

	un, err := r.Undo(ctx, bumped)
	must("undo", err)
	expect("undo", command.TopicUndo, un.TID)

	for _, xs := range append(goodCalls, badCalls...) {
		_, _ = r.Send(ctx, command.SendRequest{Target: "calc", Selector: "average", Args: []image.Value{intList(xs)}})
	}
	before := lastTID()
	_, err = r.MethodStats(ctx, "calc")
	must("method_stats", err)
	if lastTID() == before {
		t.Fatal("method_stats flushed no telemetry")
	}
	expect("telemetry flush", command.TopicTelemetry, lastTID())

	role := "the one who checks events"
	_, err = r.EditPersona(ctx, "BABS", command.PersonaEdit{Role: &role})
	must("persona_set", err)
	expect("persona_set", command.TopicPersona, lastTID())

	model := filepath.Join(t.TempDir(), "tiny.gguf")
	must("write a model", os.WriteFile(model, gguftest.TinyLlama(3), 0o644))
	before = lastTID()
	_, err = r.ImportModel(ctx, command.ModelImport{Path: model})
	must("model_import", err)
	expect("model_import", command.TopicModel, tidsAfter(t, u, before)...)

	before = lastTID()
	_, err = r.CatalogAdd(ctx, command.CatalogAddRequest{Text: "Events name every commit.", Name: "notes/events.txt"})
	must("catalog_add", err)
	expect("catalog_add", command.TopicCatalog, tidsAfter(t, u, before)...)
	before = lastTID()
	_, err = r.CatalogRemove(ctx, "notes/events.txt")
	must("catalog_remove", err)
	expect("catalog_remove", command.TopicCatalog, tidsAfter(t, u, before)...)

	before = lastTID()
	a, err := r.AuditRun(ctx)
	must("audit_run", err)
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	settled, err := u.Heartbeat().Wait(wctx, a.ID)
	must("wait for the audit's proposals", err)
	if p := settled.Proposals[0]; p.Status != heartbeat.ProposalWaiting {
		t.Fatalf("proposal: %s (%s), want awaiting approval", p.Status, p.Reason)
	}
	expect("audit_run", command.TopicAudit)
	expect("the proposal's cycle", command.TopicCycle)

	p, err := r.ProposalAccept(ctx, heartbeat.ID(a.ID, 1))
	must("proposal_accept", err)
	if p.Status != heartbeat.ProposalAccepted {
		t.Fatalf("accepted proposal: %s", p.Status)
	}
	expect("proposal_accept", command.TopicProposal, lastTID())

	mc, err = r.RevertMethod(ctx, "calc", "average")
	must("method_revert", err)
	expect("method_revert", command.TopicMethod, mc.TID)

	sr, err := r.RemoveSlot(ctx, "calc", "average")
	must("slot_remove", err)
	expect("slot_remove", command.TopicSlot, sr.TID)

	events, topics := checkEveryCommit(t, u, sub, first)

	// Each command's commits carry its topic, and its fields.
	topicOf := map[store.TID]commitEvent{}
	for _, e := range events {
		topicOf[e.tid] = e
	}
	for _, s := range steps {
		if len(s.tids) == 0 {
			if topics[s.topic] == 0 {
				t.Errorf("%s: no event under %s", s.name, s.topic)
			}
			continue
		}
		for _, tid := range s.tids {
			if e := topicOf[tid]; e.topic != s.topic {
				t.Errorf("%s: commit %s published under %q, want %q", s.name, tid, e.topic, s.topic)
			}
		}
	}
	if e := topicOf[bumped]; e.payload["target"] != "calc" || e.payload["selector"] != "bump" {
		t.Errorf("send event %v, want target calc, selector bump", e.payload)
	}
	if e := topicOf[un.TID]; e.payload["undone"] != bumped.String() {
		t.Errorf("undo event %v, want undone %s", e.payload, bumped)
	}
}

// TestLearningCycleCommitsArePublished: a send of a message nothing
// understands, through a real bridge, opens a cycle whose transitions
// and install are each published once under commit.cycle with the
// cycle's ID; the install names the receiver among its OIDs.
func TestLearningCycleCommitsArePublished(t *testing.T) {
	b := &personaBrain{}
	u, r, sub := serveForEvents(t, b.respond)
	first := sub.snapshot()[0].tid
	res, err := r.Send(t.Context(), command.SendRequest{Target: "genesis", Selector: "display_yourself"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Repr != `"I am genesis"` {
		t.Fatalf("answer %s, want the learned method's", res.Repr)
	}
	var genesis store.OID
	err = u.DB().View(t.Context(), func(tx *image.Tx) error {
		oid, err := tx.Resolve("genesis")
		genesis = oid
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	events, topics := checkEveryCommit(t, u, sub, first)
	if topics[command.TopicCycle] < 3 {
		t.Errorf("%d cycle commits published, want the opening, transitions and install", topics[command.TopicCycle])
	}
	installed := false
	for _, e := range events {
		if e.topic != command.TopicCycle {
			continue
		}
		if id, _ := e.payload["id"].(int64); id != 1 {
			t.Errorf("cycle commit %s (%s) names cycle %v, want 1", e.tid, e.payload["description"], e.payload["id"])
		}
		installed = installed || slices.Contains(e.oids, genesis)
	}
	if !installed {
		t.Error("no cycle commit names genesis, where the method was installed")
	}
}

// TestHeartbeatCommitsArePublished: what the scheduled heartbeat writes
// (its schedule, its audits) is published under commit.heartbeat, each
// commit once.
func TestHeartbeatCommitsArePublished(t *testing.T) {
	b := &auditBrain{kind: "fix", plan: fixPlan}
	u, _, sub := serveForEventsEvery(t, b.respond, 200*time.Millisecond)
	first := sub.snapshot()[0].tid
	deadline := time.Now().Add(30 * time.Second)
	audited := func() bool {
		for _, e := range sub.snapshot() {
			if d, _ := e.payload["description"].(string); e.topic == command.TopicHeartbeat && strings.HasPrefix(d, "audit") {
				return true
			}
		}
		return false
	}
	for !audited() {
		if time.Now().After(deadline) {
			t.Fatal("no audit of the heartbeat was published")
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkEveryCommit(t, u, sub, first)
}

// checkEveryCommit checks that every commit since first is published in
// exactly one event, with the OIDs, user and description the log
// records, and no event names a commit the log does not hold. It returns
// the events and how many commits each topic had.
func checkEveryCommit(t *testing.T, u *uvm.UVM, sub *subscriber, first store.TID) ([]commitEvent, map[string]int) {
	t.Helper()
	log, err := u.Store().Log(t.Context(), store.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var want []store.TxInfo
	for _, tx := range log {
		if tx.TID >= first {
			want = append(want, tx)
		}
	}
	// What commits in the background after the log was read is left out.
	// Commits run at once publish out of TID order, so one that committed
	// after the log was read may hold a lower TID than its newest: an
	// event is left out when a second read of the log finds its commit.
	all := waitForEvents(t, sub, len(want))
	later, err := u.Store().Log(t.Context(), store.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	read := map[store.TID]bool{}
	for _, tx := range want {
		read[tx.TID] = true
	}
	committedSince := map[store.TID]bool{}
	for _, tx := range later {
		if !read[tx.TID] {
			committedSince[tx.TID] = true
		}
	}
	var events []commitEvent
	for _, e := range all {
		if !committedSince[e.tid] { // every event's commit is in the second read
			events = append(events, e)
		}
	}
	byTID := map[store.TID][]commitEvent{}
	for _, e := range events {
		byTID[e.tid] = append(byTID[e.tid], e)
	}
	topics := map[string]int{}
	for _, tx := range want {
		es := byTID[tx.TID]
		if len(es) != 1 {
			t.Errorf("%s (%s) is in %d events, want 1", tx.TID, tx.Description, len(es))
			continue
		}
		e := es[0]
		topics[e.topic]++
		if e.topic == command.TopicOther {
			t.Logf("unnamed commit %s: %s", tx.TID, tx.Description)
		}
		if !slices.Equal(e.oids, tx.OIDs) {
			t.Errorf("%s (%s): event names %v, the log %v", tx.TID, tx.Description, e.oids, tx.OIDs)
		}
		if e.payload["user"] != tx.User || e.payload["description"] != tx.Description {
			t.Errorf("%s: event says %q/%q, the log %q/%q", tx.TID, e.payload["user"], e.payload["description"], tx.User, tx.Description)
		}
		delete(byTID, tx.TID)
	}
	for tid, es := range byTID {
		t.Errorf("an event names %s (%s), which the log does not hold", tid, es[0].topic)
	}
	sub.mu.Lock()
	for _, b := range sub.bad {
		t.Errorf("malformed event: %s", b)
	}
	sub.mu.Unlock()
	// seq counts the commit events: those since first are numbered on
	// from first's, none missing, none twice (in any order), up to the
	// last of the commits checked.
	seqs := map[int64]int{}
	lo, hi := int64(-1), int64(0)
	for _, e := range all {
		n, _ := e.payload["seq"].(int64)
		seqs[n]++
		if lo < 0 || n < lo {
			lo = n
		}
	}
	for _, e := range events {
		n, _ := e.payload["seq"].(int64)
		hi = max(hi, n)
	}
	for n := lo; n <= hi; n++ {
		if seqs[n] != 1 {
			t.Errorf("seq %d is in %d events, want 1 (events number %d to %d)", n, seqs[n], lo, hi)
		}
	}
	for _, e := range events {
		if _, ok := e.payload["id"]; e.topic == command.TopicCycle && !ok {
			t.Errorf("cycle commit %s (%s) names no cycle", e.tid, e.payload["description"])
		}
	}
	t.Logf("%d commits, by topic: %v", len(want), topics)
	return events, topics
}

// tidsAfter lists the commits after tid, oldest first.
func tidsAfter(t *testing.T, u *uvm.UVM, tid store.TID) []store.TID {
	t.Helper()
	log, err := u.Store().Log(t.Context(), store.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.TID
	for _, tx := range slices.Backward(log) {
		if tx.TID > tid {
			out = append(out, tx.TID)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no commit after %s", tid)
	}
	return out
}

// waitForEvents waits until the subscriber has n events (or a little
// longer than it takes, to catch extra ones), or fails.
func waitForEvents(t *testing.T, s *subscriber, n int) []commitEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.snapshot()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	return s.snapshot()
}
