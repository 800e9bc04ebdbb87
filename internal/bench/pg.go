package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/store/pg"
	"batos/internal/uvm"
)

// PGOptions configure RunPG: the options every benchmark takes (Dir
// holds the nodes' temporary files; Exe is the batos binary run as the
// nodes) and the database measured.
type PGOptions struct {
	Options
	// Store is the PostgreSQL URL (postgres://...) of the database
	// measured; RunPG requires it.
	Store string
}

// ErrNoStore is returned by RunPG when PGOptions.Store names no
// PostgreSQL database.
var ErrNoStore = errors.New("bench: no PostgreSQL database to measure (a postgres:// URL)")

// pgBenchSizes are the durations and the load of one run of bench pg.
type pgBenchSizes struct {
	Writers        int     `json:"writers"`
	PhaseS         float64 `json:"phase_s"`
	Population     int     `json:"population"`
	Txs            int     `json:"transactions"`
	ClientsPerNode int     `json:"clients_per_node"`
	Nodes          int     `json:"nodes"`
	Samples        int     `json:"latency_samples"`
}

var (
	fullPGBench  = pgBenchSizes{Writers: 8, PhaseS: 5, Population: 1_000, Txs: 2_000, ClientsPerNode: 8, Nodes: 3, Samples: 200}
	quickPGBench = pgBenchSizes{Writers: 8, PhaseS: 0.3, Population: 160, Txs: 80, ClientsPerNode: 2, Nodes: 3, Samples: 10}
)

// pgBench is the outcome of "bench pg"; its JSON is the -json output.
type pgBench struct {
	Database string       `json:"database"`
	Schema   string       `json:"schema"`
	Server   string       `json:"server_version"`
	Quick    bool         `json:"quick"`
	Sizes    pgBenchSizes `json:"sizes"`

	RawTxPerS         float64 `json:"raw_tx_per_s"`
	Raw1TxPerS        float64 `json:"raw1_tx_per_s"`
	CommitTxPerS      float64 `json:"commit_tx_per_s"`
	Commit10TxPerS    float64 `json:"commit10_tx_per_s"`
	ConflictsRetried  int     `json:"conflicts_retried"`
	Nodes1TxPerS      float64 `json:"nodes1_tx_per_s"`
	NodesNTxPerS      float64 `json:"nodesN_tx_per_s"`
	EventP50Ms        float64 `json:"a_to_b_event_p50_ms"`
	EventP90Ms        float64 `json:"a_to_b_event_p90_ms"`
	SendToEventP50Ms  float64 `json:"a_send_to_b_event_p50_ms"`
	SendToEventP90Ms  float64 `json:"a_send_to_b_event_p90_ms"`
	ReplyP50Ms        float64 `json:"a_reply_p50_ms"`
	EventsBeforeReply int     `json:"events_on_b_before_reply"`
	CommitVsRaw       float64 `json:"commit_vs_raw"`
	NodesNVs1         float64 `json:"nodesN_vs_1"`

	Targets    pgBenchTargets  `json:"targets"`
	TargetsMet map[string]bool `json:"targets_met"`
	Notes      []string        `json:"notes"`
}

// pgBenchTargets are what the engine is meant to reach.
type pgBenchTargets struct {
	CommitVsRaw float64 `json:"commit_vs_raw_min"`
}

var pgTargets = pgBenchTargets{CommitVsRaw: 0.5}

// RunPG measures the PostgreSQL engine against the database at
// opts.Store, on the server it is on: a raw pgx baseline (Writers
// connections each inserting one row per transaction into a plain
// table), the image's commit path from Writers writers over the engine,
// the aggregate throughput of "batos run" nodes (opts.Exe, spawned) on
// one database, 1 against Nodes, and the latency from a commit answered
// on one node to its event on another's SUB socket. Everything it
// creates is in scratch schemas of that database, dropped afterwards;
// the nodes' files go in a temporary directory under opts.Dir. It prints
// the outcome to stdout and its progress to log. Timing decides no
// error.
func RunPG(ctx context.Context, opts *PGOptions, stdout, log io.Writer) error {
	if opts == nil || !uvm.IsDatabase(opts.Store) {
		return ErrNoStore
	}
	if opts.Exe == "" {
		return ErrNoExe
	}
	sizes := fullPGBench
	if opts.Quick {
		sizes = quickPGBench
	}
	stop, err := opts.profile()
	if err != nil {
		return err
	}
	defer stop()
	res, err := benchPG(ctx, opts, sizes, log)
	if err != nil {
		return err
	}
	return opts.report(stdout, res, &res.Quick, &res.Notes, "a fraction of a second per phase and few clients", func() error { return writePGBenchTable(stdout, res) })
}

