package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"batos/internal/catalog"
	"batos/internal/catalog/index"
	"batos/internal/image"
	"batos/internal/store"
)

// DefaultCatalogChunks is the size of the corpus RunCatalog measures by
// default.
const DefaultCatalogChunks = 100_000

// The shape of a bench catalog run.
const (
	catalogChunksPerDoc = 100
	catalogDocsPerTx    = 4
	// catalogQueries is the number of queries timed in each mode; a
	// catalog of fewer than ten times as many chunks gets one query per
	// ten chunks, and at least catalogMinQueries.
	catalogQueries     = 300
	catalogMinQueries  = 50
	catalogWarmup      = 20
	catalogScanQueries = 10
	catalogK           = 10
	// catalogModel names the corpus's embedding model: the documents
	// record it and the index is opened for it.
	catalogModel = "bench-corpus-384"
	catalogSeed  = 1
)

// catalogBounds make each Markdown section of the corpus one chunk: a
// section of 150 invented words stays under 1,300 bytes.
var catalogBounds = catalog.Bounds{MinTokens: 32, MaxTokens: 512}

// catalogBench is the outcome of "bench catalog"; its JSON is the -json
// output.
type catalogBench struct {
	Dir          string  `json:"dir"`
	Chunks       int     `json:"chunks"`
	Documents    int     `json:"documents"`
	Transactions int     `json:"transactions"`
	DocsPerTx    int     `json:"documents_per_transaction"`
	Topics       int     `json:"topics"`
	Dims         int     `json:"dims"`
	Queries      int     `json:"queries"`
	ScanQueries  int     `json:"scan_queries"`
	K            int     `json:"k"`
	FsyncPerS    float64 `json:"fsync_per_s"`

	// The machine while the run ran: its CPUs, its load average (1
	// minute) at the start and the end, and this process's wall and CPU
	// time, whole and by phase. A load above the CPUs means other
	// processes took CPU time from the run, and its wall-clock figures
	// are inflated by it.
	CPUs      int                `json:"cpus"`
	LoadStart float64            `json:"load_average_start"`
	LoadEnd   float64            `json:"load_average_end"`
	WallS     float64            `json:"wall_s"`
	CPUS      map[string]float64 `json:"cpu_s"`

	// Ingest: catalog.Prepare (parse, split into sentences, group into
	// chunks), catalog.Write in durable transactions, and the index's
	// Sync catching up with them plus its save; ingest_s is their sum.
	PrepareS           float64 `json:"prepare_s"`
	WriteS             float64 `json:"image_write_s"`
	IndexS             float64 `json:"index_build_s"`
	IngestS            float64 `json:"ingest_s"`
	PrepareChunksPerS  float64 `json:"prepare_chunks_per_s"`
	WriteChunksPerS    float64 `json:"image_write_chunks_per_s"`
	IndexChunksPerS    float64 `json:"index_build_chunks_per_s"`
	IngestChunksPerS   float64 `json:"ingest_chunks_per_s"`
	ImageBytesPerChunk float64 `json:"image_bytes_per_chunk"`
	IndexBytesPerChunk float64 `json:"index_bytes_per_chunk"`

	// Search latencies: index.Search by text alone (BM25), by vector
	// alone (HNSW) and by both (fused); search_hybrid_ms adds reading
	// the hits from the image, as the library does.
	Text        latencyMs `json:"search_text_ms"`
	Vector      latencyMs `json:"search_vector_ms"`
	HybridIndex latencyMs `json:"search_hybrid_index_ms"`
	Hybrid      latencyMs `json:"search_hybrid_ms"`
	Recall10    float64   `json:"recall_at_10"`
	Scan        latencyMs `json:"scan_ms"`
	Speedup     float64   `json:"hybrid_speedup_vs_scan"`

	// Reopening: index.Open on an up-to-date index against Reindex, and
	// the memory the open index holds.
	OpenMs        float64 `json:"index_open_ms"`
	ReindexS      float64 `json:"index_rebuild_s"`
	RSSMB         float64 `json:"rss_mb_after_open"`
	RSSAddedMB    float64 `json:"rss_mb_added_by_open"`
	RSSPer100kMB  float64 `json:"rss_mb_added_per_100k_chunks"`
	HeapMB        float64 `json:"heap_mb_after_open"`
	HeapAddedMB   float64 `json:"heap_mb_added_by_open"`
	HeapPer100kMB float64 `json:"heap_mb_added_per_100k_chunks"`

	Targets    catalogBenchTargets `json:"targets"`
	TargetsMet map[string]bool     `json:"targets_met"`
	Notes      []string            `json:"notes"`
}

