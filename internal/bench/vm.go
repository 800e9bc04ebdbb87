package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
)

// Root slots under which bench vm links its objects.
const (
	benchVMReaderSlot  = "bench_vm_reader"
	benchVMWritersSlot = "bench_vm_writers"
)

// benchVMSetup builds the objects of bench vm, run by Eval with root bound:
// a holds x and both methods, b (parent a) holds y, and the receivers
// delegate to b, so each send finds its method and x two levels up.
const benchVMSetup = `
a = new(None, name = "bench_vm_a", x = 20)
a.total = method("def total(self):\n    return self.x * 2 + self.y")
a.bump = method("def bump(self):\n    self.count = self.count + 1\n    return self.count")
b = new(a, name = "bench_vm_b", y = 2)
root.` + benchVMReaderSlot + ` = new(b, name = "bench_vm_reader")
root.` + benchVMWritersSlot + ` = [new(b, name = "bench_vm_writer", count = 0) for _ in range(%d)]
`

// benchVMTotal is what total answers: 20*2 + 2.
const benchVMTotal = image.Int(42)

// vmBenchSizes are the durations and sender counts of one run.
type vmBenchSizes struct {
	FsyncS          float64 `json:"fsync_s"`
	PhaseS          float64 `json:"phase_s"`
	ParallelSenders int     `json:"parallel_senders"`
	RWSenders       int     `json:"rw_senders"`
	// TelemetryRounds is how many times the one-core read-only send is
	// measured with telemetry and then without, each for TelemetryS.
	TelemetryRounds int     `json:"telemetry_rounds"`
	TelemetryS      float64 `json:"telemetry_s"`
	// AnchorRounds is how many times the anchor runs the seed script,
	// for AnchorSends sends, and then batos's send, for PhaseS.
	AnchorRounds int `json:"anchor_rounds"`
	AnchorSends  int `json:"anchor_sends"`
}

var (
	fullVMBench  = vmBenchSizes{FsyncS: 1, PhaseS: 2, RWSenders: 8, TelemetryRounds: 8, TelemetryS: 0.3, AnchorRounds: 3, AnchorSends: 300_000}
	quickVMBench = vmBenchSizes{FsyncS: 0.1, PhaseS: 0.1, RWSenders: 8, TelemetryRounds: 2, TelemetryS: 0.05, AnchorRounds: 1, AnchorSends: 20_000}
)

// vmBench is the outcome of "bench vm"; its JSON is the -json output.
type vmBench struct {
	Dir   string       `json:"dir"`
	Quick bool         `json:"quick"`
	Sizes vmBenchSizes `json:"sizes"`

	FsyncPerS float64 `json:"fsync_per_s"`
	// The disk's fsync rate just before and just after the writing
	// phase, whose ratio is to the higher of the two (as bench store's).
	SendRWFsyncPerS       [2]float64 `json:"send_rw_fsync_before_after_per_s"`
	SendROPerS            float64    `json:"send_ro_per_s"`
	SendROOneCorePerS     float64    `json:"send_ro_one_core_per_s"`
	SendROViewOneCorePerS float64    `json:"send_ro_view_one_core_per_s"`
	SendROParallelPerS    float64    `json:"send_ro_parallel_per_s"`
	SendROAllocs          float64    `json:"send_ro_allocs_per_send"`
	SendROBytes           float64    `json:"send_ro_bytes_per_send"`
	// The one-core read-only send with and without method telemetry,
	// measured alternately in this run (the best of each), and what
	// telemetry costs: (without - with) / without, in percent. Every
	// other figure is measured with telemetry, as uvm runs by default.
	SendROOneCoreTelemetryPerS   float64 `json:"send_ro_one_core_telemetry_per_s"`
	SendROOneCoreNoTelemetryPerS float64 `json:"send_ro_one_core_no_telemetry_per_s"`
	TelemetryOverheadPct         float64 `json:"telemetry_overhead_pct"`
	SendRWPerS                   float64 `json:"send_rw_per_s"`
	ConflictsRetried             int     `json:"conflicts_retried"`

	SendRWVsFsync float64 `json:"send_rw_vs_fsync"`

	// Anchor is the seed's send beside batos's, when asked for.
	Anchor *vmAnchor `json:"anchor,omitempty"`

	Targets    vmBenchTargets  `json:"targets"`
	TargetsMet map[string]bool `json:"targets_met"`
	Notes      []string        `json:"notes"`
}

