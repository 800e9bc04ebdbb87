package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"batos/internal/bench"
)

// The benchmarks themselves are in internal/bench; this file is their
// command line.

func init() {
	g := &group{name: "bench", about: "Measure batos on this machine.", subs: []subcommand{
		{"store", "[-json] [-dir DIR] [-quick]", "the storage engine on this disk", runBenchStore, false},
		{"vm", "[-json] [-dir DIR] [-quick] [-anchor] [-anchor-script FILE]", "message sends, each its own transaction", runBenchVM, false},
		{"bridge", "[-json] [-dir DIR] [-quick]", "round trips through the ZeroMQ bridge", runBenchBridge, false},
		{"cycle", "[-json] [-n N] [-dir DIR]", "the cognitive cycle's own overhead", runBenchCycle, false},
		{"catalog", "[-json] [-chunks N] [-dir DIR]", "the knowledge catalog's ingest and search", runBenchCatalog, false},
		{"pg", "-store URL [-json] [-dir DIR] [-quick]", "the PostgreSQL engine against raw pgx, and batos run nodes on one database", runBenchPG, false},
		{"learn", "[-json] [-suite FILE] [-only A,B] [-keep DIR]", "how well the mind learns", runBenchLearn, false},
		// The child process of bench store, not for people.
		{"coldload", "", "", runColdLoad, true},
	}}
	commands["bench"] = cliCommand{"measure the storage engine on this disk (bench store), message sends (bench vm), the ZeroMQ bridge (bench bridge), the cognitive cycle's overhead (bench cycle), the knowledge catalog's ingest and search (bench catalog), the PostgreSQL engine and nodes on one database (bench pg) or how well the mind learns (bench learn)", g.run}
}

const benchStoreHelp = `
Measure the image's real storage path on the disk holding DIR: image.DB over
the bolt store, fsync on, the real codec. Each figure is shown beside the raw
write+fsync rate of the same disk, its target and ZODB 6 FileStorage.

Phases: the disk's fsync rate; transactions changing 10 objects each, from 1
and from 8 writers; one transaction adding 100,000 objects; loading them all
in a fresh process (the file stays warm in the page cache); the history of an
object with 100 revisions; undoing 10-object transactions; opening a
1,000,000-object image. A full run takes from seconds to a minute and about
250 MB in a temporary directory under DIR, removed afterwards.`

const benchVMHelp = `
Measure message sends the way a server runs them: each send is its own
image transaction (image.DB.Update) around vm.Send, on an image over the
bolt store on the disk holding DIR, fsync on. Each figure is shown beside
the raw write+fsync rate of the same disk and its target.

Phases: the disk's fsync rate; a read-only send (a method found two parents
up that reads slots of both parents) from one sender, from one sender with
GOMAXPROCS=1, the same in image.DB.View, and from one sender per CPU; a
send writing one slot from 8 senders, each on its own object, each send a
durable transaction; and the one-core read-only send with the method
telemetry on and off, alternately, and its overhead. A full run takes about
17 seconds.

With -anchor, the run also measures the seed's own message send, the anchor
the one-core figure is judged by: the blueprint's object model in Python
(persistent.Persistent objects, slots in a PersistentMapping, parent*
delegation through __getattr__), sending the same read-only message in
memory, with no transaction. It runs alternately with batos's one-core
read-only send, 3 times each, and the table shows the best of each and
their ratio, against a target of 1.0. The script is the copy batos carries,
or the one -anchor-script names; it runs on -anchor-python, by default
/usr/bin/python3, which needs Debian's python3-persistent (make deps-test
installs it). The anchor adds about 10 seconds.`

const benchBridgeHelp = `
Measure the bridge: round trips per second and their latency for a read-only
send through a real zmqbridge.Server serving a uvm, on an image in a
temporary directory under DIR, over TCP loopback; beside them, measured in
the same run with the same clients, a bare ROUTER that echoes each message
back (the transport alone), and bench vm's one-core read-only send in
process (send_ro_one_core_per_s), before the bridge's phases and after them.
The table shows the bridge's best rate as a ratio to each: the target is at
least 0.7× the in-process send and 0.5× the echo.

Every phase keeps 100 requests in flight in total, from 1 client and from 8
clients (each its own DEALER socket); each reply sends the next request. The
send is bench_total to genesis, a method installed through eval that reads
two slots. A full run takes about 15 seconds.`

const benchCycleHelp = `
Measure what the cognitive cycle itself costs: N complete cycles, one at a
time, each teaching genesis a selector it lacks (display_yourself_1, _2, ...),
on an image in a temporary directory under DIR: the bolt store with fsync on,
the real VM, guardian audit and sandboxed tests, and a mind whose model is
scripted and answers at once, in this process (BRICK a plan with two
sub-questions, BABS and ALFRED a line each, ROBIN the method).

A cycle's wall time runs from cycle.Machine.Start to its COMPLETE; the time
inside the model is the time during which at least one of its chat calls
was running; the overhead is the difference. The target is an overhead
p50 under 5 ms. A run of 200 cycles takes a few seconds.`