// latencyMs are the median and 99th percentile of a set of timings.
type latencyMs struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

func latencies(ds []time.Duration) latencyMs {
	return latencyMs{P50: quantileMs(ds, 0.5), P99: quantileMs(ds, 0.99)}
}

// catalogBenchTargets are what the catalog is meant to reach at 100,000
// chunks.
type catalogBenchTargets struct {
	HybridMsP50 float64 `json:"search_hybrid_ms_p50_max"`
	Recall10    float64 `json:"recall_at_10_min"`
	Speedup     float64 `json:"hybrid_speedup_vs_scan_min"`
}

var catalogTargets = catalogBenchTargets{HybridMsP50: 10, Recall10: 0.95, Speedup: 50}

// RunCatalog measures the knowledge catalog on a generated corpus of
// opts.Chunks chunks (DefaultCatalogChunks when 0): ingest into an image
// over the bolt store (fsync on) and its indexes, search by text, vector
// and both, the vector index's recall, a scan of every chunk as the
// baseline, and reopening the index. Everything lives in a temporary
// directory under opts.Dir, removed afterwards. It prints the outcome to
// stdout and its progress to log.
func RunCatalog(ctx context.Context, opts *Options, stdout, log io.Writer) error {
	opts = opts.orDefault()
	n := opts.Chunks
	if n == 0 {
		n = DefaultCatalogChunks
	}
	if n < 0 {
		return fmt.Errorf("bench: a catalog of %d chunks", n)
	}
	stop, err := opts.profile()
	if err != nil {
		return err
	}
	defer stop()
	res, err := benchCatalog(ctx, opts.dir(), n, opts.User, log)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(stdout, res)
	}
	return writeCatalogBenchTable(stdout, res)
}

// catalogBencher runs the phases of bench catalog on one image.
type catalogBencher struct {
	dir  string
	user string
	log  io.Writer
	c    *corpus
	n    int
	res  *catalogBench

	db *benchImage
	ix *index.Index
	// keys and vecs are the chunks and their vectors (row i of vecs,
	// corpusDims wide, is keys[i]'s), for the exact search.
	keys []store.OID
	vecs []float32
	// queries, their vectors and the chunks the vector search found
	// for each.
	queries []string
	qvecs   [][]float32
	vecHits [][]store.OID
}

