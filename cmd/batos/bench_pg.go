package main

import (
	"context"
	"fmt"
	"os"

	"batos/internal/bench"
	"batos/internal/uvm"
)

const benchPGHelp = `
Measure the PostgreSQL engine on the server holding the database -store
names (or BATOS_STORE), all in one run: a raw pgx baseline, 8 connections
each inserting one row per transaction into a plain table; the image's
commit path (image.DB.Update) from 8 writers on the engine, 1-object and
10-object transactions, its rate beside the raw one and the target of at
least half of it; the aggregate throughput of batos run nodes (this
program, spawned) on one database, 8 bridge clients per node each bumping
its own object, 1 node against 3; and the latency from a commit answered on
node A to its event on node B's SUB socket, p50 and p90.

Everything is created in two scratch schemas of that database
(batos_bench_<random>_commit and _nodes), dropped afterwards; the image the
database may hold is not touched, but every commit takes the database's
commit lock, so run it where nobody else is committing. A full run takes
about 40 seconds.`

func runBenchPG(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "bench pg", "-store URL [-json] [-dir DIR] [-quick]", benchPGHelp)
	opts := &bench.PGOptions{Options: bench.Options{User: currentUser()}}
	benchFlags(fs, &opts.Options, "put the nodes' files in a temporary directory inside `DIR`")
	fs.BoolVar(&opts.Quick, "quick", false, "a fraction of a second per phase and few clients, to check the benchmark runs; figures mean little")
	fs.StringVar(&opts.Exe, "exe", "", "batos `binary` run as the nodes (default: this program)")
	fs.StringVar(&opts.CPUProfile, "cpuprofile", "", "write a CPU profile of this process over the whole run to `FILE`")
	if err := parseBenchFlags(fs, args); err != nil {
		return err
	}
	// -store (before or after the command, or BATOS_STORE) names the
	// database, as for every command.
	opts.Store = e.image
	if !uvm.IsDatabase(opts.Store) {
		return usageError("bench pg: -store wants a PostgreSQL database, postgres://…")
	}
	if opts.Exe == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this program to run as the nodes: %w", err)
		}
		opts.Exe = self
	}
	return bench.RunPG(ctx, opts, e.stdout, e.stderr)
}
