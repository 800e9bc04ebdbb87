package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/uvm"
	"batos/internal/zmqbridge"
)

// benchBridgeSetup installs the method bench bridge sends, run by uvm Eval.
const benchBridgeSetup = `
genesis.bench_x = 20
genesis.bench_y = 2
genesis.bench_total = method("def bench_total(self):\n    return self.bench_x * 2 + self.bench_y")
`

// benchBridgeTotal is what bench_total answers: 20*2 + 2.
const benchBridgeTotal = image.Int(42)

// benchBridgeSend is the request of the send phases.
var benchBridgeSend = map[string]any{"command": "send", "target": "genesis", "selector": "bench_total"}

// bridgeBenchSizes are the durations and the load of one run.
type bridgeBenchSizes struct {
	WarmupS  float64 `json:"warmup_s"`
	PhaseS   float64 `json:"phase_s"`
	InFlight int     `json:"in_flight"`
	Clients  []int   `json:"clients"`
}

var (
	fullBridgeBench  = bridgeBenchSizes{WarmupS: 0.3, PhaseS: 2, InFlight: 100, Clients: []int{1, 8}}
	quickBridgeBench = bridgeBenchSizes{WarmupS: 0.03, PhaseS: 0.1, InFlight: 100, Clients: []int{1, 8}}
)

// bridgeBench is the outcome of "bench bridge"; its JSON is the -json output.
type bridgeBench struct {
	Dir   string           `json:"dir"`
	Quick bool             `json:"quick"`
	Sizes bridgeBenchSizes `json:"sizes"`

	Echo1PerS  float64 `json:"echo1_per_s"`
	Echo1P50Ms float64 `json:"echo1_p50_ms"`
	Echo1P99Ms float64 `json:"echo1_p99_ms"`
	Echo8PerS  float64 `json:"echo8_per_s"`
	Echo8P50Ms float64 `json:"echo8_p50_ms"`
	Echo8P99Ms float64 `json:"echo8_p99_ms"`
	Send1PerS  float64 `json:"send1_per_s"`
	Send1P50Ms float64 `json:"send1_p50_ms"`
	Send1P99Ms float64 `json:"send1_p99_ms"`
	Send8PerS  float64 `json:"send8_per_s"`
	Send8P50Ms float64 `json:"send8_p50_ms"`
	Send8P99Ms float64 `json:"send8_p99_ms"`

	// InProcessPerS is bench vm's send_ro_one_core_per_s measured in
	// this run, the best of InProcessRounds: the read-only send in
	// process, one sender, GOMAXPROCS=1, each send its own Update.
	InProcessPerS   float64 `json:"in_process_send_ro_one_core_per_s"`
	InProcessRounds int     `json:"in_process_rounds"`

	EchoPerS        float64 `json:"echo_per_s"`
	SendPerS        float64 `json:"send_per_s"`
	SendVsEcho      float64 `json:"send_vs_echo"`
	SendVsInProcess float64 `json:"send_vs_in_process"`

	Targets    bridgeBenchTargets `json:"targets"`
	TargetsMet map[string]bool    `json:"targets_met"`
	Notes      []string           `json:"notes"`
}

// bridgeBenchTargets are what the bridge is meant to reach.
type bridgeBenchTargets struct {
	SendVsEcho      float64 `json:"send_vs_echo_min"`
	SendVsInProcess float64 `json:"send_vs_in_process_min"`
}

var bridgeTargets = bridgeBenchTargets{SendVsEcho: 0.5, SendVsInProcess: 0.7}

// RunBridge measures round trips through a real zmqbridge.Server serving
// a uvm, on an image in a temporary directory under opts.Dir, over TCP
// loopback, beside a bare ROUTER that echoes each message back. It prints
// the outcome to stdout and its progress to log.
func RunBridge(ctx context.Context, opts *Options, stdout, log io.Writer) error {
	opts = opts.orDefault()
	sizes := fullBridgeBench
	if opts.Quick {
		sizes = quickBridgeBench
	}
	stop, err := opts.profile()
	if err != nil {
		return err
	}
	defer stop()
	res, err := benchBridge(ctx, opts.dir(), opts.User, sizes, log)
	if err != nil {
		return err
	}
	return opts.report(stdout, res, &res.Quick, &res.Notes, "a fraction of a second per phase", func() error { return writeBridgeBenchTable(stdout, res) })
}

// bridgeBencher runs the phases of bench bridge.
type bridgeBencher struct {
	sizes bridgeBenchSizes
	log   io.Writer
	res   *bridgeBench
}

