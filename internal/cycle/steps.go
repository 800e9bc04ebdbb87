package cycle

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/mind"
	"batos/internal/vm"
)

// drive moves cycle id until it is finished, the context ends (the cycle
// resumes on the next start) or it is cancelled.
func (m *Machine) drive(ctx context.Context, id int64) {
	for {
		c, err := m.Get(ctx, id)
		if err != nil {
			if ctx.Err() == nil {
				m.opts.Logger.Error("cycle: read", "id", id, "err", err)
			}
			return
		}
		if c.State == Complete {
			if err := m.deliverAll(ctx, id, c); err != nil && ctx.Err() == nil && !errors.Is(err, errLeaseLost) {
				m.opts.Logger.Error("cycle: deliver", "id", id, "err", err)
			}
			return
		}
		if c.State.Terminal() {
			return
		}
		err = m.step(ctx, c)
		switch {
		case err == nil || errors.Is(err, errStale):
		case errors.Is(err, errLeaseLost):
			return // another node runs it now, from what is recorded
		case ctx.Err() != nil:
			return // shut down or cancelled: whatever is recorded stays
		default:
			if _, ferr := m.fail(ctx, id, c.State, err.Error()); ferr != nil {
				if !errors.Is(ferr, errLeaseLost) {
					m.opts.Logger.Error("cycle: record failure", "id", id, "err", ferr, "failure", err)
				}
				return
			}
		}
	}
}

func (m *Machine) step(ctx context.Context, c *Cycle) error {
	if err := runnable(c); err != nil {
		return err
	}
	if c.Mission.Improve != nil {
		if err := m.checkImprovement(ctx, c); err != nil {
			return err
		}
	}
	switch c.State {
	case Idle:
		_, err := m.update(ctx, c.ID, func(c *Cycle) error {
			if err := expect(c, Idle); err != nil {
				return err
			}
			c.State = Decomposing
			return nil
		})
		return err
	case Decomposing:
		return m.decompose(ctx, c)
	case Delegating:
		return m.delegate(ctx, c)
	case Synthesizing:
		return m.synthesize(ctx, c)
	case Validating:
		return m.validateStep(ctx, c)
	}
	return fmt.Errorf("cycle %d: cannot run from state %s", c.ID, c.State)
}

// runnable refuses a cycle its state cannot run from: cycle objects can
// be edited from the REPL, and a plan, say, set to None must fail the
// cycle with a reason, not crash the process.
func runnable(c *Cycle) error {
	switch {
	case c.State >= Delegating && c.Plan == nil:
		return fmt.Errorf("cycle %d is %s but has no plan (was the cycle object edited?)", c.ID, c.State)
	case c.State == Validating && c.Code == "":
		return fmt.Errorf("cycle %d is VALIDATING but has no code (was the cycle object edited?)", c.ID)
	}
	return nil
}

func (m *Machine) fail(ctx context.Context, id int64, in State, reason string) (*Cycle, error) {
	return m.update(context.WithoutCancel(ctx), id, func(c *Cycle) error {
		if c.State.Terminal() {
			return errStale
		}
		c.FailedIn, c.State, c.Reason = in, Failed, clip(reason, maxFailure)
		return nil
	})
}

// answered is a model answer not yet recorded: the step and the call's
// record, saved together by record.
type answered struct {
	step Step
	call mind.Call
}

