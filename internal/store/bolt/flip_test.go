package bolt_test

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/store"
	"batos/internal/store/bolt"
	"batos/internal/store/storetest"
)

var (
	flipTrials = flag.Int("flips", 1000, "images TestFlippedBytes damages (make soak runs many more)")
	flipSeed   = flag.Uint64("flipseed", 0, "first trial's seed for TestFlippedBytes; 0 picks one from the clock")
)

// flipBatches run in parallel, each on its own trials.
const flipBatches = 4

// TestFlippedBytes flips 1-8 random bytes anywhere in the bbolt file of a
// small image with known commits, again and again, then opens it, reads
// every object, its history and the log, and verifies it. Each outcome
// must be a reported error (wrapping store.ErrCorrupt) or problem, or the
// committed data exactly: never a crash, never a read that is silently
// wrong. A failure prints the trial's seed, which -flipseed with -flips=1
// replays.
func TestFlippedBytes(t *testing.T) {
	k := buildKnownImage(t, filepath.Join(t.TempDir(), "img.db"), 200, 300, 10, 7)
	base, err := os.ReadFile(k.path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := bolt.Layout(k.path)
	if err != nil {
		t.Fatal(err)
	}
	seed := *flipSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	// bbolt grows the file ahead of its pages: the flips go where its
	// pages are, but one trial in 16 also anywhere in the file.
	used := int(l.HWM) * l.PageSize
	if slices.ContainsFunc(base[used:], func(b byte) bool { return b != 0 }) {
		t.Fatalf("the file holds bytes past its high-water mark")
	}
	t.Logf("image: %d pages of %d bytes in use, file %d bytes; seeds %d to %d", l.HWM, l.PageSize, len(base), seed, seed+uint64(*flipTrials)-1)
	var tally flipTally
	start := time.Now()
	t.Run("batches", func(t *testing.T) {
		for b := range flipBatches {
			t.Run(fmt.Sprint(b), func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				for i := b; i < *flipTrials; i += flipBatches {
					s := seed + uint64(i)
					tally.add(flipTrial(t, k, base, used, l.PageSize, filepath.Join(dir, fmt.Sprint(i)), s))
					if t.Failed() {
						t.Logf("replay: go test -run '^TestFlippedBytes$' ./internal/store/bolt -args -flips=1 -flipseed=%d", s)
						return
					}
				}
			})
		}
	})
	t.Logf("%d trials in %v: %s", *flipTrials, time.Since(start).Round(time.Millisecond), tally.String())
}

// flipOutcome classifies a trial.
type flipOutcome int

const (
	flipRefused      flipOutcome = iota // Open refused the file's page structure
	flipRolledBack                      // Open refused a file older than the log says
	flipRefusedOther                    // Open refused the file for another reason
	flipReadErrors                      // some reads reported the damage
	flipVerifyOnly                      // every read was right; Verify reported the damage
	flipHarmless                        // nothing was wrong to read or report
	flipOutcomes
)

var flipOutcomeNames = [flipOutcomes]string{"refused at open (page structure)", "refused at open (older than the log)", "refused at open (other)", "reads reported it", "only verify reported it", "harmless"}

type flipTally struct {
	mu sync.Mutex
	n  [flipOutcomes]int
}

func (t *flipTally) add(o flipOutcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n[o]++
}

func (t *flipTally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var parts []string
	for o, n := range t.n {
		parts = append(parts, fmt.Sprintf("%s %d", flipOutcomeNames[o], n))
	}
	return strings.Join(parts, ", ")
}