// benchBridge measures the bridge on an image in a fresh directory under
// parent, removed afterwards, printing phase names to log.
func benchBridge(ctx context.Context, parent, user string, sizes bridgeBenchSizes, log io.Writer) (*bridgeBench, error) {
	dir, err := os.MkdirTemp(parent, "batos-bench-bridge-")
	if err != nil {
		return nil, fmt.Errorf("make benchmark directory: %w", err)
	}
	defer os.RemoveAll(dir)
	b := &bridgeBencher{sizes: sizes, log: log, res: &bridgeBench{Dir: dir, Sizes: sizes, Targets: bridgeTargets}}
	b.phase("working in %s", dir)
	bridge, stop, err := b.serve(ctx, filepath.Join(dir, "bridge.db"))
	if err != nil {
		return nil, err
	}
	defer stop()
	echo, err := zmqbridge.StartEcho("tcp://127.0.0.1:*")
	if err != nil {
		return nil, fmt.Errorf("start echo: %w", err)
	}
	defer echo.Close()
	r := b.res
	// Echo and send alternate, so a change in the machine's load during
	// the run shows in both.
	phases := []struct {
		name    string
		addr    string
		clients int
		perS    *float64
		p50     *float64
		p99     *float64
	}{
		{"echo", echo.Endpoint(), 1, &r.Echo1PerS, &r.Echo1P50Ms, &r.Echo1P99Ms},
		{"send", bridge, 1, &r.Send1PerS, &r.Send1P50Ms, &r.Send1P99Ms},
		{"echo", echo.Endpoint(), 8, &r.Echo8PerS, &r.Echo8P50Ms, &r.Echo8P99Ms},
		{"send", bridge, 8, &r.Send8PerS, &r.Send8P50Ms, &r.Send8P99Ms},
	}
	// The in-process send runs before the bridge's phases and after them,
	// its best kept (see bench vm's telemetry overhead for why the best).
	if err := b.inProcess(ctx, dir, user, 1); err != nil {
		return nil, err
	}
	for _, p := range phases {
		b.phase("%s: %d client(s), %d in flight, for %s", p.name, p.clients, sizes.InFlight, benchSeconds(sizes.PhaseS))
		lr, err := zmqbridge.Load{
			Addr: p.addr, Clients: p.clients, InFlight: sizes.InFlight, Request: benchBridgeSend,
			Warmup: benchSeconds(sizes.WarmupS), Duration: benchSeconds(sizes.PhaseS),
		}.Run(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s from %d client(s): %w", p.name, p.clients, err)
		}
		*p.perS, *p.p50, *p.p99 = lr.PerS(), benchMs(lr.Quantile(0.5)), benchMs(lr.Quantile(0.99))
		b.phase("%s: %.0f/s, p50 %.3f ms, p99 %.3f ms", p.name, *p.perS, *p.p50, *p.p99)
	}
	if err := b.inProcess(ctx, dir, user, 2); err != nil {
		return nil, err
	}
	r.conclude()
	b.phase("done; removing %s", dir)
	return r, nil
}

// inProcess measures bench vm's one-core read-only send, round n, on an
// image of its own in dir, for as long as a bridge phase.
func (b *bridgeBencher) inProcess(ctx context.Context, dir, user string, n int) error {
	sizes := fullVMBench
	if b.sizes.PhaseS < fullBridgeBench.PhaseS {
		sizes = quickVMBench
	}
	sizes.PhaseS = b.sizes.PhaseS
	b.phase("in process: bench vm's read-only send, 1 sender, GOMAXPROCS=1, for %s (round %d)", benchSeconds(sizes.PhaseS), n)
	p, err := oneCoreSendRO(ctx, filepath.Join(dir, fmt.Sprintf("in-process-%d.db", n)), user, sizes, io.Discard)
	if err != nil {
		return fmt.Errorf("in-process send: %w", err)
	}
	b.res.InProcessPerS = max(b.res.InProcessPerS, p.perS())
	b.res.InProcessRounds = n
	b.phase("in process: %.0f/s", p.perS())
	return nil
}

func (b *bridgeBencher) phase(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// serve opens a uvm on a new image at path, installs the method sent,
// serves it on a bridge on a free loopback port and checks one send. It
// returns the request endpoint and a function that stops it all.
func (b *bridgeBencher) serve(ctx context.Context, path string) (addr string, stop func(), err error) {
	b.phase("setup: image, method, bridge")
	u, _, err := uvm.Open(ctx, path, nil)
	if err != nil {
		return "", nil, err
	}
	if _, err := u.Eval(ctx, benchBridgeSetup); err != nil {
		u.Close()
		return "", nil, fmt.Errorf("install bench_total: %w", err)
	}
	// Stats brings the bbolt file up to date, so sends read genesis from
	// the file as in an image that has run a while (see bench vm).
	if _, err := u.Store().Stats(ctx); err != nil {
		u.Close()
		return "", nil, err
	}
	s, err := zmqbridge.Listen(command.NewLocal(u, ""), &zmqbridge.Options{
		RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*",
		Logger: slog.New(slog.NewTextHandler(b.log, nil)),
	})
	if err != nil {
		u.Close()
		return "", nil, err
	}
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	stop = func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(sctx)
		<-served
		u.Close()
	}
	addr, _ = s.Endpoints()
	if err := checkBenchSend(ctx, addr); err != nil {
		stop()
		return "", nil, err
	}
	return addr, stop, nil
}

