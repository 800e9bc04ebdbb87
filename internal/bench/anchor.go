package bench

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// SeedScript is the seed's own message send, measured as bench vm's
// anchor: the blueprint's UvmObject (persistent.Persistent, slots in a
// PersistentMapping, parent* delegation through __getattr__) sending the
// same read-only message as bench vm, in memory, with no transaction. It
// takes the number of sends as its argument and prints one JSON object
// with seed_send_ro_per_s. It needs Debian's python3-persistent, for
// /usr/bin/python3.
//
//go:embed seed_send.py
var SeedScript []byte

// DefaultPython is the interpreter the anchor runs on: Debian's, where
// python3-persistent installs.
const DefaultPython = "/usr/bin/python3"

// vmAnchor is the seed's send beside batos's, measured alternately in one
// run; its JSON is the "anchor" of bench vm's output.
type vmAnchor struct {
	Python string `json:"python"`
	Script string `json:"script"` // "" for the copy batos carries (SeedScript)
	Rounds int    `json:"rounds"`
	Sends  int    `json:"seed_sends"` // per run of the script
	// The best of Rounds runs of each: the seed's send, and batos's
	// one-core read-only send, each its own Update (as
	// send_ro_one_core_per_s), alternately.
	SeedPerS  float64 `json:"seed_send_ro_per_s"`
	BatosPerS float64 `json:"send_ro_one_core_per_s"`
	Ratio     float64 `json:"ratio"` // BatosPerS / SeedPerS
}

// anchorTarget is the ratio batos's one-core read-only send is meant to
// reach against the seed's.
const anchorTarget = 1.0

// seedRunner runs the seed script.
type seedRunner struct {
	python string
	script string // the file run
}

// newSeedRunner checks that python can run the script and returns its
// runner; script "" means SeedScript, written into dir.
func newSeedRunner(ctx context.Context, python, script, dir string) (*seedRunner, error) {
	if python == "" {
		python = DefaultPython
	}
	if out, err := exec.CommandContext(ctx, python, "-c", "import persistent").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("the anchor runs the seed's Python with %s and Debian's python3-persistent (apt-get install python3-persistent): %v: %s", python, err, bytes.TrimSpace(out))
	}
	r := &seedRunner{python: python, script: script}
	if script == "" {
		r.script = filepath.Join(dir, "seed_send.py")
		if err := os.WriteFile(r.script, SeedScript, 0o644); err != nil {
			return nil, fmt.Errorf("write the seed script: %w", err)
		}
	}
	return r, nil
}

// rate runs the script for n sends and returns its sends per second.
func (r *seedRunner) rate(ctx context.Context, n int) (float64, error) {
	cmd := exec.CommandContext(ctx, r.python, r.script, strconv.Itoa(n))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("run the seed script %s: %v: %s", r.script, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return parseSeedRate(out)
}

// errNoSeedRate is what parseSeedRate returns for output without a rate.
var errNoSeedRate = errors.New("bench: the seed script printed no seed_send_ro_per_s")

// parseSeedRate reads the seed script's output: one JSON object with a
// positive seed_send_ro_per_s.
func parseSeedRate(out []byte) (float64, error) {
	var v struct {
		Rate float64 `json:"seed_send_ro_per_s"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &v); err != nil {
		return 0, fmt.Errorf("%w: %v: %q", errNoSeedRate, err, clipOutput(out))
	}
	if v.Rate <= 0 {
		return 0, fmt.Errorf("%w: %q", errNoSeedRate, clipOutput(out))
	}
	return v.Rate, nil
}

func clipOutput(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// anchor runs the seed script and the one-core read-only send
// alternately, AnchorRounds times each, keeping each one's best run (see
// telemetryOverhead for why the best).
func (b *vmBencher) anchor(ctx context.Context) error {
	if b.seed == nil {
		return nil
	}
	a := &vmAnchor{Python: b.seed.python, Script: b.anchorScript, Rounds: b.sizes.AnchorRounds, Sends: b.sizes.AnchorSends}
	d := benchSeconds(b.sizes.PhaseS)
	send := b.sendRO(b.db.Update)
	b.phase("anchor: the seed's send (%s, %d sends) and batos's one-core read-only send (%s), alternately, %d times each", a.Python, a.Sends, d, a.Rounds)
	for round := range a.Rounds {
		seed, err := b.seed.rate(ctx, a.Sends)
		if err != nil {
			return err
		}
		p, err := b.measureOneCoreFor(ctx, d, send)
		if err != nil {
			return err
		}
		a.SeedPerS, a.BatosPerS = max(a.SeedPerS, seed), max(a.BatosPerS, p.perS())
		b.phase("anchor: round %d: seed %.0f/s, batos %.0f/s", round+1, seed, p.perS())
	}
	a.Ratio = a.BatosPerS / a.SeedPerS
	b.phase("anchor: seed %.0f/s, batos %.0f/s: %.2f×", a.SeedPerS, a.BatosPerS, a.Ratio)
	b.res.Anchor = a
	return nil
}