// ask puts a prompt to a persona, outside any transaction, and returns
// the answer to record.
func (m *Machine) ask(ctx context.Context, persona string, prompt []llm.Message, schema json.RawMessage, step Step) (answered, error) {
	ans, err := m.asker.Ask(ctx, mind.Request{Persona: persona, Messages: prompt, Schema: schema, DeferRecord: true})
	if err != nil {
		return answered{step: step}, fmt.Errorf("%s: %w", persona, err)
	}
	step.Persona, step.Prompt, step.Answer = persona, prompt, ans.Text
	if len(ans.Text) > maxAnswer {
		// Kept clipped, and refused: an answer this long is not a plan
		// or a method, and the cycle object must stay a sane size.
		step.Answer = ans.Text[:maxAnswer]
		step.Rejected = fmt.Sprintf("the answer is %d bytes, over the %d KiB limit", len(ans.Text), maxAnswer>>10)
	}
	step.Model, step.Adapter = ans.Call.Model, ans.Call.Adapter
	step.PromptTokens, step.CompletionTokens = ans.Call.PromptTokens, ans.Call.CompletionTokens
	step.LatencyMS = float64(ans.Call.Latency.Microseconds()) / 1000
	step.At = m.opts.Now()
	return answered{step: step, call: ans.Call}, nil
}

// askFitting asks persona for the prompt build makes of v; when the
// prompt does not fit the model's context, it asks once more with the
// receiver shown compactly (no similar methods, no inherited ones, own
// methods by their def lines), and when that does not fit either, it
// fails saying so: a prompt the server would cut is never sent.
func (m *Machine) askFitting(ctx context.Context, persona string, v *receiverView, build func(*receiverView) []llm.Message, schema json.RawMessage, step Step) (answered, error) {
	a, err := m.ask(ctx, persona, build(v), schema, step)
	if !errors.Is(err, llm.ErrPromptTooLong) {
		return a, err
	}
	a, err = m.ask(ctx, persona, build(v.compact()), schema, step)
	if errors.Is(err, llm.ErrPromptTooLong) {
		return a, fmt.Errorf("the prompt does not fit the model's context even with the receiver shown compactly (give the model a larger context, or the persona a model with one): %w", err)
	}
	return a, err
}

// record appends a fresh answer to c in tx: its prompt in an object of
// its own, the call in the persona's accounting.
func record(tx *image.Tx, c *Cycle, a answered) error {
	r, err := newPrompt(tx, a.step.Prompt)
	if err != nil {
		return err
	}
	a.step.PromptRef = r
	c.Steps = append(c.Steps, a.step)
	if a.call.Persona == "" {
		return nil // an Asker that keeps no accounts
	}
	return mind.RecordIn(tx, a.call)
}

// maxAnswer bounds a recorded answer.
const maxAnswer = 256 << 10

func (m *Machine) recorded(c *Cycle, s Step) {
	m.publish("cycle.step", map[string]any{"id": c.ID, "kind": string(s.Kind), "attempt": s.Attempt, "index": s.Index,
		"persona": s.Persona, "model": s.Model, "prompt_tokens": s.PromptTokens, "completion_tokens": s.CompletionTokens,
		"latency_ms": s.LatencyMS, "rejected": s.Rejected, "repaired": s.Repaired})
}

func (m *Machine) receiverView(ctx context.Context, c *Cycle, f focus) (*receiverView, error) {
	var v *receiverView
	err := m.db.View(ctx, func(tx *image.Tx) (err error) {
		v, err = viewReceiver(tx, c.Mission.Receiver, f, m.similarFinder(ctx))
		return err
	})
	return v, err
}