// benchCatalog measures a catalog of n chunks in a fresh directory under
// parent, removed afterwards, printing progress to log.
func benchCatalog(ctx context.Context, parent string, n int, user string, log io.Writer) (*catalogBench, error) {
	dir, err := os.MkdirTemp(parent, "batos-bench-catalog-")
	if err != nil {
		return nil, fmt.Errorf("make benchmark directory: %w", err)
	}
	defer os.RemoveAll(dir)
	run := startWatch()
	b := &catalogBencher{dir: dir, user: user, log: log, c: newCorpus(catalogSeed), n: n, res: &catalogBench{
		Dir: dir, DocsPerTx: catalogDocsPerTx, Topics: corpusTopics, Dims: corpusDims,
		Queries: min(catalogQueries, max(catalogMinQueries, n/10)), K: catalogK, Targets: catalogTargets,
		CPUs: runtime.NumCPU(), LoadStart: loadAverage(), CPUS: map[string]float64{},
	}}
	defer b.close()
	b.phase("working in %s (load average %.2f on %d CPUs)", dir, b.res.LoadStart, b.res.CPUs)
	for _, step := range []func(context.Context) error{b.fsync, b.ingest, b.search, b.recall, b.scan, b.reopen} {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	if err := b.close(); err != nil {
		return nil, err
	}
	t := run.times()
	b.res.WallS, b.res.CPUS["run"], b.res.LoadEnd = t.wall.Seconds(), t.cpu.Seconds(), loadAverage()
	b.res.conclude()
	b.phase("done; removing %s", dir)
	return b.res, nil
}

func (b *catalogBencher) phase(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

func (b *catalogBencher) imagePath() string { return filepath.Join(b.dir, "catalog.db") }
func (b *catalogBencher) indexDir() string  { return b.imagePath() + ".index" }

// close closes the index and the image, if open.
func (b *catalogBencher) close() error {
	var err error
	if b.ix != nil {
		err = b.ix.Close()
		b.ix = nil
	}
	if b.db != nil {
		if cerr := b.db.Close(); err == nil {
			err = cerr
		}
		b.db = nil
	}
	return err
}

func (b *catalogBencher) openIndex(ctx context.Context) (index.Report, error) {
	ix, rep, err := index.Open(ctx, b.indexDir(), b.db.DB, &index.Options{Model: catalogModel})
	if err != nil {
		return rep, err
	}
	b.ix = ix
	return rep, nil
}

// fsync measures the disk's raw rate of appending 4 KiB and syncing.
func (b *catalogBencher) fsync(ctx context.Context) error {
	b.phase("fsync: appending 4 KiB + fsync for 200ms")
	perS, err := fsyncRate(ctx, b.dir, 200*time.Millisecond)
	if err != nil {
		return err
	}
	b.res.FsyncPerS = perS
	b.phase("fsync: %.0f/s", perS)
	return nil
}

// preparedDoc is a document ready to write and its chunks' vectors.
type preparedDoc struct {
	p    *catalog.Prepared
	vecs [][]float32
}

// ingest writes the corpus into the image, catalogDocsPerTx documents a
// transaction, then has the index catch up with it.
func (b *catalogBencher) ingest(ctx context.Context) error {
	db, err := openBenchImage(ctx, b.imagePath(), b.user)
	if err != nil {
		return err
	}
	b.db = db
	// The index is opened on the empty catalog, so that indexing the
	// corpus is Sync catching up with the log, as in a running batos.
	if _, err := b.openIndex(ctx); err != nil {
		return err
	}
	docs := (b.n + catalogChunksPerDoc - 1) / catalogChunksPerDoc
	b.res.Documents = docs
	b.phase("ingest: %d chunks in %d documents, %d documents a transaction", b.n, docs, catalogDocsPerTx)
	var prep, write times
	var batch []preparedDoc
	report := b.n / 10
	for i := range docs {
		d, took, err := b.prepare(i, min(catalogChunksPerDoc, b.n-i*catalogChunksPerDoc))
		if err != nil {
			return err
		}
		prep.add(took)
		batch = append(batch, d)
		if len(batch) < catalogDocsPerTx && i < docs-1 {
			continue
		}
		took, err = b.write(ctx, batch)
		if err != nil {
			return err
		}
		write.add(took)
		batch = batch[:0]
		if len(b.keys) >= report && len(b.keys) < b.n {
			b.phase("ingest: %d of %d chunks written", len(b.keys), b.n)
			report += b.n / 10
		}
	}
	return b.index(ctx, prep, write)
}

// prepare makes document i of chunks chunks and prepares it, with its
// vectors; it returns the time catalog.Prepare took.
func (b *catalogBencher) prepare(i, chunks int) (preparedDoc, times, error) {
	d := b.c.doc(i, chunks)
	w := startWatch()
	p, err := catalog.Prepare(catalog.Source{Path: d.path, Title: d.title, Data: d.data, Kind: catalog.KindMarkdown},
		&catalog.Options{Bounds: catalogBounds})
	took := w.times()
	if err != nil {
		return preparedDoc{}, took, err
	}
	cs := p.Chunks()
	if len(cs) != chunks {
		return preparedDoc{}, took, fmt.Errorf("bench: corpus document %d made %d chunks, want %d", i, len(cs), chunks)
	}
	vecs := make([][]float32, len(cs))
	for j, c := range cs {
		vecs[j] = b.c.embed(c.Text)
	}
	return preparedDoc{p, vecs}, took, p.SetVectors(catalogModel, vecs)
}

// write writes batch in one transaction and keeps its chunks' keys and
// vectors; it returns the time the transaction took.
func (b *catalogBencher) write(ctx context.Context, batch []preparedDoc) (times, error) {
	var docs []*catalog.Doc
	w := startWatch()
	err := b.db.Update(ctx, func(tx *image.Tx) error {
		docs = docs[:0]
		for _, d := range batch {
			doc, _, err := catalog.Write(tx, d.p)
			if err != nil {
				return err
			}
			docs = append(docs, doc)
		}
		return nil
	})
	took := w.times()
	if err != nil {
		return took, fmt.Errorf("write documents: %w", err)
	}
	b.res.Transactions++
	for i, doc := range docs {
		b.keys = append(b.keys, doc.Chunks...)
		for _, v := range batch[i].vecs {
			b.vecs = append(b.vecs, v...)
		}
	}
	return took, nil
}

// index times the index catching up with the corpus and saving itself,
// and fills in the ingest figures.
func (b *catalogBencher) index(ctx context.Context, prep, write times) error {
	b.phase("ingest: %d chunks written in %.1f s; indexing them (Sync, then save)", len(b.keys), write.wall.Seconds())
	w := startWatch()
	if err := b.ix.Sync(ctx); err != nil {
		return err
	}
	if err := b.ix.Flush(); err != nil {
		return err
	}
	build := w.times()
	r, n := b.res, float64(len(b.keys))
	r.Chunks = len(b.keys)
	r.PrepareS, r.WriteS, r.IndexS = prep.wall.Seconds(), write.wall.Seconds(), build.wall.Seconds()
	r.CPUS["prepare"], r.CPUS["image_write"], r.CPUS["index_build"] = prep.cpu.Seconds(), write.cpu.Seconds(), build.cpu.Seconds()
	r.IngestS = r.PrepareS + r.WriteS + r.IndexS
	r.PrepareChunksPerS, r.WriteChunksPerS = n/r.PrepareS, n/r.WriteS
	r.IndexChunksPerS, r.IngestChunksPerS = n/r.IndexS, n/r.IngestS
	_, used, err := benchFileSizes(ctx, b.db)
	if err != nil {
		return err
	}
	st, err := b.ix.Stats(ctx)
	if err != nil {
		return err
	}
	if st.Chunks != r.Chunks || st.Vectors != r.Chunks {
		return fmt.Errorf("bench: the index holds %d chunks and %d vectors, want %d", st.Chunks, st.Vectors, r.Chunks)
	}
	r.ImageBytesPerChunk, r.IndexBytesPerChunk = float64(used)/n, float64(st.Bytes)/n
	b.phase("ingest: prepare %.0f chunks/s, image write %.0f chunks/s, index %.0f chunks/s, all %.0f chunks/s",
		r.PrepareChunksPerS, r.WriteChunksPerS, r.IndexChunksPerS, r.IngestChunksPerS)
	return nil
}

// search times the queries in each mode, each mode in its own pass.
func (b *catalogBencher) search(ctx context.Context) error {
	n := b.res.Queries
	for i := range n {
		q := b.c.query(i)
		b.queries = append(b.queries, q)
		b.qvecs = append(b.qvecs, b.c.embed(q))
	}
	b.vecHits = make([][]store.OID, n)
	b.phase("search: %d warm-up searches, then %d queries by text, by vector, by both, by both with the hits read", catalogWarmup, n)
	for i := range catalogWarmup {
		q := b.c.query(n + i)
		if err := b.searchRead(ctx, index.Query{Text: q, Vector: b.c.embed(q), K: catalogK}); err != nil {
			return err
		}
	}
	r := b.res
	modes := []struct {
		out    *latencyMs
		search func(i int) error
	}{
		{&r.Text, func(i int) error {
			_, err := b.ix.Search(ctx, index.Query{Text: b.queries[i], K: catalogK})
			return err
		}},
		{&r.Vector, func(i int) error {
			hits, err := b.ix.Search(ctx, index.Query{Vector: b.qvecs[i], K: catalogK})
			for _, h := range hits {
				b.vecHits[i] = append(b.vecHits[i], h.Chunk)
			}
			return err
		}},
		{&r.HybridIndex, func(i int) error {
			_, err := b.ix.Search(ctx, index.Query{Text: b.queries[i], Vector: b.qvecs[i], K: catalogK})
			return err
		}},
		{&r.Hybrid, func(i int) error {
			return b.searchRead(ctx, index.Query{Text: b.queries[i], Vector: b.qvecs[i], K: catalogK})
		}},
	}
	for _, m := range modes {
		var err error
		if *m.out, err = b.timeQueries(ctx, m.search); err != nil {
			return err
		}
	}
	b.phase("search: p50 text %.2f ms, vector %.2f ms, hybrid %.2f ms, hybrid with the hits read %.2f ms",
		r.Text.P50, r.Vector.P50, r.HybridIndex.P50, r.Hybrid.P50)
	return nil
}

// timeQueries times search(i) for each query.
func (b *catalogBencher) timeQueries(ctx context.Context, search func(i int) error) (latencyMs, error) {
	took := make([]time.Duration, len(b.queries))
	for i := range b.queries {
		if err := ctx.Err(); err != nil {
			return latencyMs{}, err
		}
		start := time.Now()
		if err := search(i); err != nil {
			return latencyMs{}, fmt.Errorf("search %q: %w", b.queries[i], err)
		}
		took[i] = time.Since(start)
	}
	return latencies(took), nil
}

// searchRead runs q and reads each hit's passage and document from the
// image, as the library does for its caller.
func (b *catalogBencher) searchRead(ctx context.Context, q index.Query) error {
	hits, err := b.ix.Search(ctx, q)
	if err != nil {
		return err
	}
	return b.db.View(ctx, func(tx *image.Tx) error {
		for _, h := range hits {
			if _, _, err := catalog.PassageAt(tx, h.Chunk); err != nil {
				return fmt.Errorf("read hit %s: %w", h.Chunk, err)
			}
		}
		return nil
	})
}

// recall counts how many of the exact nearest chunks the vector search
// found.
func (b *catalogBencher) recall(ctx context.Context) error {
	b.phase("recall: exact nearest %d of %d vectors for %d queries, by brute force", catalogK, len(b.keys), len(b.qvecs))
	truth := exactNearest(b.vecs, b.keys, corpusDims, b.qvecs, catalogK)
	var sum float64
	for i, want := range truth {
		if len(want) == 0 {
			sum++
			continue
		}
		found := 0
		for _, k := range want {
			if slices.Contains(b.vecHits[i], k) {
				found++
			}
		}
		sum += float64(found) / float64(len(want))
	}
	b.res.Recall10 = sum / float64(len(truth))
	b.phase("recall@%d: %.4f", catalogK, b.res.Recall10)
	return ctx.Err()
}

// scan times the baseline, scanSearch, on the first queries.
func (b *catalogBencher) scan(ctx context.Context) error {
	n := min(catalogScanQueries, len(b.queries))
	b.res.ScanQueries = n
	b.phase("scan: %d queries, each reading every chunk from the image", n)
	took := make([]time.Duration, n)
	w := startWatch()
	for i := range n {
		start := time.Now()
		if _, err := scanSearch(ctx, b.db.DB, b.queries[i], catalogK); err != nil {
			return fmt.Errorf("scan for %q: %w", b.queries[i], err)
		}
		took[i] = time.Since(start)
	}
	b.res.CPUS["scan"] = w.times().cpu.Seconds()
	b.res.Scan = latencies(took)
	b.res.Speedup = b.res.Scan.P50 / b.res.Hybrid.P50
	b.phase("scan: p50 %.1f ms, %.0f× the hybrid search's", b.res.Scan.P50, b.res.Speedup)
	return nil
}

// reopen closes everything, then times opening the up-to-date index in a
// fresh image and measures what it holds in memory, then times Reindex.
func (b *catalogBencher) reopen(ctx context.Context) error {
	if err := b.close(); err != nil {
		return err
	}
	b.keys, b.vecs, b.vecHits = nil, nil, nil
	db, err := openBenchImage(ctx, b.imagePath(), b.user)
	if err != nil {
		return err
	}
	b.db = db
	rss0, heap0 := memoryMB()
	b.phase("reopen: opening the up-to-date index")
	start := time.Now()
	rep, err := b.openIndex(ctx)
	if err != nil {
		return err
	}
	took := time.Since(start)
	rss1, heap1 := memoryMB()
	r := b.res
	r.OpenMs = benchMs(took)
	if rep.Rebuilt {
		r.Notes = append(r.Notes, fmt.Sprintf("index.Open rebuilt the index (%s): index_open_ms is a rebuild, not a load", rep.Reason))
	}
	per100k := float64(DefaultCatalogChunks) / float64(r.Chunks)
	r.RSSMB, r.RSSAddedMB, r.RSSPer100kMB = rss1, rss1-rss0, (rss1-rss0)*per100k
	r.HeapMB, r.HeapAddedMB, r.HeapPer100kMB = heap1, heap1-heap0, (heap1-heap0)*per100k
	b.phase("reopen: %s in %.0f ms; RSS %.0f MB (+%.0f), heap %.0f MB (+%.0f)", rep, r.OpenMs, rss1, r.RSSAddedMB, heap1, r.HeapAddedMB)
	b.phase("reopen: rebuilding the index from the image (Reindex)")
	w := startWatch()
	if rep, err = b.ix.Reindex(ctx); err != nil {
		return err
	}
	r.ReindexS, r.CPUS["index_rebuild"] = rep.Took.Seconds(), w.times().cpu.Seconds()
	b.phase("reopen: rebuilt in %.1f s", r.ReindexS)
	return nil
}

// times are a wall-clock and a CPU time.
type times struct{ wall, cpu time.Duration }

func (t *times) add(u times) { t.wall, t.cpu = t.wall+u.wall, t.cpu+u.cpu }

// watch measures the wall-clock and CPU time since it started.
type watch struct {
	start time.Time
	cpu   time.Duration
}

func startWatch() watch { return watch{time.Now(), processCPU()} }

func (w watch) times() times { return times{time.Since(w.start), processCPU() - w.cpu} }

// processCPU is the CPU time this process has used, user and system,
// every goroutine's (bleve's background merges too); 0 if unknown.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage is the machine's load average over the last minute, from
// /proc/loadavg; 0 where it is missing.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0
	}
	l, _ := strconv.ParseFloat(string(f[0]), 64)
	return l
}

