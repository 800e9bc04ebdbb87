package cycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"batos/internal/image"
)

// Improvement kinds: what an improvement cycle must do to an existing
// method. The strings are the recorded form.
const (
	ImproveFix      = "fix"      // calls that fail now must succeed; nothing else changes
	ImproveOptimize = "optimize" // the same results in fewer steps
	ImproveSimplify = "simplify" // the same results from simpler code
	ImproveDocument = "document" // the same results, documented
)

// IsImproveKind reports whether kind is one an improvement cycle serves
// (retire needs no cycle: it only marks the method).
func IsImproveKind(kind string) bool {
	switch kind {
	case ImproveFix, ImproveOptimize, ImproveSimplify, ImproveDocument:
		return true
	}
	return false
}

// Improvement makes a cycle an improvement of an existing method: the
// mission's receiver is the object that owns the method, its selector the
// method's, and its brief the goal. Besides the guardian and the plan's
// tests, a candidate must pass the regression replay (Improver), and it
// is never installed over code other than Base.
type Improvement struct {
	Kind string `json:"kind"`
	Goal string `json:"goal"`
	// Base is the method's source when the improvement was proposed.
	Base string `json:"base"`
	// Audit and Proposal name the audit that proposed it and the
	// proposal's number in it (provenance names them).
	Audit    int64 `json:"audit"`
	Proposal int   `json:"proposal"`
	// Evidence are recorded calls of the method, shown to the personas:
	// "average([]) failed: division by zero".
	Evidence []string `json:"evidence,omitempty"`
	// Hold keeps a candidate that passed every gate for a person to
	// accept, instead of installing it (the heartbeat's "propose" policy).
	Hold bool `json:"hold"`
	// Replay is the replay the installed (or held) candidate passed.
	Replay *ReplayReport `json:"replay,omitempty"`
	// Outcome says what became of the candidate: "installed", "held for
	// approval", or why it was dropped.
	Outcome string `json:"outcome,omitempty"`
}

// ReplayReport is what a regression replay of a candidate found.
type ReplayReport struct {
	Attempt int `json:"attempt"`
	// Samples is how many recorded calls ran; Targeted how many of them
	// the improvement was meant to change (for a fix: those failing now);
	// Skipped how many recorded calls no longer reach the method and were
	// not run.
	Samples  int  `json:"samples"`
	Targeted int  `json:"targeted"`
	Skipped  int  `json:"skipped,omitempty"`
	Passed   bool `json:"passed"`
	// OldSteps and NewSteps are the Starlark steps the current method and
	// the candidate took over every sample.
	OldSteps uint64 `json:"old_steps"`
	NewSteps uint64 `json:"new_steps"`
	// Diffs say, per sample, where the two versions disagreed when they
	// must not have (or a targeted call the candidate did not mend).
	Diffs []string `json:"diffs,omitempty"`
	// Mended say what a fix does on the calls failing now, which nothing
	// compares (that is the fix): for the person who accepts it.
	Mended []string `json:"mended,omitempty"`
	// Summary is one line saying why it passed or failed.
	Summary string `json:"summary"`
}

// Text is the report as a failure message: the summary and the diffs.
func (r ReplayReport) Text() string {
	var b strings.Builder
	b.WriteString(r.Summary)
	for _, d := range r.Diffs {
		b.WriteString("\n- " + d)
	}
	return b.String()
}

// FailureReplay: the candidate passed its tests but not the regression
// replay.
const FailureReplay FailureKind = "replay"

// Improver judges improvement cycles; the heartbeat provides it. Its
// methods may be called concurrently.
type Improver interface {
	// Check says, before each step of improvement c, whether it may go
	// on: ErrBaseChanged when the method is no longer c's Base,
	// ErrUnwanted when what proposed it no longer waits for it. Any
	// other error fails the cycle.
	Check(ctx context.Context, c *Cycle) error
	// Replay runs the current method and attempt c.Attempt's candidate
	// (c.Code) on every recorded call of the method, each in a rehearsal
	// at the current state, and reports where they differ.
	// ErrBaseChanged says the method is no longer c's Base.
	Replay(ctx context.Context, c *Cycle) (ReplayReport, error)
}

// ErrBaseChanged is returned when the method an improvement was proposed
// for was changed meanwhile (or deleted, or replaced by data): the
// candidate is dropped, never installed over the newer code.
var ErrBaseChanged = errors.New("the method changed since the improvement was proposed")

// ErrUnwanted is returned when an improvement cycle runs that nothing
// waits for any more: its proposal was settled when the cycle ended (a
// retry cannot bring it back; the next audit may propose it again).
var ErrUnwanted = errors.New("the improvement is no longer wanted")

// What became of an improvement's candidate (Improvement.Outcome); a
// dropped one's outcome says why after the prefix.
const (
	OutcomeInstalled = "installed"
	OutcomeHeld      = "held for approval"
	outcomeDropped   = "dropped: "
)

// Dropped reports whether the improvement was dropped because its method
// changed, or nothing wanted it any more: no fault of the candidate's.
func (im *Improvement) Dropped() bool { return strings.HasPrefix(im.Outcome, outcomeDropped) }