// pgBencher runs the phases of bench pg.
type pgBencher struct {
	opts  *PGOptions
	sizes pgBenchSizes
	dir   string // temporary directory of the nodes' files
	log   io.Writer
	res   *pgBench
	// commitURL and nodesURL are opts.Store with search_path set to the
	// scratch schema of the raw and commit phases, and of the nodes.
	commitURL, nodesURL string
}

// benchPG measures the engine in scratch schemas, dropped afterwards,
// printing phase names to log.
func benchPG(ctx context.Context, opts *PGOptions, sizes pgBenchSizes, log io.Writer) (_ *pgBench, err error) {
	schema := "batos_bench_" + randomHex(4)
	b := &pgBencher{opts: opts, sizes: sizes, log: log, res: &pgBench{
		Database: uvm.DisplayName(opts.Store), Schema: schema, Sizes: sizes, Targets: pgTargets,
	}}
	if b.commitURL, err = withSearchPath(opts.Store, schema+"_commit"); err != nil {
		return nil, err
	}
	if b.nodesURL, err = withSearchPath(opts.Store, schema+"_nodes"); err != nil {
		return nil, err
	}
	if b.dir, err = os.MkdirTemp(opts.dir(), "batos-bench-pg-"); err != nil {
		return nil, fmt.Errorf("make benchmark directory: %w", err)
	}
	defer os.RemoveAll(b.dir)
	drop, err := b.createSchemas(ctx, schema+"_commit", schema+"_nodes")
	if err != nil {
		return nil, err
	}
	defer func() {
		if dropErr := drop(); err == nil && dropErr != nil {
			err = dropErr
		}
	}()
	for _, step := range []func(context.Context) error{b.raw, b.commits, b.nodes} {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	b.res.conclude()
	b.phase("done; dropping the schemas %s_commit and %s_nodes", schema, schema)
	return b.res, nil
}

func (b *pgBencher) phase(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

func randomHex(n int) string {
	buf := make([]byte, n)
	rand.Read(buf)
	return hex.EncodeToString(buf)
}

// withSearchPath is the database URL rawURL with search_path set to
// schema: the engine puts its tables in the connection's current schema.
func withSearchPath(rawURL, schema string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("bench: parse the database URL %s: %w", uvm.DisplayName(rawURL), err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// connect opens one connection to the database at rawURL with commits
// durable on return, as the engine's are.
func connect(ctx context.Context, rawURL string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	cfg.RuntimeParams["synchronous_commit"] = "on"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("bench: connect to %s: %w", uvm.DisplayName(rawURL), err)
	}
	return conn, nil
}

// createSchemas creates the scratch schemas and notes the server's
// version; drop drops them with everything in them.
func (b *pgBencher) createSchemas(ctx context.Context, schemas ...string) (drop func() error, err error) {
	conn, err := connect(ctx, b.opts.Store)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&b.res.Server); err != nil {
		return nil, fmt.Errorf("bench: read the server's version: %w", err)
	}
	b.phase("working in the schemas %s of %s (PostgreSQL %s); nodes' files in %s", schemas, b.res.Database, b.res.Server, b.dir)
	drop = func() error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		conn, err := connect(ctx, b.opts.Store)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		for _, s := range schemas {
			if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
				return fmt.Errorf("bench: drop the scratch schema %s: %w", s, err)
			}
		}
		return nil
	}
	for _, s := range schemas {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{s}.Sanitize()); err != nil {
			drop()
			return nil, fmt.Errorf("bench: create the scratch schema %s: %w", s, err)
		}
	}
	return drop, nil
}

