// Package bench is the harness behind "batos bench": it measures the
// storage engine on a disk (RunStore), message sends (RunVM), the ZeroMQ
// bridge (RunBridge), the cognitive cycle's overhead (RunCycle) and the
// knowledge catalog's ingest and search (RunCatalog), and prints each
// outcome as a table for people or as JSON.
//
// Every run works in a temporary directory under Options.Dir, removed
// afterwards, and reports its progress, one "bench: ..." line per phase,
// to the log writer it is given. Figures are shown beside the raw
// write+fsync rate of the same disk and beside their targets; timing
// decides no error.
//
// The cold-load phase of RunStore runs in a fresh process: the batos
// binary named by Options.Exe, as "batos -image PATH bench coldload -slot
// SLOT", whose command calls ColdLoad.
//
// The cycle benchmark answers its mind with a scripted model of its own
// (personas answering at once, in this process), so the harness links no
// test package and no fake server. The catalog benchmark generates its
// corpus and the corpus's embeddings itself, deterministically, so that
// it needs no model and two runs measure the same thing.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"batos/internal/image"
	"batos/internal/store/bolt"
)

// Options configure a run. A nil *Options or the zero value runs the
// full benchmark in the current directory and prints a table.
type Options struct {
	// Dir holds the run's temporary directory; "" means ".". The store
	// and vm benchmarks measure the disk holding it.
	Dir string
	// Quick runs tiny sizes (store) or a fraction of a second per phase
	// (vm, bridge), to check that the benchmark runs; the figures then
	// mean little. RunCycle ignores it: Cycles sets its length.
	Quick bool
	// JSON prints the outcome as indented JSON instead of a table.
	JSON bool
	// CPUProfile, if set, is the file that gets a CPU profile of the
	// whole run (RunCycle: of the measured cycles only).
	CPUProfile string
	// Exe is the batos binary that runs the cold-load child of RunStore;
	// RunStore requires it.
	Exe string
	// Cycles is how many cycles RunCycle measures; 0 means 200.
	Cycles int
	// Chunks is the size of the catalog RunCatalog measures; 0 means
	// DefaultCatalogChunks.
	Chunks int
	// User is recorded as the user of the transactions of the images
	// RunStore and RunVM open.
	User string
	// Anchor has RunVM measure the seed's own message send too, in the
	// same run (the script AnchorScript names, "" for SeedScript, on
	// Python, "" for DefaultPython), and show the ratio of batos's
	// one-core read-only send to it.
	Anchor       bool
	AnchorScript string
	Python       string
}

// ErrNoExe is returned by RunStore when Options.Exe is empty.
var ErrNoExe = errors.New("bench: no batos binary to run the cold-load child")

// DefaultCycles is the number of cycles RunCycle measures by default.
const DefaultCycles = 200

func (o *Options) orDefault() *Options {
	if o == nil {
		return &Options{}
	}
	return o
}

func (o *Options) dir() string {
	if o.Dir == "" {
		return "."
	}
	return o.Dir
}

// profile starts the CPU profile o asks for; stop ends it (a no-op when
// none was asked for).
func (o *Options) profile() (stop func(), err error) {
	if o.CPUProfile == "" {
		return func() {}, nil
	}
	return startCPUProfile(o.CPUProfile)
}

// startCPUProfile profiles this process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// report prints a run's result: as JSON, or as its table. A quick run is
// marked so, with why its figures do not compare (quickNote).
func (o *Options) report(stdout io.Writer, res any, quick *bool, notes *[]string, quickNote string, table func() error) error {
	*quick = o.Quick
	if o.Quick {
		*notes = append(*notes, "quick mode: "+quickNote+", the figures are not comparable with the targets")
	}
	if o.JSON {
		return writeJSON(stdout, res)
	}
	return table()
}

// writeJSON prints v as indented JSON, the -json output of every
// benchmark.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// fsyncRate appends 4 KiB and syncs, over and over for d, in a temporary
// file in dir; it returns the rate per second.
func fsyncRate(ctx context.Context, dir string, d time.Duration) (float64, error) {
	f, err := os.CreateTemp(dir, "fsync-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4<<10)
	n, start := 0, time.Now()
	for time.Since(start) < d {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if _, err := f.Write(buf); err != nil {
			return 0, fmt.Errorf("measure fsync: %w", err)
		}
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("measure fsync: %w", err)
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// benchImage is an image and the store file beneath it.
type benchImage struct {
	*image.DB
	store *bolt.DB
}

func (o *benchImage) Close() error { return o.store.Close() }

// openBenchImage opens the image at path, creating it with its root if
// needed; user is recorded in its transactions.
func openBenchImage(ctx context.Context, path, user string) (*benchImage, error) {
	s, err := bolt.Open(path, nil)
	if err != nil {
		return nil, err
	}
	db := &benchImage{DB: image.New(s, &image.Options{User: user}), store: s}
	if _, err := db.Init(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func benchMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func benchSeconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