// vmBenchTargets are what sends are meant to reach.
type vmBenchTargets struct {
	SendROOneCorePerS    float64 `json:"send_ro_one_core_per_s_min"`
	SendRWVsFsync        float64 `json:"send_rw_vs_fsync_min"`
	TelemetryOverheadPct float64 `json:"telemetry_overhead_pct_max"`
}

var vmTargets = vmBenchTargets{SendROOneCorePerS: 100_000, SendRWVsFsync: 3, TelemetryOverheadPct: 5}

// RunVM measures message sends the way a server runs them, each send its
// own image transaction around vm.Send, on an image over the bolt store
// on the disk holding opts.Dir, fsync on. It prints the outcome to stdout
// and its progress to log.
func RunVM(ctx context.Context, opts *Options, stdout, log io.Writer) error {
	opts = opts.orDefault()
	sizes := fullVMBench
	if opts.Quick {
		sizes = quickVMBench
	}
	sizes.ParallelSenders = runtime.GOMAXPROCS(0)
	stop, err := opts.profile()
	if err != nil {
		return err
	}
	defer stop()
	res, err := benchVM(ctx, opts, sizes, log)
	if err != nil {
		return err
	}
	return opts.report(stdout, res, &res.Quick, &res.Notes, "a fraction of a second per phase", func() error { return writeVMBenchTable(stdout, res) })
}

// vmBencher runs the phases of bench vm on one image.
type vmBencher struct {
	seed         *seedRunner // nil: no anchor
	anchorScript string
	dir          string
	sizes        vmBenchSizes
	log          io.Writer
	res          *vmBench
	db           *image.DB
	vm           *vm.VM // counts method executions, as uvm's does by default
	noTelem      *vm.VM // the same without telemetry
	reader       store.OID
	writers      []store.OID
}

