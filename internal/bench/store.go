package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/store/bolt"
)

// Root slots under which the benchmark links what it creates, so every
// object is reachable. Each holds a list of containers, each container a
// list of refs in its "items" slot: no single record grows with the count.
// BulkSlot holds the objects the cold-load child loads.
const (
	benchPopulationSlot = "bench_population"
	benchHistorySlot    = "bench_history"
	BulkSlot            = "bench_bulk"
	benchOpenSlot       = "bench_open"
)

// benchSizes are the sizes of one run.
type benchSizes struct {
	Fsync       time.Duration `json:"-"`
	Population  int           `json:"population"`
	Txs         int           `json:"transactions"`
	Writers     int           `json:"writers"`
	PerTx       int           `json:"objects_per_tx"`
	Bulk        int           `json:"bulk_objects"`
	Revisions   int           `json:"history_revisions"`
	HistoryRuns int           `json:"history_runs"`
	Undos       int           `json:"undos"`
	Open        int           `json:"open_objects"`
	OpenBatch   int           `json:"open_batch"`
	Opens       int           `json:"opens"`
	Fanout      int           `json:"refs_per_container"`
}

var (
	fullBench = benchSizes{
		Fsync: time.Second, Population: 10_000, Txs: 5_000, Writers: 8, PerTx: 10,
		Bulk: 100_000, Revisions: 100, HistoryRuns: 20, Undos: 20,
		Open: 1_000_000, OpenBatch: 100_000, Opens: 7, Fanout: 1_000,
	}
	quickBench = benchSizes{
		Fsync: 200 * time.Millisecond, Population: 1_000, Txs: 200, Writers: 8, PerTx: 10,
		Bulk: 2_000, Revisions: 20, HistoryRuns: 5, Undos: 5,
		Open: 20_000, OpenBatch: 10_000, Opens: 3, Fanout: 100,
	}
)

// storeBench is the outcome of "bench store"; its JSON is the -json output.
type storeBench struct {
	Dir   string     `json:"dir"`
	Quick bool       `json:"quick"`
	Sizes benchSizes `json:"sizes"`

	FsyncPerS              float64 `json:"fsync_per_s"`
	SingleTxPerS           float64 `json:"single_tx_per_s"`
	Concurrent8TxPerS      float64 `json:"concurrent8_tx_per_s"`
	ConflictsRetried       int     `json:"conflicts_retried"`
	Bulk100kS              float64 `json:"bulk100k_s"`
	BulkBytesPerObject     float64 `json:"bulk_bytes_per_object"`
	BulkFileBytesPerObject float64 `json:"bulk_file_growth_bytes_per_object"`
	Coldload100kS          float64 `json:"coldload100k_s"`
	History100Ms           float64 `json:"history100_ms"`
	UndoMs                 float64 `json:"undo_ms"`
	Open1mMs               float64 `json:"open1m_ms"`

	// The disk's fsync rate just before and just after each writer
	// phase: a shared disk's rate moves from second to second, so each
	// phase is compared with the higher of the two measured beside it.
	SingleFsyncPerS      [2]float64 `json:"single_fsync_before_after_per_s"`
	Concurrent8FsyncPerS [2]float64 `json:"concurrent8_fsync_before_after_per_s"`

	SingleVsFsync      float64 `json:"single_vs_fsync"`
	Concurrent8VsFsync float64 `json:"concurrent8_vs_fsync"`

	Targets    benchTargets    `json:"targets"`
	TargetsMet map[string]bool `json:"targets_met"`
	ZODB       zodbReference   `json:"zodb_reference"`
	Notes      []string        `json:"notes"`
}

// benchTargets are what the store is meant to reach.
type benchTargets struct {
	Concurrent8VsFsync float64 `json:"concurrent8_vs_fsync_min"`
	SingleVsFsync      float64 `json:"single_vs_fsync_min"`
	Bulk100kS          float64 `json:"bulk100k_s_max"`
	Coldload100kS      float64 `json:"coldload100k_s_max"`
	Open1mMs           float64 `json:"open1m_ms_max"`
}