// memoryMB returns the process's resident set (VmRSS; 0 where
// /proc/self/status is missing) and the Go heap in use, in MB, after a
// collection that returns what it freed to the system.
func memoryMB() (rss, heap float64) {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(vmRSS()) / 1e6, float64(ms.HeapAlloc) / 1e6
}

// vmRSS reads VmRSS from /proc/self/status, in bytes; 0 if it cannot.
func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 2 && string(f[1]) == "kB" {
			kb, err := strconv.ParseInt(string(f[0]), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// conclude fills in the verdicts and the notes.
func (r *catalogBench) conclude() {
	r.TargetsMet = map[string]bool{
		"search_hybrid_ms_p50":   r.Hybrid.P50 < r.Targets.HybridMsP50,
		"recall_at_10":           r.Recall10 >= r.Targets.Recall10,
		"hybrid_speedup_vs_scan": r.Speedup >= r.Targets.Speedup,
	}
	r.Notes = append(r.Notes,
		fmt.Sprintf("the corpus is generated: %d topics of %d invented words each; a chunk is %d to %d words, about 55%% of its topic's, and one Markdown section; its vector is its topics' centroid plus noise (a cosine near 0.4 within a topic, 0 across), from a deterministic stand-in for an embedding model whose time is not counted", corpusTopics, corpusTopicWords, corpusMinWords, corpusMaxWords),
		"ingest: prepare is catalog.Prepare (Markdown, sentence splitting, grouping) outside any transaction; image write is catalog.Write in transactions of a few documents each, fsync on; index build is index.Sync catching up with those transactions (bleve batches fsync'd, HNSW insertions) and the save of the vector file and state",
		fmt.Sprintf("search: k = %d, each mode in its own pass over the same %d queries after %d warm-up searches, one at a time; search_hybrid_ms adds reading every hit's passage and document from the image in a read transaction (catalog.PassageAt), as the library does; the query's embedding is not counted; the searches start right after the ingest, while bleve may still be merging its segments in the background", r.K, r.Queries, catalogWarmup),
		"recall_at_10 compares the vector-only index.Search with the exact top 10 by cosine similarity over the same vectors, computed by brute force",
		"the scan is the baseline without indexes: per query, one read transaction lists the catalog's documents, loads every chunk object from the image and counts the query's words in its text; the prototype batos grew from resolved each of its k results by walking every chunk from the start (its word index found them, unranked), which is O(N) a result but read references, not texts, so the scan is not a port of it",
		"cpu_s counts this process's CPU time in each phase, every goroutine's (bleve's background merges too): with two CPUs it can exceed the wall time; a wall time far over the CPU time is waiting: for the disk (fsync), or, with a load average over the CPUs, for other processes to yield the CPUs",
		"reopen: the image and index are closed and the image reopened empty of cached objects before index.Open; RSS (VmRSS) counts the pages of the index's files mapped and touched (bleve reads segments through mmap) and of the image's, the heap is the Go heap after a collection",
	)
}

// writeCatalogBenchTable prints the figures for people, with their
// targets.
func writeCatalogBenchTable(w io.Writer, r *catalogBench) error {
	verdict := func(key string) string {
		if r.TargetsMet[key] {
			return "met"
		}
		return "MISSED"
	}
	t := r.Targets
	fmt.Fprintf(w, "catalog of %d chunks in %d documents (%d topics, %d-dimension vectors), %d transactions of %d documents\n\n",
		r.Chunks, r.Documents, r.Topics, r.Dims, r.Transactions, r.DocsPerTx)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "measure\tresult\ttarget\n")
	fmt.Fprintf(tw, "disk: append 4 KiB + fsync\t%.0f /s\t\n", r.FsyncPerS)
	cpu := r.CPUS
	fmt.Fprintf(tw, "ingest: prepare (parse, chunk)\t%.0f chunks/s (%.1f s, %.1f s CPU)\t\n", r.PrepareChunksPerS, r.PrepareS, cpu["prepare"])
	fmt.Fprintf(tw, "ingest: image write, fsync on\t%.0f chunks/s (%.1f s, %.1f s CPU)\t\n", r.WriteChunksPerS, r.WriteS, cpu["image_write"])
	fmt.Fprintf(tw, "ingest: index build (Sync + save)\t%.0f chunks/s (%.1f s, %.1f s CPU)\t\n", r.IndexChunksPerS, r.IndexS, cpu["index_build"])
	fmt.Fprintf(tw, "ingest: all three\t%.0f chunks/s (%.1f s)\t\n", r.IngestChunksPerS, r.IngestS)
	fmt.Fprintf(tw, "  on disk per chunk: image, index\t%.0f B, %.0f B\t\n", r.ImageBytesPerChunk, r.IndexBytesPerChunk)
	fmt.Fprintf(tw, "search by text (BM25), p50 / p99\t%.2f / %.2f ms\t\n", r.Text.P50, r.Text.P99)
	fmt.Fprintf(tw, "search by vector (HNSW), p50 / p99\t%.2f / %.2f ms\t\n", r.Vector.P50, r.Vector.P99)
	fmt.Fprintf(tw, "search hybrid (index), p50 / p99\t%.2f / %.2f ms\t\n", r.HybridIndex.P50, r.HybridIndex.P99)
	fmt.Fprintf(tw, "search hybrid, hits read, p50 / p99\t%.2f / %.2f ms\tp50 < %.0f ms: %s\n", r.Hybrid.P50, r.Hybrid.P99, t.HybridMsP50, verdict("search_hybrid_ms_p50"))
	fmt.Fprintf(tw, "recall@%d, HNSW vs exact cosine\t%.4f\t≥ %.2f: %s\n", r.K, r.Recall10, t.Recall10, verdict("recall_at_10"))
	fmt.Fprintf(tw, "scan of every chunk (%d queries), p50 / p99\t%.1f / %.1f ms (%.1f s CPU in all)\t\n", r.ScanQueries, r.Scan.P50, r.Scan.P99, cpu["scan"])
	fmt.Fprintf(tw, "  hybrid search's speedup over the scan\t%.0f×\t≥ %.0f×: %s\n", r.Speedup, t.Speedup, verdict("hybrid_speedup_vs_scan"))
	fmt.Fprintf(tw, "index open (up to date)\t%.0f ms\t\n", r.OpenMs)
	fmt.Fprintf(tw, "index rebuild (Reindex)\t%.1f s = %.0f× the open (%.1f s CPU)\t\n", r.ReindexS, r.ReindexS*1000/r.OpenMs, cpu["index_rebuild"])
	fmt.Fprintf(tw, "memory after open: RSS, heap\t%.0f MB, %.0f MB\t\n", r.RSSMB, r.HeapMB)
	fmt.Fprintf(tw, "  added by the open, per 100k chunks\tRSS +%.0f MB, heap +%.0f MB\t\n", r.RSSPer100kMB, r.HeapPer100kMB)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nthe run took %.0f s and %.0f s of CPU; the load average was %.2f at its start and %.2f at its end, on %d CPUs\n",
		r.WallS, cpu["run"], r.LoadStart, r.LoadEnd, r.CPUs)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nnote: %s", n)
	}
	_, err := fmt.Fprintln(w)
	return err
}