// benchVM measures sends in a fresh directory under opts.Dir, removed
// afterwards, printing phase names to log.
func benchVM(ctx context.Context, opts *Options, sizes vmBenchSizes, log io.Writer) (*vmBench, error) {
	dir, err := os.MkdirTemp(opts.dir(), "batos-bench-vm-")
	if err != nil {
		return nil, fmt.Errorf("make benchmark directory: %w", err)
	}
	defer os.RemoveAll(dir)
	b := newVMBencher(dir, sizes, log)
	if opts.Anchor {
		// Checked first: a missing interpreter or module fails at once.
		if b.seed, err = newSeedRunner(ctx, opts.Python, opts.AnchorScript, dir); err != nil {
			return nil, err
		}
		b.anchorScript = opts.AnchorScript
	}
	b.phase("working in %s", dir)
	b.phase("fsync: appending 4 KiB + fsync for %s", benchSeconds(sizes.FsyncS))
	if b.res.FsyncPerS, err = fsyncRate(ctx, dir, benchSeconds(sizes.FsyncS)); err != nil {
		return nil, err
	}
	b.phase("fsync: %.0f/s", b.res.FsyncPerS)
	db, err := openBenchImage(ctx, filepath.Join(dir, "vm.db"), opts.User)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	b.db = db.DB
	for _, step := range []func(context.Context) error{b.setup, b.readOnly, b.anchor, b.telemetryOverhead, b.readWrite} {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	b.res.conclude()
	b.phase("done; removing %s", dir)
	return b.res, nil
}

// newVMBencher is a bencher working in dir, with its VMs; its image is
// opened by its caller.
func newVMBencher(dir string, sizes vmBenchSizes, log io.Writer) *vmBencher {
	return &vmBencher{
		dir: dir, sizes: sizes, log: log,
		res:     &vmBench{Dir: dir, Sizes: sizes, Targets: vmTargets},
		vm:      vm.New(&vm.Options{Telemetry: vm.NewTelemetry()}),
		noTelem: vm.New(nil),
	}
}

// oneCoreSendRO measures bench vm's one-core read-only send
// (send_ro_one_core_per_s: one sender, GOMAXPROCS=1, each send its own
// Update) for sizes.PhaseS on an image it makes at path, after setting it
// up as bench vm does. Other benchmarks use it as their in-process anchor.
func oneCoreSendRO(ctx context.Context, path, user string, sizes vmBenchSizes, log io.Writer) (sendPhase, error) {
	b := newVMBencher(filepath.Dir(path), sizes, log)
	db, err := openBenchImage(ctx, path, user)
	if err != nil {
		return sendPhase{}, err
	}
	defer db.Close()
	b.db = db.DB
	if err := b.setup(ctx); err != nil {
		return sendPhase{}, err
	}
	return b.measureOneCore(ctx, b.sendRO(b.db.Update))
}

func (b *vmBencher) phase(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// conclude fills in the ratio, the verdicts and the notes.
func (r *vmBench) conclude() {
	r.SendRWVsFsync = r.SendRWPerS / cmp.Or(max(r.SendRWFsyncPerS[0], r.SendRWFsyncPerS[1]), r.FsyncPerS)
	r.TargetsMet = map[string]bool{
		"send_ro_one_core_per_s": r.SendROOneCorePerS >= r.Targets.SendROOneCorePerS,
		"send_rw_vs_fsync":       r.SendRWVsFsync >= r.Targets.SendRWVsFsync,
		"telemetry_overhead_pct": r.TelemetryOverheadPct <= r.Targets.TelemetryOverheadPct,
	}
	r.Notes = append(r.Notes,
		"every send runs in image.DB.Update + vm.Send, as uvm.Send does (a server cannot know beforehand whether a method writes; uvm.Send adds a pool slot and resolving the target, not measured here); a read-only method commits nothing, and an Update whose method only reads slots holding no containers has nothing to encode at its end; send_ro_view_one_core_per_s is the same send in image.DB.View",
		"the read-only send is total() on an object whose parent b holds y and whose grandparent a holds x and the method: the method and x are found two levels up",
		"the one-core target is checked against send_ro_one_core_per_s (GOMAXPROCS=1, one sender); send_ro_per_s is one sender with every core available to the runtime",
		"the image's object cache and the VM's compiled-method cache are warm: each phase starts with a short unmeasured warm-up",
		"the writing send's ratio is to the disk's fsync rate measured just before and just after it, the higher of the two: a shared or virtual disk's rate moves from second to second",
		fmt.Sprintf("every figure but send_ro_one_core_no_telemetry_per_s is measured with method telemetry on, as uvm runs by default; the telemetry overhead compares the one-core read-only send with and without it, measured alternately %d times each (with, without, with, ...) and taking each one's best run", r.Sizes.TelemetryRounds),
	)
	if r.Anchor != nil {
		r.TargetsMet["anchor_ratio"] = r.Anchor.Ratio >= anchorTarget
		r.Notes = append(r.Notes, fmt.Sprintf("the anchor is the seed's own message send (the blueprint's UvmObject: persistent.Persistent, slots in a PersistentMapping, parent* delegation through __getattr__) sending the same read-only message in memory, with no transaction, run by %s; it and batos's one-core read-only send, each its own Update, ran alternately for %d rounds, the best of each taken", r.Anchor.Python, r.Anchor.Rounds))
	}
	if r.ConflictsRetried > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d sends were rerun after write conflicts although each writer has its own object", r.ConflictsRetried))
	}
}

// setup installs the benchmark's objects and methods through Eval, as a
// user would, and checks that the read-only send answers as it should.
func (b *vmBencher) setup(ctx context.Context) error {
	b.phase("setup: objects, methods, %d writers", b.sizes.RWSenders)
	code := fmt.Sprintf(benchVMSetup, b.sizes.RWSenders)
	err := b.db.Update(ctx, func(tx *image.Tx) error {
		_, err := b.vm.Eval(ctx, tx, code, map[string]image.Value{"root": image.Ref(image.RootOID)})
		return err
	})
	if err != nil {
		return fmt.Errorf("set up objects: %w", err)
	}
	err = b.db.View(ctx, func(tx *image.Tx) error {
		root, err := tx.Root()
		if err != nil {
			return err
		}
		v, _ := root.Get(benchVMReaderSlot)
		reader, err := tx.Deref(v)
		if err != nil {
			return err
		}
		b.reader = reader.OID()
		v, _ = root.Get(benchVMWritersSlot)
		l, ok := v.(*image.List)
		if !ok || len(l.Elems) != b.sizes.RWSenders {
			return fmt.Errorf("root slot %s holds %s, want a list of %d objects", benchVMWritersSlot, image.Repr(v), b.sizes.RWSenders)
		}
		for _, ref := range l.Elems {
			w, err := tx.Deref(ref)
			if err != nil {
				return err
			}
			b.writers = append(b.writers, w.OID())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("find benchmark objects: %w", err)
	}
	// Stats first brings the bbolt file up to date: sends then read their
	// objects from the file, as in an image that has run a while, not from
	// the write-ahead overlay of recent commits.
	if _, err := b.db.Store().Stats(ctx); err != nil {
		return err
	}
	var res vm.Result
	err = b.db.Update(ctx, func(tx *image.Tx) error {
		res, err = b.vm.Send(ctx, tx, b.reader, "total", nil, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("send total: %w", err)
	}
	if !image.Equal(res.Value, benchVMTotal) {
		return fmt.Errorf("total answered %s, want %s", res.Repr, image.Repr(benchVMTotal))
	}
	return nil
}

// sendRO is one read-only send in its own transaction, run by update
// (image.DB.Update or View).
func (b *vmBencher) sendRO(update func(context.Context, func(*image.Tx) error) error) func(context.Context, int) error {
	return b.sendROWith(b.vm, update)
}

// sendROWith is sendRO on machine.
func (b *vmBencher) sendROWith(machine *vm.VM, update func(context.Context, func(*image.Tx) error) error) func(context.Context, int) error {
	return func(ctx context.Context, _ int) error {
		return update(ctx, func(tx *image.Tx) error {
			_, err := machine.Send(ctx, tx, b.reader, "total", nil, nil)
			return err
		})
	}
}

// telemetryOverhead measures the one-core read-only send (in Update, as
// send_ro_one_core_per_s) with telemetry and without it, alternately,
// TelemetryRounds times each. Each keeps its best run: what disturbs a
// run (another process, a collection of garbage an earlier run left,
// the CPU's clock) only ever slows it down, so the fastest run is the
// nearest to what the code costs, and alternating spreads a slow drift
// over both. The difference is a few percent of a noisy figure: a
// negative overhead is noise, and it is reported as measured.
func (b *vmBencher) telemetryOverhead(ctx context.Context) error {
	with, without := b.sendROWith(b.vm, b.db.Update), b.sendROWith(b.noTelem, b.db.Update)
	d := benchSeconds(b.sizes.TelemetryS)
	b.phase("send ro: 1 sender, GOMAXPROCS=1, with and without telemetry, %d times each for %s", b.sizes.TelemetryRounds, d)
	var best [2]float64
	for round := range b.sizes.TelemetryRounds {
		for i, send := range []func(context.Context, int) error{with, without} {
			p, err := b.measureOneCoreFor(ctx, d, send)
			if err != nil {
				return err
			}
			best[i] = max(best[i], p.perS())
			b.phase("send ro: round %d, telemetry %v: %.0f/s", round+1, i == 0, p.perS())
		}
	}
	r := b.res
	r.SendROOneCoreTelemetryPerS, r.SendROOneCoreNoTelemetryPerS = best[0], best[1]
	if best[1] > 0 {
		r.TelemetryOverheadPct = (best[1] - best[0]) / best[1] * 100
	}
	b.phase("send ro: %.0f/s with telemetry, %.0f/s without: %.1f%% overhead", best[0], best[1], r.TelemetryOverheadPct)
	return nil
}

// readOnly measures the read-only send from one sender, from one sender
// on one core (in Update and in View), and from one sender per CPU.
func (b *vmBencher) readOnly(ctx context.Context) error {
	update := b.sendRO(b.db.Update)
	b.phase("send ro: 1 sender for %s", benchSeconds(b.sizes.PhaseS))
	p, err := b.measure(ctx, 1, update)
	if err != nil {
		return err
	}
	b.res.SendROPerS = p.perS()
	b.phase("send ro: %.0f/s", b.res.SendROPerS)

	b.phase("send ro: 1 sender, GOMAXPROCS=1, for %s", benchSeconds(b.sizes.PhaseS))
	if p, err = b.measureOneCore(ctx, update); err != nil {
		return err
	}
	b.res.SendROOneCorePerS = p.perS()
	b.res.SendROAllocs = float64(p.mallocs) / float64(p.sends)
	b.res.SendROBytes = float64(p.bytes) / float64(p.sends)
	b.phase("send ro: %.0f/s on one core, %.0f allocations (%.0f bytes) per send", b.res.SendROOneCorePerS, b.res.SendROAllocs, b.res.SendROBytes)

	b.phase("send ro: 1 sender in View, GOMAXPROCS=1, for %s", benchSeconds(b.sizes.PhaseS))
	if p, err = b.measureOneCore(ctx, b.sendRO(b.db.View)); err != nil {
		return err
	}
	b.res.SendROViewOneCorePerS = p.perS()
	b.phase("send ro: %.0f/s in View on one core", b.res.SendROViewOneCorePerS)

	b.phase("send ro: %d senders for %s", b.sizes.ParallelSenders, benchSeconds(b.sizes.PhaseS))
	if p, err = b.measure(ctx, b.sizes.ParallelSenders, update); err != nil {
		return err
	}
	b.res.SendROParallelPerS = p.perS()
	b.phase("send ro: %.0f/s from %d senders", b.res.SendROParallelPerS, b.sizes.ParallelSenders)
	return nil
}

// measureOneCore is measure from one sender with GOMAXPROCS=1, restored
// afterwards.
func (b *vmBencher) measureOneCore(ctx context.Context, send func(context.Context, int) error) (sendPhase, error) {
	return b.measureOneCoreFor(ctx, benchSeconds(b.sizes.PhaseS), send)
}

// measureOneCoreFor is measureOneCore for a phase of d.
func (b *vmBencher) measureOneCoreFor(ctx context.Context, d time.Duration, send func(context.Context, int) error) (sendPhase, error) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	return measureFor(ctx, d, 1, send)
}

// readWrite measures sends that each write one slot in their own durable
// transaction, one sender per writer object, and checks every increment
// was kept.
func (b *vmBencher) readWrite(ctx context.Context) error {
	var err error
	if b.res.SendRWFsyncPerS[0], err = fsyncRate(ctx, b.dir, benchSeconds(b.sizes.FsyncS)/2); err != nil {
		return err
	}
	b.phase("send rw: %d senders, each on its own object, for %s", len(b.writers), benchSeconds(b.sizes.PhaseS))
	var attempts atomic.Int64
	done := make([]int, len(b.writers)) // sends that committed, per writer
	p, err := b.measure(ctx, len(b.writers), func(ctx context.Context, i int) error {
		err := b.db.Update(ctx, func(tx *image.Tx) error {
			attempts.Add(1)
			_, err := b.vm.Send(ctx, tx, b.writers[i], "bump", nil, nil)
			return err
		})
		if err == nil {
			done[i]++
		}
		return err
	})
	if err != nil {
		return err
	}
	b.res.SendRWPerS = p.perS()
	if b.res.SendRWFsyncPerS[1], err = fsyncRate(ctx, b.dir, benchSeconds(b.sizes.FsyncS)/2); err != nil {
		return err
	}
	total := 0
	for _, n := range done {
		total += n
	}
	b.res.ConflictsRetried = int(attempts.Load()) - total
	b.phase("send rw: %.0f/s, %d conflicts retried", b.res.SendRWPerS, b.res.ConflictsRetried)
	return b.checkCounts(ctx, done)
}

// checkCounts checks that each writer's count is the number of its sends
// that committed.
func (b *vmBencher) checkCounts(ctx context.Context, done []int) error {
	return b.db.View(ctx, func(tx *image.Tx) error {
		for i, oid := range b.writers {
			o, err := tx.Object(oid)
			if err != nil {
				return err
			}
			if v, _ := o.Get("count"); !image.Equal(v, image.Int(done[i])) {
				return fmt.Errorf("writer %s has count %s after %d committed sends", oid, image.Repr(v), done[i])
			}
		}
		return nil
	})
}

// sendPhase is what one measured phase did.
type sendPhase struct {
	sends          int
	elapsed        time.Duration
	mallocs, bytes uint64 // heap allocations during the phase
}

func (p sendPhase) perS() float64 { return float64(p.sends) / p.elapsed.Seconds() }

// measure runs send from senders goroutines for a tenth of the phase
// unmeasured, then for the phase; send gets its sender's index.
func (b *vmBencher) measure(ctx context.Context, senders int, send func(context.Context, int) error) (sendPhase, error) {
	return measureFor(ctx, benchSeconds(b.sizes.PhaseS), senders, send)
}

// measureFor is measure for a phase of phase.
func measureFor(ctx context.Context, phase time.Duration, senders int, send func(context.Context, int) error) (sendPhase, error) {
	if _, _, err := runSenders(ctx, senders, phase/10, send); err != nil {
		return sendPhase{}, err
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n, elapsed, err := runSenders(ctx, senders, phase, send)
	runtime.ReadMemStats(&after)
	if err != nil {
		return sendPhase{}, err
	}
	return sendPhase{
		sends: n, elapsed: elapsed,
		mallocs: after.Mallocs - before.Mallocs, bytes: after.TotalAlloc - before.TotalAlloc,
	}, nil
}

// runSenders has senders goroutines call send until d has passed; it
// returns how many sends completed and the time they took. The first
// error stops every sender.
func runSenders(ctx context.Context, senders int, d time.Duration, send func(context.Context, int) error) (int, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		total atomic.Int64
		mu    sync.Mutex
		first error
	)
	start := time.Now()
	deadline := start.Add(d)
	for i := range senders {
		wg.Go(func() {
			n := 0
			for time.Now().Before(deadline) {
				if err := send(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
					break
				}
				n++
			}
			total.Add(int64(n))
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return 0, 0, fmt.Errorf("send: %w", first)
	}
	return int(total.Load()), elapsed, nil
}

// writeVMBenchTable prints the figures for people, with their ratios and
// targets.
func writeVMBenchTable(w io.Writer, r *vmBench) error {
	s, t := r.Sizes, r.Targets
	verdict := func(key string) string {
		if r.TargetsMet[key] {
			return "met"
		}
		return "MISSED"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "measure\tresult\ttarget\n")
	fmt.Fprintf(tw, "disk: append 4 KiB + fsync\t%.0f /s\t\n", r.FsyncPerS)
	fmt.Fprintf(tw, "read-only send, 1 sender\t%.0f /s\t\n", r.SendROPerS)
	fmt.Fprintf(tw, "read-only send, 1 sender, 1 core\t%.0f /s\t≥ %.0f /s: %s\n",
		r.SendROOneCorePerS, t.SendROOneCorePerS, verdict("send_ro_one_core_per_s"))
	fmt.Fprintf(tw, "  allocations per send\t%.0f (%.0f B)\t\n", r.SendROAllocs, r.SendROBytes)
	fmt.Fprintf(tw, "  the same in View, 1 core\t%.0f /s\t\n", r.SendROViewOneCorePerS)
	fmt.Fprintf(tw, "  1 core, with telemetry (best of %d)\t%.0f /s\t\n", s.TelemetryRounds, r.SendROOneCoreTelemetryPerS)
	fmt.Fprintf(tw, "  1 core, without telemetry (best of %d)\t%.0f /s\t\n", s.TelemetryRounds, r.SendROOneCoreNoTelemetryPerS)
	fmt.Fprintf(tw, "  telemetry overhead\t%.1f %%\t≤ %.0f %%: %s\n", r.TelemetryOverheadPct, t.TelemetryOverheadPct, verdict("telemetry_overhead_pct"))
	fmt.Fprintf(tw, "read-only send, %d senders\t%.0f /s\t\n", s.ParallelSenders, r.SendROParallelPerS)
	fmt.Fprintf(tw, "writing send, %d senders, own objects\t%.0f /s = %.2f× fsync\t≥ %.1f× fsync: %s\n",
		s.RWSenders, r.SendRWPerS, r.SendRWVsFsync, t.SendRWVsFsync, verdict("send_rw_vs_fsync"))
	if d := r.SendRWFsyncPerS; d[0] > 0 || d[1] > 0 {
		fmt.Fprintf(tw, "  fsync just before / after (the ratio's base: the higher)\t%.0f / %.0f /s\t\n", d[0], d[1])
	}
	fmt.Fprintf(tw, "  conflicts retried\t%d\t\n", r.ConflictsRetried)
	if a := r.Anchor; a != nil {
		fmt.Fprintf(tw, "anchor: the seed's send, Python, in memory (best of %d)\t%.0f /s\t\n", a.Rounds, a.SeedPerS)
		fmt.Fprintf(tw, "  batos read-only send, 1 core, own transaction (best of %d)\t%.0f /s\t\n", a.Rounds, a.BatosPerS)
		fmt.Fprintf(tw, "  ratio batos / seed\t%.2f×\t≥ %.1f×: %s\n", a.Ratio, anchorTarget, verdict("anchor_ratio"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nnote: %s", n)
	}
	_, err := fmt.Fprintln(w)
	return err
}