var storeTargets = benchTargets{
	Concurrent8VsFsync: 3, SingleVsFsync: 0.4, Bulk100kS: 0.5, Coldload100kS: 0.5, Open1mMs: 50,
}

// zodbReference are ZODB 6 FileStorage's figures for the same workloads.
type zodbReference struct {
	TxPerS         float64 `json:"tx_per_s"`
	Bulk100kS      float64 `json:"bulk100k_s"`
	BytesPerObject float64 `json:"bytes_per_object"`
	Coldload100kS  float64 `json:"coldload100k_s"`
	History100Ms   float64 `json:"history100_ms"`
	UndoMsLow      float64 `json:"undo_ms_low"`
	UndoMsHigh     float64 `json:"undo_ms_high"`
}

var zodbFigures = zodbReference{
	TxPerS: 500, Bulk100kS: 3.7, BytesPerObject: 217, Coldload100kS: 4.2,
	History100Ms: 1.8, UndoMsLow: 1, UndoMsHigh: 2,
}

// RunStore measures the image's real storage path on the disk holding
// opts.Dir: image.DB over the bolt store, fsync on, the real codec. It
// prints the outcome to stdout and its progress to log. The cold-load
// phase runs opts.Exe; without one RunStore returns ErrNoExe.
func RunStore(ctx context.Context, opts *Options, stdout, log io.Writer) error {
	opts = opts.orDefault()
	if opts.Exe == "" {
		return ErrNoExe
	}
	sizes := fullBench
	if opts.Quick {
		sizes = quickBench
	}
	stop, err := opts.profile()
	if err != nil {
		return err
	}
	defer stop()
	res, err := benchStore(ctx, opts.dir(), opts.Exe, opts.User, sizes, log)
	if err != nil {
		return err
	}
	return opts.report(stdout, res, &res.Quick, &res.Notes, "tiny sizes", func() error { return writeBenchTable(stdout, res) })
}

// storeBencher runs the phases of bench store in one directory.
type storeBencher struct {
	dir   string
	exe   string
	user  string
	sizes benchSizes
	log   io.Writer
	res   *storeBench
}