// drop fails improvement cycle c in state in for err (ErrBaseChanged or
// ErrUnwanted), saying so in its outcome.
func (m *Machine) drop(ctx context.Context, id int64, in State, err error) error {
	_, uerr := m.update(context.WithoutCancel(ctx), id, func(c *Cycle) error {
		if c.State.Terminal() {
			return errStale
		}
		c.FailedIn, c.State, c.Reason = in, Failed, clip(err.Error(), maxFailure)
		if c.Mission.Improve != nil {
			c.Mission.Improve.Outcome = clip(outcomeDropped+err.Error(), maxFailure)
		}
		return nil
	})
	if errors.Is(uerr, errStale) {
		return nil
	}
	return uerr
}

// checkImprovement asks the Improver whether improvement c may take its
// next step; one that may not is dropped (and errStale returned, for
// drive to read it again). No model is asked for an improvement whose
// method changed, or that nothing waits for.
func (m *Machine) checkImprovement(ctx context.Context, c *Cycle) error {
	if m.opts.Improver == nil {
		return errors.New("an improvement cycle needs the heartbeat's regression replay, and this batos runs none")
	}
	err := m.opts.Improver.Check(ctx, c)
	if errors.Is(err, ErrBaseChanged) || errors.Is(err, ErrUnwanted) {
		if derr := m.drop(ctx, c.ID, c.State, err); derr != nil {
			return derr
		}
		return errStale
	}
	return err
}

// CurrentSource is the source of the method slot selector of o, "" when
// the slot holds no method.
func CurrentSource(o *image.Object, selector string) string {
	v, _ := o.Get(selector)
	if m, ok := v.(*image.Method); ok {
		return m.Source
	}
	return ""
}

// checkBase refuses, with ErrBaseChanged, an improvement whose method
// is no longer the source it was proposed for.
func checkBase(tx *image.Tx, c *Cycle) error {
	o, err := tx.Object(c.Mission.Receiver)
	if err != nil {
		return err
	}
	if CurrentSource(o, c.Mission.Selector) != c.Mission.Improve.Base {
		return fmt.Errorf("%w: %s of %s is not the code the proposal was for; the candidate is dropped, not installed over the newer code",
			ErrBaseChanged, c.Mission.Selector, c.Mission.Receiver)
	}
	return nil
}

// InstallImprovement installs a held improvement's candidate (a person
// accepted it), in tx, with its provenance, unless the method changed
// since it was proposed (ErrBaseChanged).
func InstallImprovement(tx *image.Tx, c *Cycle, now time.Time) error {
	if c.Mission.Improve == nil || c.State != Complete || c.Code == "" {
		return fmt.Errorf("%w: cycle %d holds no validated improvement", ErrState, c.ID)
	}
	if err := checkBase(tx, c); err != nil {
		return err
	}
	return install(tx, c, now)
}

// SetOutcome records what became of an improvement cycle's candidate
// (accepted, rejected) in its object, in tx.
func SetOutcome(tx *image.Tx, id int64, outcome string) error {
	o, err := cycleObject(tx, id)
	if err != nil {
		return err
	}
	c, err := decode(o)
	if err != nil {
		return err
	}
	if c.Mission.Improve == nil {
		return fmt.Errorf("%w: cycle %d is no improvement", ErrState, id)
	}
	c.Mission.Improve.Outcome = outcome
	return encode(o, c)
}

// replayGate runs the replay on a candidate that passed its tests: nil
// when it passed (its report kept on the improvement), a failure with the
// diffs when not.
func (m *Machine) replayGate(ctx context.Context, c *Cycle) (*Failure, *ReplayReport, error) {
	if m.opts.Improver == nil {
		return nil, nil, errors.New("an improvement cycle needs the heartbeat's regression replay, and this batos runs none")
	}
	r, err := m.opts.Improver.Replay(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	r.Attempt = c.Attempt
	if r.Passed {
		return nil, &r, nil
	}
	return &Failure{Attempt: c.Attempt, Kind: FailureReplay, Message: r.Text(), Replay: &r}, &r, nil
}

// improvementText is what the personas are told of an improvement
// mission: the kind, the goal, and what the replay will demand.
func improvementText(c *Cycle) string {
	im := c.Mission.Improve
	var b strings.Builder
	fmt.Fprintf(&b, "Improve the existing method %s (%s): %s\n", c.Mission.Selector, im.Kind, im.Goal)
	const same = "answer exactly as now (the same value, or the same error) and leave the same changes: slots written, objects created, arguments changed in place"
	switch im.Kind {
	case ImproveFix:
		b.WriteString("The replacement is run on the method's recorded calls: the calls that fail now must succeed, and every other call must " + same + ".\n")
	case ImproveOptimize:
		b.WriteString("The replacement is run on the method's recorded calls: every call must " + same + ", in fewer Starlark steps than the current method takes.\n")
	default:
		b.WriteString("The replacement is run on the method's recorded calls: every call must " + same + ".\n")
	}
	b.WriteString("Its current source:\n" + indent(im.Base) + "\n")
	if len(im.Evidence) > 0 {
		b.WriteString("Recorded calls of the current method:\n")
		for _, e := range im.Evidence {
			b.WriteString("  " + clip(e, 400) + "\n")
		}
	}
	return b.String()
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