// rawRowBytes is the size of the payload of each raw row: about a small
// object's record.
const rawRowBytes = 100

// raw measures the baseline: Writers connections, each inserting one row
// per transaction into a plain table, for the phase.
func (b *pgBencher) raw(ctx context.Context) error {
	s := b.sizes
	conns := make([]*pgx.Conn, s.Writers)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close(context.WithoutCancel(ctx))
			}
		}
	}()
	for i := range conns {
		var err error
		if conns[i], err = connect(ctx, b.commitURL); err != nil {
			return err
		}
	}
	if _, err := conns[0].Exec(ctx, `CREATE TABLE raw_commit (
	id bigserial PRIMARY KEY, writer integer NOT NULL, n bigint NOT NULL, data bytea NOT NULL)`); err != nil {
		return fmt.Errorf("bench: create the raw table: %w", err)
	}
	payload := make([]byte, rawRowBytes)
	counts := make([]int64, s.Writers)
	insert := func(ctx context.Context, w int) error {
		counts[w]++
		_, err := conns[w].Exec(ctx, "INSERT INTO raw_commit (writer, n, data) VALUES ($1, $2, $3)", w, counts[w], payload)
		return err
	}
	for _, n := range []int{1, s.Writers} {
		b.phase("raw: %d connection(s) inserting one %d-byte row per transaction, for %s", n, rawRowBytes, benchSeconds(s.PhaseS))
		p, err := measureFor(ctx, benchSeconds(s.PhaseS), n, insert)
		if err != nil {
			return fmt.Errorf("bench: raw inserts: %w", err)
		}
		if n == 1 {
			b.res.Raw1TxPerS = p.perS()
		} else {
			b.res.RawTxPerS = p.perS()
		}
		b.phase("raw: %d connection(s): %.0f tx/s", n, p.perS())
	}
	return nil
}

// commits measures the image's commit path over the engine: Writers
// writers, each on its own objects, running transactions of 1 and of 10
// objects, as bench store's do on a disk.
func (b *pgBencher) commits(ctx context.Context) error {
	s := b.sizes
	engine, err := pg.Open(ctx, b.commitURL, nil)
	if err != nil {
		return err
	}
	defer engine.Close()
	db := image.New(engine, &image.Options{User: b.opts.User})
	if _, err := db.Init(ctx); err != nil {
		return err
	}
	b.phase("commit: creating %d objects", s.Population)
	var oids []store.OID
	err = db.Update(ctx, func(tx *image.Tx) error {
		oids, err = addLinked(tx, benchPopulationSlot, 0, s.Population, 100)
		return err
	})
	if err != nil {
		return fmt.Errorf("create population: %w", err)
	}
	for _, perTx := range []int{1, 10} {
		b.phase("commit: %d transactions of %d object(s) from %d writers", s.Txs, perTx, s.Writers)
		sb := &storeBencher{sizes: benchSizes{Txs: s.Txs, PerTx: perTx}}
		perS, conflicts, err := sb.throughput(ctx, db, oids, s.Writers)
		if err != nil {
			return err
		}
		b.res.ConflictsRetried += conflicts
		if perTx == 1 {
			b.res.CommitTxPerS = perS
		} else {
			b.res.Commit10TxPerS = perS
		}
		b.phase("commit: %.0f tx/s, %d conflicts retried", perS, conflicts)
	}
	return nil
}