// benchStore measures the store in a fresh directory under parent,
// removed afterwards, printing phase names to log.
func benchStore(ctx context.Context, parent, exe, user string, sizes benchSizes, log io.Writer) (*storeBench, error) {
	dir, err := os.MkdirTemp(parent, "batos-bench-")
	if err != nil {
		return nil, fmt.Errorf("make benchmark directory: %w", err)
	}
	defer os.RemoveAll(dir)
	b := &storeBencher{dir: dir, exe: exe, user: user, sizes: sizes, log: log, res: &storeBench{
		Dir: dir, Sizes: sizes, Targets: storeTargets, ZODB: zodbFigures,
	}}
	b.phase("working in %s", dir)
	for _, step := range []func(context.Context) error{b.fsync, b.transactions, b.bulk, b.open} {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	b.res.conclude()
	b.phase("done; removing %s", dir)
	return b.res, nil
}

func (b *storeBencher) phase(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// conclude fills in the ratios, the verdicts and the notes.
func (r *storeBench) conclude() {
	r.SingleVsFsync = r.SingleTxPerS / r.fsyncBeside(r.SingleFsyncPerS)
	r.Concurrent8VsFsync = r.Concurrent8TxPerS / r.fsyncBeside(r.Concurrent8FsyncPerS)
	r.TargetsMet = map[string]bool{
		"concurrent8_vs_fsync": r.Concurrent8VsFsync >= r.Targets.Concurrent8VsFsync,
		"single_vs_fsync":      r.SingleVsFsync >= r.Targets.SingleVsFsync,
		"bulk100k_s":           r.Bulk100kS < r.Targets.Bulk100kS,
		"coldload100k_s":       r.Coldload100kS < r.Targets.Coldload100kS,
		"open1m_ms":            r.Open1mMs < r.Targets.Open1mMs,
	}
	r.Notes = append(r.Notes,
		"each writer phase's ratio is to the disk's fsync rate measured just before and just after it, the higher of the two: a shared or virtual disk's rate moves from second to second, and the first row's rate was measured earlier",
		"coldload100k_s runs in a fresh process, but the file is warm in the OS page cache (dropping it needs root): it measures lookups and decoding, not disk reads",
		"bulk_bytes_per_object is the growth of bbolt's high-water mark (the pages written up to the end of the data); the .db file itself grows in steps of 16 MiB ahead of need, so its growth (bulk_file_growth_bytes_per_object) is 0 or a whole step",
	)
	if r.ConflictsRetried > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d transactions were rerun after write conflicts although the writers' objects are disjoint", r.ConflictsRetried))
	}
}

// fsyncBeside is the disk's rate a phase is compared with: the higher of
// the rates measured just before and after it, or the run's first one if
// those are missing.
func (r *storeBench) fsyncBeside(around [2]float64) float64 {
	if rate := max(around[0], around[1]); rate > 0 {
		return rate
	}
	return r.FsyncPerS
}

// fsync measures the disk's raw rate of appending 4 KiB and syncing.
func (b *storeBencher) fsync(ctx context.Context) error {
	b.phase("fsync: appending 4 KiB + fsync for %s", b.sizes.Fsync)
	perS, err := fsyncRate(ctx, b.dir, b.sizes.Fsync)
	if err != nil {
		return err
	}
	b.res.FsyncPerS = perS
	b.phase("fsync: %.0f/s", b.res.FsyncPerS)
	return nil
}

// transactions measures commit throughput, history and undo on one image
// holding a population of small objects.
func (b *storeBencher) transactions(ctx context.Context) error {
	db, err := openBenchImage(ctx, filepath.Join(b.dir, "tx.db"), b.user)
	if err != nil {
		return err
	}
	defer db.Close()
	s := b.sizes
	b.phase("transactions: creating %d objects", s.Population)
	var oids []store.OID
	err = db.Update(ctx, func(tx *image.Tx) error {
		oids, err = addLinked(tx, benchPopulationSlot, 0, s.Population, s.Fanout)
		return err
	})
	if err != nil {
		return fmt.Errorf("create population: %w", err)
	}
	for _, w := range []int{1, s.Writers} {
		var disk [2]float64
		if disk[0], err = fsyncRate(ctx, b.dir, s.Fsync/2); err != nil {
			return err
		}
		b.phase("transactions: %d transactions of %d objects from %d writer(s)", s.Txs, s.PerTx, w)
		perS, conflicts, err := b.throughput(ctx, db.DB, oids, w)
		if err != nil {
			return err
		}
		if disk[1], err = fsyncRate(ctx, b.dir, s.Fsync/2); err != nil {
			return err
		}
		b.res.ConflictsRetried += conflicts
		if w == 1 {
			b.res.SingleTxPerS, b.res.SingleFsyncPerS = perS, disk
		} else {
			b.res.Concurrent8TxPerS, b.res.Concurrent8FsyncPerS = perS, disk
		}
		b.phase("transactions: %.0f tx/s, %d conflicts retried; fsync %.0f/s before, %.0f/s after", perS, conflicts, disk[0], disk[1])
	}
	if err := b.history(ctx, db.DB); err != nil {
		return err
	}
	return b.undo(ctx, db.DB, oids)
}

// throughput runs sizes.Txs transactions split among writers, each writer
// on its own slice of oids so they never conflict.
func (b *storeBencher) throughput(ctx context.Context, db *image.DB, oids []store.OID, writers int) (perS float64, conflicts int, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		attempts atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		first    error
	)
	start := time.Now()
	for w := range writers {
		part := oids[w*len(oids)/writers : (w+1)*len(oids)/writers]
		n := b.sizes.Txs / writers
		if w < b.sizes.Txs%writers {
			n++
		}
		wg.Go(func() {
			if err := bumpCounts(ctx, db, part, n, b.sizes.PerTx, &attempts); err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return 0, 0, first
	}
	return float64(b.sizes.Txs) / elapsed.Seconds(), int(attempts.Load()) - b.sizes.Txs, nil
}

// bumpCounts runs n transactions, each changing perTx objects of part
// taken in turn. attempts counts every run of a transaction function, so
// reruns after conflicts show.
func bumpCounts(ctx context.Context, db *image.DB, part []store.OID, n, perTx int, attempts *atomic.Int64) error {
	next := 0
	for range n {
		batch := make([]store.OID, perTx)
		for j := range batch {
			batch[j] = part[next%len(part)]
			next++
		}
		err := db.Update(ctx, func(tx *image.Tx) error {
			attempts.Add(1)
			return bumpCount(tx, batch)
		})
		if err != nil {
			return fmt.Errorf("bump counts: %w", err)
		}
	}
	return nil
}

// bumpCount increments the count slot of each object.
func bumpCount(tx *image.Tx, oids []store.OID) error {
	for _, oid := range oids {
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		v, _ := o.Get("count")
		n, ok := v.(image.Int)
		if !ok {
			return fmt.Errorf("%s: count slot holds %v, not an int", oid, v)
		}
		if err := o.Set("count", n+1); err != nil {
			return err
		}
	}
	return nil
}

// history times what "batos history -n 100" does for an object with
// sizes.Revisions revisions: History, then the log entry of each.
func (b *storeBencher) history(ctx context.Context, db *image.DB) error {
	b.phase("history: writing %d revisions of one object", b.sizes.Revisions)
	var oid store.OID
	err := db.Update(ctx, func(tx *image.Tx) error {
		oids, err := addLinked(tx, benchHistorySlot, 0, 1, 1)
		oid = oids[0]
		return err
	})
	for i := 1; i < b.sizes.Revisions && err == nil; i++ {
		err = db.Update(ctx, func(tx *image.Tx) error { return bumpCount(tx, []store.OID{oid}) })
	}
	if err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	var total time.Duration
	for range b.sizes.HistoryRuns {
		start := time.Now()
		n, err := fetchHistory(ctx, db.Store(), oid, 100)
		total += time.Since(start)
		if err != nil {
			return err
		}
		if n != b.sizes.Revisions {
			return fmt.Errorf("history of %s has %d revisions, want %d", oid, n, b.sizes.Revisions)
		}
	}
	b.res.History100Ms = benchMs(total) / float64(b.sizes.HistoryRuns)
	b.phase("history: %.3f ms", b.res.History100Ms)
	return nil
}

// fetchHistory reads an object's revisions and their log entries; it
// returns how many revisions there were.
func fetchHistory(ctx context.Context, s store.Engine, oid store.OID, limit int) (int, error) {
	revs, err := s.History(ctx, oid, limit)
	if err != nil {
		return 0, err
	}
	for _, r := range revs {
		if _, err := s.Transaction(ctx, r.Serial); err != nil {
			return 0, err
		}
	}
	return len(revs), nil
}

// undo commits sizes.Undos transactions changing disjoint sets of objects,
// then times undoing each, newest first.
func (b *storeBencher) undo(ctx context.Context, db *image.DB, oids []store.OID) error {
	s := b.sizes
	b.phase("undo: %d transactions of %d objects", s.Undos, s.PerTx)
	tids := make([]store.TID, s.Undos)
	for i := range tids {
		var err error
		batch := oids[i*s.PerTx : (i+1)*s.PerTx]
		tids[i], err = db.UpdateTID(ctx, func(tx *image.Tx) error { return bumpCount(tx, batch) })
		if err != nil {
			return fmt.Errorf("write transactions to undo: %w", err)
		}
	}
	var total time.Duration
	for _, tid := range slices.Backward(tids) {
		start := time.Now()
		if _, err := db.Undo(ctx, tid, "bench"); err != nil {
			return err
		}
		total += time.Since(start)
	}
	b.res.UndoMs = benchMs(total) / float64(len(tids))
	b.phase("undo: %.3f ms", b.res.UndoMs)
	return nil
}

// bulk times one transaction adding sizes.Bulk objects, measures the
// file's growth, and has a fresh process load them all.
func (b *storeBencher) bulk(ctx context.Context) error {
	path := filepath.Join(b.dir, "bulk.db")
	db, err := openBenchImage(ctx, path, b.user)
	if err != nil {
		return err
	}
	defer db.Close()
	n := b.sizes.Bulk
	fileBefore, usedBefore, err := benchFileSizes(ctx, db)
	if err != nil {
		return err
	}
	b.phase("bulk: one transaction adding %d objects", n)
	start := time.Now()
	err = db.Update(ctx, func(tx *image.Tx) error {
		_, err := addLinked(tx, BulkSlot, 0, n, b.sizes.Fanout)
		return err
	})
	if err != nil {
		return fmt.Errorf("bulk add: %w", err)
	}
	b.res.Bulk100kS = time.Since(start).Seconds()
	fileAfter, usedAfter, err := benchFileSizes(ctx, db)
	if err != nil {
		return err
	}
	b.res.BulkBytesPerObject = float64(usedAfter-usedBefore) / float64(n)
	b.res.BulkFileBytesPerObject = float64(fileAfter-fileBefore) / float64(n)
	b.phase("bulk: %.3f s, %.0f bytes/object (file growth %.0f)", b.res.Bulk100kS, b.res.BulkBytesPerObject, b.res.BulkFileBytesPerObject)
	// The child opens the image itself, which needs this process's lock.
	if err := db.Close(); err != nil {
		return err
	}
	return b.coldload(ctx, path)
}

// benchFileSizes reports the size of the image's file and bbolt's
// high-water mark within it.
func benchFileSizes(ctx context.Context, db *benchImage) (file, used int64, err error) {
	fi, err := os.Stat(db.store.Path())
	if err != nil {
		return 0, 0, err
	}
	st, err := db.Store().Stats(ctx)
	if err != nil {
		return 0, 0, err
	}
	return fi.Size(), st.FileBytes, nil
}

// coldLoadResult is what the cold-load child prints.
type coldLoadResult struct {
	Seconds float64 `json:"seconds"`
	Objects int     `json:"objects"`
}

// coldload runs "batos bench coldload" on the bulk image in a new process.
func (b *storeBencher) coldload(ctx context.Context, path string) error {
	b.phase("coldload: loading %d objects in a fresh process", b.sizes.Bulk)
	cmd := exec.CommandContext(ctx, b.exe, "-image", path, "bench", "coldload", "-slot", BulkSlot)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("run cold-load child %s: %w: %s", b.exe, err, strings.TrimSpace(stderr.String()))
	}
	var out coldLoadResult
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return fmt.Errorf("read cold-load child output %q: %w", stdout.String(), err)
	}
	if out.Objects != b.sizes.Bulk {
		return fmt.Errorf("cold-load child loaded %d objects, want %d", out.Objects, b.sizes.Bulk)
	}
	b.res.Coldload100kS = out.Seconds
	b.phase("coldload: %.3f s", out.Seconds)
	return nil
}