// decompose asks BRICK for a plan — unless an answer is already recorded
// and not rejected, which is then used — and moves to DELEGATING, or
// records why the plan cannot be used.
func (m *Machine) decompose(ctx context.Context, c *Cycle) error {
	plans := c.stepsOf(StepPlan)
	var a answered
	fresh := false
	if n := len(plans); n > 0 && plans[n-1].Rejected == "" {
		a.step = plans[n-1] // recorded before a crash, not yet used
	} else {
		if len(plans) >= c.PlanTries {
			reason := fmt.Sprintf("the cycle allows %d plan tries (was the cycle object edited?)", c.PlanTries)
			if len(plans) > 0 {
				reason = fmt.Sprintf("BRICK gave no usable plan in %d tries: %s", len(plans), plans[len(plans)-1].Rejected)
			}
			_, err := m.fail(ctx, c.ID, Decomposing, reason)
			return err
		}
		v, err := m.receiverView(ctx, c, planFocus(c))
		if err != nil {
			return err
		}
		a, err = m.askFitting(ctx, "BRICK", v, func(v *receiverView) []llm.Message { return planPrompt(c, v, plans) }, planSchema, Step{Kind: StepPlan})
		if err != nil {
			return err
		}
		fresh = true
	}
	var plan *Plan
	if a.step.Rejected == "" {
		var perr error
		if plan, a.step.Repaired, perr = parsePlan(a.step.Answer, c.Mission.Selector); perr != nil {
			a.step.Rejected = perr.Error()
		}
	}
	// Recorded even if the cycle is shutting down: the answer is paid for.
	after, err := m.updateTx(context.WithoutCancel(ctx), c.ID, func(tx *image.Tx, c *Cycle) error {
		advance, err := settle(c, Decomposing)
		if err != nil || (!advance && !fresh) {
			return cmp.Or(err, errStale)
		}
		s, p := a.step, plan
		if p != nil {
			if why := cmp.Or(unknownPersona(tx, p), unknownNames(tx, p)); why != "" {
				s.Rejected, p = why, nil
			}
		}
		if fresh {
			if err := record(tx, c, answered{step: s, call: a.call}); err != nil {
				return err
			}
		} else {
			c.Steps[lastIndex(c.Steps, StepPlan)] = s
		}
		if p != nil && advance {
			c.Plan, c.State = p, Delegating
			if c.Mission.Selector == "" {
				// A brief's method is named now: index it, so a message
				// for it joins this cycle instead of paying for another.
				c.Mission.Selector = p.Selector
				cs, err := cyclesObject(tx)
				if err != nil {
					return err
				}
				if _, taken := findOpen(tx, cs, c.Mission.Key()); !taken {
					if err := setOpen(cs, c.Mission.Key(), c.ID, true); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if err == nil && fresh {
		m.recorded(after, after.Steps[lastIndex(after.Steps, StepPlan)])
	}
	return err
}

// settle says what a fresh answer for a step of state may do: move the
// cycle on (it is still in state), or only be recorded (it was cancelled
// or failed meanwhile in that state: a retry takes the answer up, rather
// than pay for it again). Any other state is stale.
func settle(c *Cycle, state State) (advance bool, err error) {
	switch {
	case c.State == state:
		return true, nil
	case c.State == Failed && c.FailedIn == state:
		return false, nil
	}
	return false, errStale
}

// unknownPersona says which sub-question of p is for no persona, if
// any: such a plan is refused (BRICK is asked again) rather than failing
// the cycle when the question is put.
func unknownPersona(tx *image.Tx, p *Plan) string {
	for i, q := range p.SubQuestions {
		if _, err := mind.LoadPersona(tx, q.Persona); errors.Is(err, mind.ErrNoPersona) {
			return fmt.Sprintf("sub-question %d: %v", i+1, err)
		}
	}
	return ""
}

// unknownNames says which of a plan's tests name what does not exist: a
// test sees self, the root's names and the built-ins, and nothing else
// (the method being planned is reached through self).
func unknownNames(tx *image.Tx, p *Plan) string {
	names, err := tx.RootNames()
	if err != nil {
		return ""
	}
	known := func(n string) bool { _, root := names[n]; return n == "self" || root }
	for i, t := range p.Tests {
		undefined, err := vm.UndefinedNames(t.Expr, known)
		if err == nil && len(undefined) > 0 {
			return fmt.Sprintf("test %d (%s) names what does not exist: %s; a test sees self (the receiver), the root's names and the built-ins",
				i+1, clip(t.Expr, 200), strings.Join(undefined, ", "))
		}
	}
	return ""
}

func lastIndex(steps []Step, kind StepKind) int {
	for i := len(steps) - 1; i >= 0; i-- {
		if steps[i].Kind == kind {
			return i
		}
	}
	return -1
}

// delegate asks every sub-question without a recorded answer, at once,
// each with the receiver in view; each answer is recorded as it arrives,
// and the one that completes the set moves the cycle to SYNTHESIZING in
// the same transaction.
func (m *Machine) delegate(ctx context.Context, c *Cycle) error {
	v, err := m.receiverView(ctx, c, workFocus(c))
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.Plan.SubQuestions))
	pending := 0
	for i, q := range c.Plan.SubQuestions {
		if _, ok := c.step(StepDelegate, 0, i); ok {
			continue
		}
		pending++
		wg.Add(1)
		go func() {
			defer wg.Done()
			passages, sources := m.research(ctx, c, q, v)
			a, err := m.askFitting(ctx, q.Persona, v, func(v *receiverView) []llm.Message { return questionPrompt(c, q, v, passages) }, nil, Step{Kind: StepDelegate, Index: i, Sources: sources})
			if err != nil {
				errs[i] = err
				return
			}
			after, err := m.updateTx(context.WithoutCancel(ctx), c.ID, func(tx *image.Tx, c *Cycle) error {
				advance, err := settle(c, Delegating)
				if err != nil {
					return err
				}
				if err := record(tx, c, a); err != nil {
					return err
				}
				if advance && allAnswered(c) {
					m.startSynthesis(c)
				}
				return nil
			})
			if err != nil {
				errs[i] = err
				return
			}
			m.recorded(after, a.step)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil || pending > 0 {
		return err
	}
	_, err = m.update(ctx, c.ID, func(c *Cycle) error {
		if err := expect(c, Delegating); err != nil {
			return err
		}
		m.startSynthesis(c)
		return nil
	})
	return err
}

func allAnswered(c *Cycle) bool {
	for i := range c.Plan.SubQuestions {
		if _, ok := c.step(StepDelegate, 0, i); !ok {
			return false
		}
	}
	return true
}

// synthesize asks ROBIN for attempt c.Attempt's method, unless it is
// recorded, and moves to VALIDATING — or, if the answer cannot be used,
// to the next attempt or FAILED.
func (m *Machine) synthesize(ctx context.Context, c *Cycle) error {
	var a answered
	var have bool
	a.step, have = c.step(StepSynthesize, c.Attempt, 0)
	if !have {
		v, err := m.receiverView(ctx, c, workFocus(c))
		if err != nil {
			return err
		}
		a, err = m.askFitting(ctx, "ROBIN", v, func(v *receiverView) []llm.Message { return synthesisPrompt(c, v) }, methodSchema, Step{Kind: StepSynthesize, Attempt: c.Attempt})
		if err != nil {
			return err
		}
	}
	step := a.step
	var meth *method
	perr := errors.New(step.Rejected)
	if step.Rejected == "" {
		meth, a.step.Repaired, perr = parseMethod(step.Answer)
	}
	if perr != nil {
		a.step.Rejected = perr.Error()
	}
	after, err := m.updateTx(context.WithoutCancel(ctx), c.ID, func(tx *image.Tx, c *Cycle) error {
		advance, err := settle(c, Synthesizing)
		if err != nil || (!advance && have) {
			return cmp.Or(err, errStale)
		}
		if !have {
			if err := record(tx, c, a); err != nil {
				return err
			}
		}
		if !advance {
			return nil
		}
		if perr != nil {
			m.refuse(c, Failure{Attempt: c.Attempt, Kind: FailureParse, Message: perr.Error()})
			return nil
		}
		if len(meth.Disputes) > 0 {
			m.dispute(c, meth.Disputes)
			return nil
		}
		c.Code = meth.Source
		c.Tests = mergeTests(c.Plan.Tests, meth.Tests)
		c.State = Validating
		return nil
	})
	if err == nil && !have {
		m.recorded(after, a.step)
	}
	return err
}

// refuse records a failed attempt and moves to the next one, or to
// FAILED when the attempts are spent.
// startSynthesis moves c to SYNTHESIZING at its first attempt, or, when
// a disputed plan was revised, after the attempts already made, with
// fresh attempts for the revised plan.
func (m *Machine) startSynthesis(c *Cycle) {
	next := 1
	for _, s := range c.stepsOf(StepSynthesize) {
		next = max(next, s.Attempt+1)
	}
	if next > 1 {
		c.MaxAttempts = next + m.opts.MaxAttempts - 1
	}
	c.State, c.Attempt = Synthesizing, next
}

// dispute sends the plan back to BRICK with ROBIN's objections to its
// tests, recorded on the plan's step (BRICK's next prompt quotes them
// beside the plan), once; a revised plan disputed again fails the cycle:
// the plan was contradictory.
func (m *Machine) dispute(c *Cycle, ds []Dispute) {
	text := disputeText(ds)
	revised := 0
	for _, s := range c.stepsOf(StepPlan) {
		if strings.HasPrefix(s.Rejected, disputePrefix) {
			revised++
		}
	}
	if revised >= maxPlanRevisions {
		c.FailedIn, c.State = Synthesizing, Failed
		c.Reason = "the plan was contradictory: ROBIN disputed the revised plan's tests too: " + clip(text, 1000)
		return
	}
	i := lastIndex(c.Steps, StepPlan)
	c.Steps[i].Rejected = disputePrefix + text
	c.PlanTries = len(c.stepsOf(StepPlan)) + 1
	c.State = Decomposing
}

func (m *Machine) refuse(c *Cycle, f Failure) {
	f.Message = clip(f.Message, maxFailure)
	c.Failures = append(c.Failures, f)
	if c.Attempt >= c.MaxAttempts {
		c.FailedIn, c.State = Synthesizing, Failed
		c.Reason = fmt.Sprintf("no method passed validation in %d attempts; the last failure (%s): %s", c.Attempt, f.Kind, clip(f.Message, 500))
		return
	}
	c.Attempt++
	c.State = Synthesizing
}

// validateStep audits and tests the candidate (deterministic: running it
// again after a crash costs no model call), then installs it, or sends
// the failure back to SYNTHESIZING with ALFRED's review of the candidate
// (review.go: the one model call of this state, recorded with the
// refusal).
func (m *Machine) validateStep(ctx context.Context, c *Cycle) error {
	failure, err := m.validate(ctx, c)
	if err != nil {
		return err
	}
	var replay *ReplayReport
	if failure == nil && c.Mission.Improve != nil {
		// Deterministic too: each sample runs in a rolled-back
		// transaction, and no model is asked.
		if failure, replay, err = m.replayGate(ctx, c); errors.Is(err, ErrBaseChanged) {
			return m.drop(ctx, c.ID, Validating, err)
		} else if err != nil {
			return err
		}
	}
	if failure != nil {
		return m.refuseReviewed(ctx, c, *failure)
	}
	_, err = m.updateTx(ctx, c.ID, func(tx *image.Tx, c *Cycle) error {
		if err := expect(c, Validating); err != nil {
			return err
		}
		if im := c.Mission.Improve; im != nil {
			im.Replay = replay
			if err := checkBase(tx, c); err != nil {
				// Changed between the replay and now: never installed
				// over the newer code.
				c.FailedIn, c.State, c.Reason = Validating, Failed, clip(err.Error(), maxFailure)
				im.Outcome = clip(outcomeDropped+err.Error(), maxFailure)
				return nil
			}
			if im.Hold {
				im.Outcome = OutcomeHeld
				c.State = Complete
				return nil
			}
			im.Outcome = OutcomeInstalled
		}
		if err := install(tx, c, m.opts.Now()); err != nil {
			return err
		}
		c.State = Complete
		return nil
	})
	// drive's next turn sees COMPLETE and answers the deliveries.
	return err
}