// checkBenchSend sends bench_total once through a bridge client and checks
// its answer, so the measured phases count real sends, not errors.
func checkBenchSend(ctx context.Context, addr string) error {
	c, err := zmqbridge.Dial(addr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	args := map[string]any{}
	for k, v := range benchBridgeSend {
		if k != "command" {
			args[k] = v
		}
	}
	got, err := c.Call(ctx, "send", args)
	if err != nil {
		return fmt.Errorf("send bench_total: %w", err)
	}
	res, _ := got.(map[string]any)
	if v, _ := res["value"].(int64); v != int64(benchBridgeTotal) {
		return fmt.Errorf("bench_total answered %v, want %s", got, image.Repr(benchBridgeTotal))
	}
	return nil
}

// conclude fills in the headline figures, the verdict and the notes.
func (r *bridgeBench) conclude() {
	r.EchoPerS = max(r.Echo1PerS, r.Echo8PerS)
	r.SendPerS = max(r.Send1PerS, r.Send8PerS)
	r.SendVsEcho = r.SendPerS / r.EchoPerS
	if r.InProcessPerS > 0 {
		r.SendVsInProcess = r.SendPerS / r.InProcessPerS
	}
	r.TargetsMet = map[string]bool{
		"send_vs_echo":       r.SendVsEcho >= r.Targets.SendVsEcho,
		"send_vs_in_process": r.SendVsInProcess >= r.Targets.SendVsInProcess,
	}
	r.Notes = append(r.Notes,
		fmt.Sprintf("every phase keeps %d requests in flight in total: echo1/send1 from one DEALER, echo8/send8 from 8 DEALERs sharing them; each reply sends the next request; per_s counts replies in the measured %gs after a %gs warm-up, p50/p99 are the times from a request's send to its reply", r.Sizes.InFlight, r.Sizes.PhaseS, r.Sizes.WarmupS),
		"send is the protocol's send command (bench_total to genesis: a method installed through eval that reads two slots) through zmqbridge.Server over a uvm, each send its own image transaction that commits nothing; echo is a bare ROUTER sending each message back from one goroutine, carrying the same request bytes",
		"echo_per_s and send_per_s are the higher of the 1- and 8-client rates; send_vs_echo = send_per_s / echo_per_s, the target is ≥ 0.5",
		fmt.Sprintf("in_process_send_ro_one_core_per_s is bench vm's send_ro_one_core_per_s measured in this run, before the bridge's phases and after them, the best of %d kept: the read-only send (total, found two parents up) in process, one sender, GOMAXPROCS=1, each send its own image.DB.Update, on an image of its own; send_vs_in_process = send_per_s / in_process_send_ro_one_core_per_s, the target is ≥ %.1f", r.InProcessRounds, r.Targets.SendVsInProcess),
		"clients, servers and both ends of every TCP connection share this process, its cores and libzmq's one I/O thread: the figures are of a loaded machine, the ratio is what compares",
	)
}

// writeBridgeBenchTable prints the figures for people, with the ratio
// and its target.
func writeBridgeBenchTable(w io.Writer, r *bridgeBench) error {
	verdict := func(key string) string {
		if r.TargetsMet[key] {
			return "met"
		}
		return "MISSED"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "measure (%d in flight)\tround trips\tp50\tp99\n", r.Sizes.InFlight)
	for _, row := range []struct {
		name           string
		perS, p50, p99 float64
	}{
		{"ROUTER echo, 1 client", r.Echo1PerS, r.Echo1P50Ms, r.Echo1P99Ms},
		{"ROUTER echo, 8 clients", r.Echo8PerS, r.Echo8P50Ms, r.Echo8P99Ms},
		{"bridge send, 1 client", r.Send1PerS, r.Send1P50Ms, r.Send1P99Ms},
		{"bridge send, 8 clients", r.Send8PerS, r.Send8P50Ms, r.Send8P99Ms},
	} {
		fmt.Fprintf(tw, "%s\t%.0f /s\t%.3f ms\t%.3f ms\n", row.name, row.perS, row.p50, row.p99)
	}
	fmt.Fprintf(tw, "in-process send, 1 core (best of %d)\t%.0f /s\t\t\n", r.InProcessRounds, r.InProcessPerS)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nsend %.0f /s = %.2f× in-process send %.0f /s; target ≥ %.1f×: %s\n",
		r.SendPerS, r.SendVsInProcess, r.InProcessPerS, r.Targets.SendVsInProcess, verdict("send_vs_in_process"))
	fmt.Fprintf(w, "send %.0f /s = %.2f× echo %.0f /s; target ≥ %.1f×: %s\n",
		r.SendPerS, r.SendVsEcho, r.EchoPerS, r.Targets.SendVsEcho, verdict("send_vs_echo"))
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nnote: %s", n)
	}
	_, err := fmt.Fprintln(w)
	return err
}