// ColdLoad is the child of RunStore, run by "batos bench coldload": it
// opens the image at path, loads every object linked under the root's
// slot and reads a slot of each, and prints the time taken from just
// before the open as JSON to stdout.
func ColdLoad(ctx context.Context, path, slot string, stdout io.Writer) error {
	start := time.Now()
	s, err := bolt.Open(path, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	var n int
	err = image.New(s, nil).View(ctx, func(tx *image.Tx) error {
		n, err = loadLinked(tx, slot)
		return err
	})
	elapsed := time.Since(start)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(coldLoadResult{Seconds: elapsed.Seconds(), Objects: n})
}

// open builds an image of sizes.Open objects, then times opening it.
func (b *storeBencher) open(ctx context.Context) error {
	path := filepath.Join(b.dir, "open.db")
	if err := b.buildOpenImage(ctx, path); err != nil {
		return err
	}
	b.phase("open: opening the image %d times", b.sizes.Opens)
	times := make([]time.Duration, b.sizes.Opens)
	for i := range times {
		var err error
		if times[i], err = timeOpen(ctx, path); err != nil {
			return err
		}
	}
	slices.Sort(times)
	b.res.Open1mMs = benchMs(times[len(times)/2])
	b.phase("open: median %.3f ms (fastest %.3f, slowest %.3f)", b.res.Open1mMs, benchMs(times[0]), benchMs(times[len(times)-1]))
	return nil
}

func (b *storeBencher) buildOpenImage(ctx context.Context, path string) error {
	db, err := openBenchImage(ctx, path, b.user)
	if err != nil {
		return err
	}
	defer db.Close()
	s := b.sizes
	for done := 0; done < s.Open; done += s.OpenBatch {
		b.phase("open: building the image, %d of %d objects", done, s.Open)
		err := db.Update(ctx, func(tx *image.Tx) error {
			_, err := addLinked(tx, benchOpenSlot, done, min(s.OpenBatch, s.Open-done), s.Fanout)
			return err
		})
		if err != nil {
			return fmt.Errorf("build image to open: %w", err)
		}
	}
	return db.Close()
}

// timeOpen opens the store and the image over it and loads the root.
func timeOpen(ctx context.Context, path string) (time.Duration, error) {
	start := time.Now()
	s, err := bolt.Open(path, nil)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	err = image.New(s, nil).View(ctx, func(tx *image.Tx) error {
		_, err := tx.Root()
		return err
	})
	return time.Since(start), err
}

// benchObjectSlots are the slots of benchmark object i: a few short ones
// of the usual kinds.
func benchObjectSlots(i int) []image.Slot {
	return []image.Slot{
		{Name: "name", Value: image.String("object-" + strconv.Itoa(i))},
		{Name: "count", Value: image.Int(i)},
		{Name: "weight", Value: image.Float(float64(i) / 7)},
		{Name: "tags", Value: image.NewList(image.String("bench"), image.Int(i%10))},
		{Name: "active", Value: image.Bool(i%2 == 0)},
	}
}

// addLinked creates n benchmark objects numbered from first, in containers
// of fanout refs each whose refs it appends to the list in the root's slot.
func addLinked(tx *image.Tx, slot string, first, n, fanout int) ([]store.OID, error) {
	root, err := tx.Root()
	if err != nil {
		return nil, err
	}
	containers, err := rootList(root, slot)
	if err != nil {
		return nil, err
	}
	oids := make([]store.OID, 0, n)
	for start := 0; start < n; start += fanout {
		refs := make([]image.Value, 0, min(fanout, n-start))
		for i := start; i < min(start+fanout, n); i++ {
			o, err := tx.New(benchObjectSlots(first + i)...)
			if err != nil {
				return nil, err
			}
			refs = append(refs, o.Ref())
			oids = append(oids, o.OID())
		}
		c, err := tx.New(image.Slot{Name: "items", Value: image.NewList(refs...)})
		if err != nil {
			return nil, err
		}
		containers.Elems = append(containers.Elems, c.Ref())
	}
	return oids, nil
}

// rootList returns the list in the root's slot, adding an empty one if
// the slot is missing.
func rootList(root *image.Object, slot string) (*image.List, error) {
	v, ok := root.Get(slot)
	if !ok {
		l := image.NewList()
		return l, root.Set(slot, l)
	}
	l, ok := v.(*image.List)
	if !ok {
		return nil, fmt.Errorf("root slot %s holds a %s, not a list", slot, v.Kind())
	}
	return l, nil
}

// loadLinked loads every object addLinked linked under the root's slot
// and reads its name; it returns how many there were.
func loadLinked(tx *image.Tx, slot string) (int, error) {
	root, err := tx.Root()
	if err != nil {
		return 0, err
	}
	v, _ := root.Get(slot)
	containers, ok := v.(*image.List)
	if !ok {
		return 0, fmt.Errorf("root slot %s holds no list of containers", slot)
	}
	n := 0
	for _, ref := range containers.Elems {
		c, err := tx.Deref(ref)
		if err != nil {
			return n, err
		}
		v, _ := c.Get("items")
		items, ok := v.(*image.List)
		if !ok {
			return n, fmt.Errorf("container %s has no items list", c.OID())
		}
		for _, ref := range items.Elems {
			o, err := tx.Deref(ref)
			if err != nil {
				return n, err
			}
			if name, _ := o.Get("name"); name == nil {
				return n, fmt.Errorf("%s has no name", o.OID())
			}
			n++
		}
	}
	return n, nil
}

// writeDiskBeside prints the disk's rates measured around a phase, if
// they were.
func writeDiskBeside(tw io.Writer, around [2]float64) {
	if around[0] > 0 || around[1] > 0 {
		fmt.Fprintf(tw, "  fsync just before / after (the ratio's base: the higher)\t%.0f / %.0f /s\t\t\n", around[0], around[1])
	}
}

// writeBenchTable prints the figures for people, with their ratios,
// targets and the ZODB reference.
func writeBenchTable(w io.Writer, r *storeBench) error {
	s, t, z := r.Sizes, r.Targets, r.ZODB
	verdict := func(key string) string {
		if r.TargetsMet[key] {
			return "met"
		}
		return "MISSED"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "measure\tresult\ttarget\tZODB 6 FileStorage\n")
	fmt.Fprintf(tw, "disk: append 4 KiB + fsync\t%.0f /s\t\t\n", r.FsyncPerS)
	fmt.Fprintf(tw, "1 writer, %d-object transactions\t%.0f tx/s = %.2f× fsync\t≥ %.1f× fsync: %s\t%.0f tx/s\n",
		s.PerTx, r.SingleTxPerS, r.SingleVsFsync, t.SingleVsFsync, verdict("single_vs_fsync"), z.TxPerS)
	writeDiskBeside(tw, r.SingleFsyncPerS)
	fmt.Fprintf(tw, "%d writers, %d-object transactions\t%.0f tx/s = %.2f× fsync\t≥ %.1f× fsync: %s\t%.0f tx/s\n",
		s.Writers, s.PerTx, r.Concurrent8TxPerS, r.Concurrent8VsFsync, t.Concurrent8VsFsync, verdict("concurrent8_vs_fsync"), z.TxPerS)
	writeDiskBeside(tw, r.Concurrent8FsyncPerS)
	fmt.Fprintf(tw, "  conflicts retried\t%d\t\t\n", r.ConflictsRetried)
	fmt.Fprintf(tw, "bulk: one tx adding %d objects\t%.3f s\t< %.1f s: %s\t%.1f s\n",
		s.Bulk, r.Bulk100kS, t.Bulk100kS, verdict("bulk100k_s"), z.Bulk100kS)
	fmt.Fprintf(tw, "  bytes/object (bbolt high-water mark)\t%.0f B\t\t%.0f B\n", r.BulkBytesPerObject, z.BytesPerObject)
	fmt.Fprintf(tw, "  bytes/object (file growth)\t%.0f B\t\t\n", r.BulkFileBytesPerObject)
	fmt.Fprintf(tw, "cold load of %d objects, fresh process\t%.3f s\t< %.1f s: %s\t%.1f s\n",
		s.Bulk, r.Coldload100kS, t.Coldload100kS, verdict("coldload100k_s"), z.Coldload100kS)
	fmt.Fprintf(tw, "history of an object, %d revisions\t%.3f ms\t\t%.1f ms\n", s.Revisions, r.History100Ms, z.History100Ms)
	fmt.Fprintf(tw, "undo of a %d-object transaction\t%.3f ms\t\t%.0f-%.0f ms\n", s.PerTx, r.UndoMs, z.UndoMsLow, z.UndoMsHigh)
	fmt.Fprintf(tw, "open a %d-object image (median)\t%.3f ms\t< %.0f ms: %s\t\n", s.Open, r.Open1mMs, t.Open1mMs, verdict("open1m_ms"))
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nnote: %s", n)
	}
	_, err := fmt.Fprintln(w)
	return err
}