const benchCatalogHelp = `
Measure the knowledge catalog at N chunks of a generated corpus (200 topics
of invented words; each chunk 100 to 150 words and a 384-dimension vector
from a deterministic stand-in for an embedding model, whose time is not
counted), on an image over the bolt store with fsync on, in a temporary
directory under DIR, and its indexes beside it (bleve BM25 and HNSW).

Phases: the disk's fsync rate; ingest: documents of 100 chunks prepared
(parsed and chunked), written with catalog.Write a few documents a
transaction, then indexed by the index catching up with the log, each rate
shown apart; 300 searches (fewer under 3,000 chunks) by text, by vector
and by both (with and without reading the hits from the image), p50 and
p99; the vector search's
recall@10 against exact cosine similarity; the first 10 queries answered
by a scan that reads every chunk from the image, the baseline the hybrid
search's speedup is measured against; reopening the index against
rebuilding it, and the memory the open index holds. Targets: hybrid p50
under 10 ms, recall@10 at least 0.95, a speedup of at least 50×. A run at
100,000 chunks takes several minutes and about 1 GB under DIR.`

// benchFlags adds the flags every benchmark shares to fs; dirHelp
// says what -dir is for.
func benchFlags(fs *flag.FlagSet, opts *bench.Options, dirHelp string) {
	fs.BoolVar(&opts.JSON, "json", false, "print JSON instead of a table")
	fs.StringVar(&opts.Dir, "dir", ".", dirHelp)
}

// parseBenchFlags parses a benchmark's flags; it takes no arguments.
func parseBenchFlags(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("%s takes no arguments", fs.Name())
	}
	return nil
}

const benchDiskDirHelp = "measure the disk holding `DIR` (files go in a temporary directory inside it)"

func runBenchStore(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "bench store", "[-json] [-dir DIR] [-quick]", benchStoreHelp)
	opts := &bench.Options{User: currentUser()}
	benchFlags(fs, opts, benchDiskDirHelp)
	fs.BoolVar(&opts.Quick, "quick", false, "tiny sizes, to check the benchmark runs; figures mean little")
	fs.StringVar(&opts.Exe, "exe", "", "batos `binary` that runs the cold-load child (default: this program)")
	fs.StringVar(&opts.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to `FILE`")
	if err := parseBenchFlags(fs, args); err != nil {
		return err
	}
	if opts.Exe == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this program for the cold-load child: %w", err)
		}
		opts.Exe = self
	}
	return bench.RunStore(ctx, opts, e.stdout, e.stderr)
}

// runColdLoad is the child of bench store (bench.ColdLoad).
func runColdLoad(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "bench coldload", "[-slot NAME]", "Load every object bench store linked under a root slot; print the seconds taken as JSON.")
	slot := fs.String("slot", bench.BulkSlot, "root slot holding the containers")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return bench.ColdLoad(ctx, e.image, *slot, e.stdout)
}

func runBenchVM(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "bench vm", "[-json] [-dir DIR] [-quick] [-anchor] [-anchor-script FILE]", benchVMHelp)
	opts := &bench.Options{User: currentUser()}
	benchFlags(fs, opts, benchDiskDirHelp)
	fs.BoolVar(&opts.Quick, "quick", false, "a fraction of a second per phase, to check the benchmark runs; figures mean little")
	fs.StringVar(&opts.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to `FILE`")
	fs.BoolVar(&opts.Anchor, "anchor", false, "also measure the seed's own message send in Python, and show the ratio")
	fs.StringVar(&opts.AnchorScript, "anchor-script", "", "run the seed's send from `FILE` instead of the copy batos carries (implies -anchor)")
	fs.StringVar(&opts.Python, "anchor-python", bench.DefaultPython, "run the anchor with the Python at `PATH`, which needs the persistent module")
	if err := parseBenchFlags(fs, args); err != nil {
		return err
	}
	if opts.AnchorScript != "" {
		opts.Anchor = true
	}
	return bench.RunVM(ctx, opts, e.stdout, e.stderr)
}

func runBenchBridge(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "bench bridge", "[-json] [-dir DIR] [-quick]", benchBridgeHelp)
	opts := &bench.Options{}
	benchFlags(fs, opts, "put the image in a temporary directory inside `DIR`")
	fs.BoolVar(&opts.Quick, "quick", false, "a fraction of a second per phase, to check the benchmark runs; figures mean little")
	fs.StringVar(&opts.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to `FILE`")
	if err := parseBenchFlags(fs, args); err != nil {
		return err
	}
	return bench.RunBridge(ctx, opts, e.stdout, e.stderr)
}

func runBenchCycle(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "bench cycle", "[-json] [-n N] [-dir DIR]", benchCycleHelp)
	opts := &bench.Options{}
	benchFlags(fs, opts, "put the image in a temporary directory inside `DIR`")
	fs.IntVar(&opts.Cycles, "n", bench.DefaultCycles, "measure `N` cycles")
	fs.StringVar(&opts.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured cycles to `FILE`")
	if err := parseBenchFlags(fs, args); err != nil {
		return err
	}
	if opts.Cycles < 1 {
		return usageError("bench cycle: -n must be at least 1")
	}
	return bench.RunCycle(ctx, opts, e.stdout, e.stderr)
}

func runBenchCatalog(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "bench catalog", "[-json] [-chunks N] [-dir DIR]", benchCatalogHelp)
	opts := &bench.Options{User: currentUser()}
	benchFlags(fs, opts, benchDiskDirHelp)
	fs.IntVar(&opts.Chunks, "chunks", bench.DefaultCatalogChunks, "measure a catalog of `N` chunks")
	fs.StringVar(&opts.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to `FILE`")
	if err := parseBenchFlags(fs, args); err != nil {
		return err
	}
	if opts.Chunks < 1 {
		return usageError("bench catalog: -chunks must be at least 1")
	}
	return bench.RunCatalog(ctx, opts, e.stdout, e.stderr)
}