// conclude fills in the ratios, the verdict and the notes.
func (r *pgBench) conclude() {
	r.CommitVsRaw = r.CommitTxPerS / r.RawTxPerS
	r.NodesNVs1 = r.NodesNTxPerS / r.Nodes1TxPerS
	r.TargetsMet = map[string]bool{"commit_vs_raw": r.CommitVsRaw >= r.Targets.CommitVsRaw}
	s := r.Sizes
	r.Notes = append(r.Notes,
		fmt.Sprintf("raw: 1, then %d pgx connections, each inserting one %d-byte row per transaction (autocommit INSERT, synchronous_commit on) into a plain table, for %gs after a tenth of that unmeasured; commit_vs_raw compares with the %d", s.Writers, rawRowBytes, s.PhaseS, s.Writers),
		fmt.Sprintf("commit: image.DB.Update over the pg engine (its default pool) from %d writers, each bumping a count slot of its own objects (bench store's workload), %d transactions of 1 object, then of 10; commit_vs_raw compares the 1-object rate", s.Writers, s.Txs),
		fmt.Sprintf("nodes: batos run processes on one database, %d bridge clients per node, each sending a method that bumps a slot of its own object, one send at a time, for %gs after a tenth of that unmeasured: 1 node, then %d", s.ClientsPerNode, s.PhaseS, s.Nodes),
		fmt.Sprintf("latency: %d sends, one at a time, through node A; a_to_b_event is from A's reply reaching the client (the commit acknowledged) to the commit's event reaching a SUB socket on node B, which learns of it from the database: negative when B's event came first; a_send_to_b_event is from the request's send", s.Samples),
		"every commit, from any node, takes one database-wide advisory lock and holds it until its COMMIT has flushed, so a database's commits are serial; a node groups the commits that wait meanwhile into one PostgreSQL transaction (one flush for all), and the raw rate, which PostgreSQL's own group commit lifts with more connections, bounds them from above",
		"client, nodes and server share this machine's cores when the server is local: the ratios are what compare",
	)
	if r.ConflictsRetried > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d transactions were rerun after write conflicts although the writers' objects are disjoint", r.ConflictsRetried))
	}
}

// writePGBenchTable prints the figures for people, with their ratios and
// the target.
func writePGBenchTable(w io.Writer, r *pgBench) error {
	s := r.Sizes
	verdict := "MISSED"
	if r.TargetsMet["commit_vs_raw"] {
		verdict = "met"
	}
	fmt.Fprintf(w, "database %s (PostgreSQL %s), scratch schemas %s_*\n\n", r.Database, r.Server, r.Schema)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "measure\tresult\tratio\ttarget\n")
	fmt.Fprintf(tw, "raw pgx: 1 connection, 1 row per transaction\t%.0f tx/s\t\t\n", r.Raw1TxPerS)
	fmt.Fprintf(tw, "raw pgx: %d connections, 1 row per transaction\t%.0f tx/s\t\t\n", s.Writers, r.RawTxPerS)
	fmt.Fprintf(tw, "batos commit: %d writers, 1-object transactions\t%.0f tx/s\t%.2f× raw\t≥ %.1f× raw: %s\n", s.Writers, r.CommitTxPerS, r.CommitVsRaw, r.Targets.CommitVsRaw, verdict)
	fmt.Fprintf(tw, "batos commit: %d writers, 10-object transactions\t%.0f tx/s\t%.2f× raw\t\n", s.Writers, r.Commit10TxPerS, r.Commit10TxPerS/r.RawTxPerS)
	fmt.Fprintf(tw, "  conflicts retried\t%d\t\t\n", r.ConflictsRetried)
	fmt.Fprintf(tw, "1 batos run node, %d clients\t%.0f tx/s\t\t\n", s.ClientsPerNode, r.Nodes1TxPerS)
	fmt.Fprintf(tw, "%d batos run nodes, %d clients each\t%.0f tx/s\t%.2f× 1 node\t\n", s.Nodes, s.ClientsPerNode, r.NodesNTxPerS, r.NodesNVs1)
	fmt.Fprintf(tw, "commit acknowledged on A → its event on B's SUB\tp50 %.2f ms, p90 %.2f ms\t\t\n", r.EventP50Ms, r.EventP90Ms)
	fmt.Fprintf(tw, "  send on A → event on B\tp50 %.2f ms, p90 %.2f ms\t\t\n", r.SendToEventP50Ms, r.SendToEventP90Ms)
	fmt.Fprintf(tw, "  the send's round trip on A\tp50 %.2f ms\t\t\n", r.ReplyP50Ms)
	fmt.Fprintf(tw, "  B's event before A's reply\t%d of %d\t\t\n", r.EventsBeforeReply, s.Samples)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nnote: %s", n)
	}
	_, err := fmt.Fprintln(w)
	return err
}