// flipTrial damages a copy of the image in dir with seed's flips and
// checks every outcome.
func flipTrial(t *testing.T, k *knownImage, base []byte, used, pageSize int, dir string, seed uint64) flipOutcome {
	t.Helper()
	defer os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := k.copyImage(t, dir, false)
	rng := rand.New(rand.NewPCG(seed, 2))
	span := used
	if rng.IntN(16) == 0 {
		span = len(base)
	}
	data := slices.Clone(base[:used])
	var flips []string
	for range 1 + rng.IntN(8) {
		off := rng.IntN(span)
		if off >= len(data) {
			data = append(data, make([]byte, off+1-len(data))...)
		}
		data[off] ^= byte(1 + rng.IntN(255))
		flips = append(flips, fmt.Sprintf("page %d+%d", off/pageSize, off%pageSize))
	}
	// The zeros past the data stay a hole.
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(len(base))); err != nil {
		t.Fatal(err)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("seed %d (flips at %s): %s", seed, strings.Join(flips, ", "), fmt.Sprintf(format, args...))
	}
	db, err := bolt.Open(path, nil)
	if err != nil {
		var se *bolt.StructureError
		var de *store.DamageError
		switch {
		case errors.As(err, &se):
			checkDamagedVerify(t, path, fail)
			return flipRefused
		case errors.As(err, &de):
			return flipRolledBack
		}
		// Refused all the same, for another reason: the meta bucket's
		// format byte, which has no checksum, no longer says format 1.
		t.Logf("seed %d: Open: %v", seed, err)
		return flipRefusedOther
	}
	defer func() {
		if err := db.Close(); err != nil {
			fail("Close: %v", err)
		}
	}()
	reported := readAll(t, db, k, fail)
	rep, err := db.Verify(t.Context(), storetest.Refs)
	switch {
	case err != nil:
		fail("Verify: %v", err)
	case reported && rep.OK():
		fail("reads reported damage that Verify did not")
	case reported:
		return flipReadErrors
	case !rep.OK():
		return flipVerifyOnly
	}
	return flipHarmless
}

// checkDamagedVerify opens a file Open refused with AllowDamaged: Verify
// must finish and report the damage.
func checkDamagedVerify(t *testing.T, path string, fail func(string, ...any)) {
	t.Helper()
	db, err := bolt.Open(path, &bolt.Options{ReadOnly: true, AllowDamaged: true})
	if err != nil {
		if !errors.Is(err, store.ErrCorrupt) {
			fail("Open with AllowDamaged: %v, want success or an error wrapping ErrCorrupt", err)
		}
		return
	}
	defer db.Close()
	rep, err := db.Verify(t.Context(), storetest.Refs)
	if err != nil {
		fail("Verify with AllowDamaged: %v", err)
	} else if rep.OK() {
		fail("Verify with AllowDamaged found nothing wrong in a file Open refused")
	}
}

// readAll reads every object, its history and the log; each read must be
// exactly what was committed or an error wrapping ErrCorrupt. It reports
// whether any read returned such an error.
func readAll(t *testing.T, db *bolt.DB, k *knownImage, fail func(string, ...any)) bool {
	t.Helper()
	ctx := t.Context()
	reported := false
	check := func(what string, err error) bool {
		if err == nil {
			return true
		}
		if !errors.Is(err, store.ErrCorrupt) {
			fail("%s: %v, want success or an error wrapping ErrCorrupt", what, err)
		}
		reported = true
		return false
	}
	for oid, want := range k.final {
		rec, err := db.Load(ctx, oid)
		if check(fmt.Sprintf("Load(%s)", oid), err) && (storetest.Payload(rec.Data) != want || rec.Serial != k.history[oid][0]) {
			fail("Load(%s) = %q at %s, want %q at %s", oid, storetest.Payload(rec.Data), rec.Serial, want, k.history[oid][0])
		}
		revs, err := db.History(ctx, oid, 0)
		if check(fmt.Sprintf("History(%s)", oid), err) {
			var got []store.TID
			for _, r := range revs {
				got = append(got, r.Serial)
			}
			if !slices.Equal(got, k.history[oid]) {
				fail("History(%s) = %v, want %v", oid, got, k.history[oid])
			}
		}
	}
	infos, err := db.Log(ctx, store.LogQuery{})
	if check("Log", err) {
		got := map[store.TID][]store.OID{}
		for _, info := range infos {
			got[info.TID] = info.OIDs
		}
		if len(got) != len(k.log) {
			fail("Log: %d transactions, want %d", len(got), len(k.log))
		}
		for tid, oids := range k.log {
			if !slices.Equal(got[tid], oids) {
				fail("Log: transaction %s wrote %v, want %v", tid, got[tid], oids)
			}
		}
	}
	return reported
}
