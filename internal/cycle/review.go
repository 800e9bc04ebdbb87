package cycle

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/mind"
)

// ALFRED's review of a candidate that failed validation.
//
// The steps of an attempt are, in order:
//
//	SYNTHESIZING  ROBIN writes the candidate (a StepSynthesize step)
//	VALIDATING    the audit, the tests and the original call judge it
//	              (no model); if it fails and another attempt follows,
//	              ALFRED reviews it (a StepDelegate step, see below)
//	SYNTHESIZING  ROBIN's next prompt quotes the failure verbatim and,
//	              after it, ALFRED's findings verbatim
//
// ALFRED is asked only for a candidate that failed, and not for the last
// attempt: its findings reach ROBIN only in a failure's feedback, so a
// review of a candidate that passes, or of one no attempt follows, would
// be paid for and never read. A cycle whose first candidate passes makes
// no more model calls than before (a plan, one call per sub-question,
// one candidate); each failed attempt but the last costs one call more,
// so a cycle makes at most MaxAttempts-1 reviews. An image without an
// ALFRED persona gets no reviews.
//
// ALFRED sees what ROBIN saw of the receiver (with the methods the
// candidate names in full), the plan's tests, the candidate and the
// tests it ran with, the failure, and the dialect's rules.
//
// A review is recorded as a StepDelegate step of ALFRED whose Attempt is
// the attempt reviewed and whose Index is reviewIndex(attempt), below
// every sub-question's index (record.go has no kind of its own for it
// yet). It is recorded with the refusal, in one transaction; one asked
// when the cycle was cancelled meanwhile is recorded all the same, and
// a retry that validates the attempt again takes it up instead of
// asking again.
const reviewer = "ALFRED"

// maxReviewShown bounds how much of a review ROBIN's prompt quotes, and
// maxCandidateShown how much of the candidate ALFRED's prompt shows.
const (
	maxReviewShown    = 2000
	maxCandidateShown = 8 << 10
)

// reviewIndex is the Index of the review of attempt.
func reviewIndex(attempt int) int { return -1 - attempt }

// review is the recorded review of attempt, if any.
func (c *Cycle) review(attempt int) (Step, bool) {
	return c.step(StepDelegate, attempt, reviewIndex(attempt))
}

// refuseReviewed refuses the cycle's attempt for failure f, with
// ALFRED's review of the candidate recorded first when one is wanted.
func (m *Machine) refuseReviewed(ctx context.Context, c *Cycle, f Failure) error {
	a, fresh, err := m.askReview(ctx, c, f)
	if err != nil {
		return err
	}
	if fresh {
		// Recorded even if the cycle is shutting down: the answer is paid for.
		ctx = context.WithoutCancel(ctx)
	}
	after, err := m.updateTx(ctx, c.ID, func(tx *image.Tx, c *Cycle) error {
		advance, err := settle(c, Validating)
		if err != nil || (!advance && !fresh) {
			return cmp.Or(err, errStale)
		}
		if fresh {
			if err := record(tx, c, a); err != nil {
				return err
			}
		}
		if advance {
			m.refuse(c, f)
		}
		return nil
	})
	if err == nil && fresh {
		m.recorded(after, a.step)
	}
	return err
}

// askReview asks ALFRED to review the candidate that failed with f,
// unless no attempt follows, the image has no ALFRED, or the review is
// recorded already; fresh says whether it asked.
func (m *Machine) askReview(ctx context.Context, c *Cycle, f Failure) (a answered, fresh bool, err error) {
	if _, ok := c.review(c.Attempt); ok || c.Attempt >= c.MaxAttempts {
		return answered{}, false, nil
	}
	var v *receiverView
	err = m.db.View(ctx, func(tx *image.Tx) error {
		if _, err := mind.LoadPersona(tx, reviewer); err != nil {
			return err
		}
		fc := workFocus(c)
		fc.text += "\n" + c.Code
		v, err = viewReceiver(tx, c.Mission.Receiver, fc, m.similarFinder(ctx))
		return err
	})
	if errors.Is(err, mind.ErrNoPersona) {
		return answered{}, false, nil
	}
	if err != nil {
		return answered{}, false, err
	}
	a, err = m.askFitting(ctx, reviewer, v, func(v *receiverView) []llm.Message { return reviewPrompt(c, v, f) }, nil, Step{Kind: StepDelegate, Attempt: c.Attempt, Index: reviewIndex(c.Attempt)})
	if err != nil {
		return answered{}, false, err
	}
	return a, true, nil
}

// reviewPrompt asks ALFRED to review the candidate of c's attempt, which
// failed with f.
func reviewPrompt(c *Cycle, v *receiverView, f Failure) []llm.Message {
	var b strings.Builder
	fmt.Fprintf(&b, "Review the candidate method %s for the object %s (attempt %d of %d). Validation refused it; ROBIN writes the next attempt with your findings.\nMission: %s\nIntent: %s\nSignature: %s\n",
		c.Plan.Selector, v.desc, c.Attempt, c.MaxAttempts, missionText(c, v), c.Plan.Intent, c.Plan.Signature)
	viewSections(&b, v, false)
	section(&b, "The plan's tests", testLines(c.Plan.Tests))
	section(&b, "The candidate", []string{clip(c.Code, maxCandidateShown)})
	section(&b, "The tests it ran with", testLines(c.Tests))
	fmt.Fprintf(&b, "\nValidation refused it (%s):\n%s\n", f.Kind, f.Message)
	b.WriteString("\n" + strings.ReplaceAll(dialect, "SELECTOR", c.Plan.Selector) + "\n")
	b.WriteString(`
Say what is wrong in the candidate and the smallest fix, naming the lines; if a test is what is wrong,
say which and why. A few sentences, no whole method.`)
	return []llm.Message{{Role: llm.RoleUser, Content: b.String()}}
}
