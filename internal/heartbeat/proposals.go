package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
)

// cycleMessage is the message an improvement cycle is about: the method
// itself, sent to its owner.
func cycleMessage(owner store.OID, selector string) vm.Message {
	return vm.Message{Receiver: owner, Selector: selector}
}

// act advances audit id's proposals on a goroutine of its own, unless
// one does already: one at a time, each improvement cycle to its end
// before the next starts, so the audit's budget is checked against what
// was really spent.
func (h *Heartbeat) act(id int64) {
	h.mu.Lock()
	if h.acting[id] || h.base.Err() != nil {
		h.mu.Unlock()
		return
	}
	h.acting[id] = true
	h.wg.Add(1)
	h.mu.Unlock()
	go func() {
		defer func() {
			h.mu.Lock()
			delete(h.acting, id)
			h.mu.Unlock()
			h.wg.Done()
		}()
		ctx := h.base
		for ctx.Err() == nil {
			_, machine, err := h.opts.Mind(ctx)
			if err != nil {
				// No mind yet (an on-demand one did not answer): look
				// again later; the proposals wait where they are.
				if !sleep(ctx, 5*time.Second) {
					return
				}
				continue
			}
			waitFor, done, err := h.advance(ctx, id, machine)
			h.broadcast()
			switch {
			case err != nil:
				if ctx.Err() == nil {
					h.opts.Logger.Error("heartbeat: act on proposals", "audit", id, "err", err)
				}
				return
			case done:
				return
			case waitFor != 0:
				if _, err := machine.Wait(ctx, waitFor); err != nil && ctx.Err() == nil && !errors.Is(err, cycle.ErrClosed) {
					h.opts.Logger.Error("heartbeat: follow cycle", "audit", id, "cycle", waitFor, "err", err)
					return
				} else if err != nil {
					return
				}
			}
		}
	}()
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// advance moves audit id's proposals one step: it settles a proposal
// whose cycle ended, or acts on the next pending one. It returns the
// cycle to wait for, or done when nothing is left to do.
func (h *Heartbeat) advance(ctx context.Context, id int64, machine *cycle.Machine) (waitFor int64, done bool, err error) {
	var start *cycle.Mission
	var startN int
	err = h.db.Update(ctx, func(tx *image.Tx) error {
		tx.SetUser("batos")
		start, startN, waitFor, done = nil, 0, 0, false
		a, err := LoadAudit(tx, id)
		if err != nil {
			return err
		}
		for i := range a.Proposals {
			p := &a.Proposals[i]
			if p.Status != ProposalInCycle {
				continue
			}
			c, err := cycle.Load(tx, p.Cycle)
			if err != nil {
				p.Status, p.Reason = ProposalDropped, fmt.Sprintf("its cycle %d cannot be read: %v", p.Cycle, err)
				return h.saveProposal(tx, a, p)
			}
			if !c.State.Terminal() {
				waitFor = c.ID
				return nil
			}
			h.settleCycle(tx, a, p, c)
			return h.saveProposal(tx, a, p)
		}
		for i := range a.Proposals {
			p := &a.Proposals[i]
			if p.Status != ProposalPending {
				continue
			}
			mission, err := h.decide(tx, a, p)
			if err != nil {
				return err
			}
			if mission != nil {
				start, startN = mission, p.N
				return nil // started below, outside this transaction
			}
			return h.saveProposal(tx, a, p)
		}
		done = true
		return nil
	})
	if err != nil || start == nil {
		return waitFor, done, err
	}
	cid, joined, serr := machine.Start(ctx, *start, false)
	err = h.db.Update(context.WithoutCancel(ctx), func(tx *image.Tx) error {
		tx.SetUser("batos")
		_, err := updateAudit(tx, id, func(a *Audit) error {
			if startN > len(a.Proposals) {
				return nil // the proposals were edited away meanwhile; the cycle runs unfollowed
			}
			p := &a.Proposals[startN-1]
			if p.Status != ProposalPending {
				return nil
			}
			switch {
			case serr != nil:
				p.Status, p.Reason = ProposalRefused, "no improvement cycle could start: "+serr.Error()
			case joined:
				// Opened for the method since decide looked (another
				// audit's improvement, or a cycle learning it): that
				// cycle is not this proposal's and settles nothing here.
				p.Status, p.Reason = ProposalRefused, fmt.Sprintf("cycle %d was already open for this method", cid)
			default:
				p.Status, p.Cycle = ProposalInCycle, cid
			}
			return nil
		})
		tx.Note(fmt.Sprintf("audit %d: proposal %d", id, startN))
		return err
	})
	return 0, false, err
}

// saveProposal writes proposal p of audit a back.
func (h *Heartbeat) saveProposal(tx *image.Tx, a *Audit, p *Proposal) error {
	_, err := updateAudit(tx, a.ID, func(stored *Audit) error {
		stored.Proposals[p.N-1] = *p
		return nil
	})
	tx.Note(fmt.Sprintf("audit %d: proposal %d %s", a.ID, p.N, p.Status))
	return err
}

// settleCycle records what a proposal's finished cycle came to; a
// rejection by a gate cools the method down.
func (h *Heartbeat) settleCycle(tx *image.Tx, a *Audit, p *Proposal, c *cycle.Cycle) {
	p.Tokens = cycleTokens(c)
	im := c.Mission.Improve
	if im == nil {
		im = &cycle.Improvement{} // edited from the REPL: judged by its state alone
	}
	switch {
	case c.State == cycle.Complete && im.Outcome == cycle.OutcomeInstalled:
		p.Status, p.Reason = ProposalApplied, fmt.Sprintf("installed by cycle %d (policy auto); batos method revert undoes it", c.ID)
	case c.State == cycle.Complete && im.Outcome == cycle.OutcomeHeld:
		p.Status, p.Reason = ProposalWaiting, fmt.Sprintf("cycle %d's replacement passed every gate", c.ID)
	case c.State == cycle.Complete:
		// Not an improvement's completion (the cycle was edited, or is
		// not the improvement the proposal started): nothing to accept.
		p.Status, p.Reason = ProposalDropped, fmt.Sprintf("cycle %d completed without a replacement held for approval (outcome %q)", c.ID, im.Outcome)
	case im.Dropped():
		p.Status, p.Reason = ProposalDropped, c.Reason
	default:
		p.Status, p.Reason = ProposalRejected, fmt.Sprintf("cycle %d failed: %s", c.ID, c.Reason)
		s, _ := LoadSettings(tx)
		if err := coolDown(tx, methodKey(p.Owner, p.Selector), h.opts.Now(), s.Cooldown); err != nil {
			h.opts.Logger.Error("heartbeat: cool-down", "method", methodKey(p.Owner, p.Selector), "err", err)
		}
	}
}

// awaited refuses, with cycle.ErrUnwanted, an improvement cycle its
// proposal no longer waits for: the proposal was settled when the cycle
// failed (rejected, its method cooling down, or dropped), and a retry
// of the cycle cannot bring it back — its candidate would be held for an
// approval no proposal asks for, or installed against a rejection. A
// cycle whose audit or proposal cannot be found has nothing to agree
// with and goes on.
func awaited(tx *image.Tx, c *cycle.Cycle) error {
	im := c.Mission.Improve
	a, err := LoadAudit(tx, im.Audit)
	if err != nil || im.Proposal < 1 || im.Proposal > len(a.Proposals) {
		return nil
	}
	p := a.Proposals[im.Proposal-1]
	switch {
	case p.Status == ProposalInCycle && p.Cycle == c.ID:
	case p.Status == ProposalPending && p.Cycle == 0:
		// Started, and not yet recorded as in this cycle.
	case p.Cycle == c.ID:
		return fmt.Errorf("%w: proposal %s was settled when cycle %d ended (%s: %s); a retry cannot bring it back, the next audit may propose it again",
			cycle.ErrUnwanted, ID(a.ID, p.N), c.ID, p.Status, clip(p.Reason, 300))
	default:
		return fmt.Errorf("%w: proposal %s is %s, not in cycle %d", cycle.ErrUnwanted, ID(a.ID, p.N), p.Status, c.ID)
	}
	return nil
}

// cycleTokens is what a cycle's recorded answers cost.
func cycleTokens(c *cycle.Cycle) int64 {
	var n int64
	for _, s := range c.Steps {
		n += int64(s.PromptTokens + s.CompletionTokens)
	}
	return n
}

// decide acts on a pending proposal in tx: it is refused, deferred,
// dropped, held or applied (retire), or — returned — an improvement
// mission to start.
func (h *Heartbeat) decide(tx *image.Tx, a *Audit, p *Proposal) (*cycle.Mission, error) {
	if c := startedFor(tx, a.ID, p.N); c != nil {
		// Started before a crash kept the proposal from saying so: it
		// is this proposal's cycle, followed like any other (starting
		// another would pay twice, and the first would go unsettled).
		p.Status, p.Cycle, p.Reason = ProposalInCycle, c.ID, ""
		return nil, nil
	}
	s, err := LoadSettings(tx)
	if err != nil {
		return nil, err
	}
	now := h.opts.Now()
	owner, err := tx.Object(p.Owner)
	if err != nil {
		p.Status, p.Reason = ProposalDropped, fmt.Sprintf("its method's owner %s cannot be read: %v", p.Owner, err)
		return nil, nil
	}
	source := cycle.CurrentSource(owner, p.Selector)
	if source == "" || Version(source) != p.Base {
		p.Status, p.Reason = ProposalDropped, "the method changed since the audit: the proposal was for other code"
		return nil, nil
	}
	key := methodKey(p.Owner, p.Selector)
	hb, err := heartbeatObject(tx)
	if err != nil {
		return nil, err
	}
	if until := coolingUntil(hb, key); until.After(now) {
		p.Status, p.Reason = ProposalRefused, fmt.Sprintf("the method cools down until %s after a rejected proposal", until.UTC().Format(time.RFC3339))
		return nil, nil
	}
	if p.Kind == "retire" {
		if s.Policy == PolicyAuto {
			if err := deprecate(tx, owner, p.Selector, a.ID, p, now); err != nil {
				return nil, err
			}
			p.Status, p.Reason = ProposalApplied, "marked deprecated (policy auto); it still answers"
		} else {
			p.Status, p.Reason = ProposalWaiting, "retiring marks the method deprecated; it still answers"
		}
		return nil, nil
	}
	// A retirement costs no tokens; an improvement cycle does.
	if spent := a.Tokens(); spent >= s.AuditBudget {
		p.Status, p.Reason = ProposalDeferred, fmt.Sprintf("the audit's budget of %d tokens is spent (%d)", s.AuditBudget, spent)
		return nil, nil
	}
	if spent, err := daySpent(tx, now); err != nil {
		return nil, err
	} else if spent >= s.DayBudget {
		p.Status, p.Reason = ProposalDeferred, fmt.Sprintf("the day's budget of %d tokens is spent (%d in the last 24 hours)", s.DayBudget, spent)
		return nil, nil
	}
	if other, ok := improving(tx, p.Owner, p.Selector); ok {
		p.Status, p.Reason = ProposalRefused, fmt.Sprintf("cycle %d already improves this method", other)
		return nil, nil
	}
	samples, err := Samples(tx, p.Owner, p.Selector)
	if err != nil {
		return nil, err
	}
	// What the replay would refuse whatever the candidate is, refused
	// before a model is paid for one.
	switch {
	case len(samples) == 0:
		p.Status, p.Reason = ProposalRefused, "the method has no recorded calls: no replay could show a replacement does no harm (call it first, then audit again)"
		return nil, nil
	case p.Kind == cycle.ImproveFix && !slices.ContainsFunc(samples, func(s vm.Sample) bool { return s.ErrorKind != "" }):
		p.Status, p.Reason = ProposalRefused, "a fix mends failing calls, and none of the method's recorded calls failed: nothing would show what it fixes"
		return nil, nil
	}
	return &cycle.Mission{
		Message: cycleMessage(p.Owner, p.Selector),
		Brief:   p.Goal,
		Improve: &cycle.Improvement{
			Kind: p.Kind, Goal: p.Goal, Base: source, Audit: a.ID, Proposal: p.N,
			Evidence: Evidence(p.Selector, samples, 12), Hold: s.Policy != PolicyAuto,
		},
	}, nil
}

// startedFor is the improvement cycle started for proposal n of audit,
// if there is one.
func startedFor(tx *image.Tx, audit int64, n int) *cycle.Cycle {
	cs, _ := cycle.List(tx)
	for _, c := range cs {
		if im := c.Mission.Improve; im != nil && im.Audit == audit && im.Proposal == n {
			return c
		}
	}
	return nil
}

// improving reports the unfinished improvement cycle of a method, if
// any: at most one runs per method.
func improving(tx *image.Tx, owner store.OID, selector string) (int64, bool) {
	cs, _ := cycle.List(tx)
	for _, c := range cs {
		if !c.State.Terminal() && c.Mission.Improve != nil && c.Mission.Receiver == owner && c.Mission.Selector == selector {
			return c.ID, true
		}
	}
	return 0, false
}

// daySpent is what the audits started in the 24 hours before now spent.
func daySpent(tx *image.Tx, now time.Time) (int64, error) {
	as, err := ListAudits(tx)
	if err != nil && len(as) == 0 {
		return 0, err
	}
	var n int64
	for _, a := range as {
		if a.Started.After(now.Add(-24 * time.Hour)) {
			n += a.Tokens()
		}
	}
	return n, nil
}

// deprecate marks a method deprecated, in tx: it keeps answering (and
// being counted); inspect and method stats show the mark.
func deprecate(tx *image.Tx, owner *image.Object, selector string, audit int64, p *Proposal, now time.Time) error {
	v, _ := owner.Get(selector)
	m, ok := v.(*image.Method)
	if !ok {
		return fmt.Errorf("%s.%s holds no method", owner.OID(), selector)
	}
	meta := &image.Dict{}
	for k, mv := range m.Meta.All() {
		if err := meta.Set(k, mv); err != nil {
			return err
		}
	}
	mark, err := dictOf("audit", image.Int(audit), "proposal", image.Int(int64(p.N)), "reason", image.String(p.Goal),
		"at", image.String(now.UTC().Format(time.RFC3339Nano)))
	if err != nil {
		return err
	}
	if err := meta.Set(image.String("deprecated"), mark); err != nil {
		return err
	}
	return owner.Set(selector, &image.Method{Source: m.Source, Meta: meta})
}
