package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"time"

	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/store"
)

// ProposalView is a proposal with the audit it belongs to.
type ProposalView struct {
	Proposal
	ID    string `json:"id"`
	Audit int64  `json:"audit"`
	// Method names the method: "calc.average".
	Method string `json:"method"`
	// Cycle, for Show, is the improvement cycle's code and replay.
	Code   string              `json:"code,omitempty"`
	Base   string              `json:"base_source,omitempty"`
	Replay *cycle.ReplayReport `json:"replay,omitempty"`
	// Failures are the cycle's refused attempts, with the replay diffs
	// that refused them.
	Failures []cycle.Failure `json:"failures,omitempty"`
}

// Proposals lists the proposals of every audit, newest first; all
// false keeps those awaiting a decision (or still in a cycle).
func Proposals(tx *image.Tx, all bool) ([]ProposalView, error) {
	as, err := ListAudits(tx)
	if err != nil && len(as) == 0 {
		return nil, err
	}
	names := rootNames(tx)
	var out []ProposalView
	for i := len(as) - 1; i >= 0; i-- {
		a := as[i]
		for _, p := range a.Proposals {
			if !all && p.Status != ProposalWaiting && p.Status != ProposalInCycle && p.Status != ProposalPending {
				continue
			}
			out = append(out, view(a, p, names))
		}
	}
	return out, nil
}

func view(a *Audit, p Proposal, names map[store.OID]string) ProposalView {
	label := p.Receiver
	if n, ok := names[p.Owner]; ok {
		label = n
	}
	return ProposalView{Proposal: p, ID: ID(a.ID, p.N), Audit: a.ID, Method: label + "." + p.Selector}
}

// ShowProposal reads one proposal with its cycle's candidate and replay.
func ShowProposal(tx *image.Tx, id string) (ProposalView, error) {
	a, p, err := findProposal(tx, id)
	if err != nil {
		return ProposalView{}, err
	}
	v := view(a, *p, rootNames(tx))
	if p.Cycle != 0 {
		if c, err := cycle.Load(tx, p.Cycle); err == nil {
			v.Code = c.Code
			v.Failures = c.Failures
			if im := c.Mission.Improve; im != nil {
				v.Base, v.Replay = im.Base, im.Replay
			}
		}
	}
	return v, nil
}

func findProposal(tx *image.Tx, id string) (*Audit, *Proposal, error) {
	aid, n, err := ParseID(id)
	if err != nil {
		return nil, nil, err
	}
	a, err := LoadAudit(tx, aid)
	if errors.Is(err, ErrNoAudit) {
		return nil, nil, fmt.Errorf("%w: %s (there is no audit %d)", ErrNoProposal, id, aid)
	} else if err != nil {
		return nil, nil, err
	}
	if n > len(a.Proposals) {
		return nil, nil, fmt.Errorf("%w: %s (audit %d made %d proposals)", ErrNoProposal, id, aid, len(a.Proposals))
	}
	return a, &a.Proposals[n-1], nil
}

// ErrDecided is returned for a decision on a proposal not awaiting one.
var ErrDecided = errors.New("heartbeat: the proposal awaits no decision")

// ErrReplay is returned when a replacement accepted by a person no
// longer passes the replay at the current state.
var ErrReplay = errors.New("heartbeat: the replacement no longer passes the regression replay")

// Accept installs a proposal awaiting approval: the retirement is
// marked, or the improvement cycle's replacement is replayed again at
// the current state and installed with its provenance — unless the
// method changed since (the proposal is dropped) or the replay now
// fails (it is rejected, with the diffs).
func (h *Heartbeat) Accept(ctx context.Context, id, by string) (ProposalView, error) {
	var c *cycle.Cycle
	err := h.db.View(ctx, func(tx *image.Tx) error {
		_, p, err := findProposal(tx, id)
		if err != nil {
			return err
		}
		if p.Status != ProposalWaiting {
			return fmt.Errorf("%w: %s is %s", ErrDecided, id, p.Status)
		}
		if p.Kind == "retire" {
			return nil
		}
		if p.Cycle <= 0 {
			return fmt.Errorf("%w: %s awaits approval but names no improvement cycle whose replacement to install (was it edited?)", ErrDecided, id)
		}
		c, err = cycle.Load(tx, p.Cycle)
		if errors.Is(err, cycle.ErrNoCycle) {
			return fmt.Errorf("%w: %s awaits approval but its cycle %d is gone: %w", ErrDecided, id, p.Cycle, err)
		}
		return err
	})
	if err != nil {
		return ProposalView{}, err
	}
	var refusal error
	if c != nil {
		rep, err := h.opts.Replayer.Replay(ctx, c)
		switch {
		case errors.Is(err, cycle.ErrBaseChanged):
			refusal = err
		case err != nil:
			return ProposalView{}, err
		case !rep.Passed:
			refusal = fmt.Errorf("%w: %s", ErrReplay, rep.Text())
		}
	}
	now := h.opts.Now()
	var out ProposalView
	err = h.db.Update(ctx, func(tx *image.Tx) error {
		tx.SetUser(by)
		a, p, err := findProposal(tx, id)
		if err != nil {
			return err
		}
		if p.Status != ProposalWaiting {
			return fmt.Errorf("%w: %s is %s", ErrDecided, id, p.Status)
		}
		p.DecidedBy, p.Decided = by, now.UTC()
		switch {
		case refusal != nil && errors.Is(refusal, cycle.ErrBaseChanged):
			p.Status, p.Reason = ProposalDropped, refusal.Error()
		case refusal != nil:
			p.Status, p.Reason = ProposalRejected, refusal.Error()
		case p.Kind == "retire":
			owner, err := tx.Object(p.Owner)
			if err != nil {
				return err
			}
			if Version(cycle.CurrentSource(owner, p.Selector)) != p.Base {
				p.Status, p.Reason = ProposalDropped, "the method changed since the audit: the proposal was for other code"
				break
			}
			if err := deprecate(tx, owner, p.Selector, a.ID, p, now); err != nil {
				return err
			}
			p.Status, p.Reason = ProposalAccepted, "marked deprecated; it still answers"
		default:
			c, err := cycle.Load(tx, p.Cycle)
			if err != nil {
				return err
			}
			if err := cycle.InstallImprovement(tx, c, now); errors.Is(err, cycle.ErrBaseChanged) {
				p.Status, p.Reason = ProposalDropped, err.Error()
				break
			} else if err != nil {
				return err
			}
			if err := cycle.SetOutcome(tx, c.ID, "installed: accepted by "+by); err != nil {
				return err
			}
			p.Status, p.Reason = ProposalAccepted, fmt.Sprintf("cycle %d's replacement installed; batos method revert undoes it", c.ID)
		}
		// A replacement the replay now refuses cools the method down; a
		// proposal dropped because the method changed does not: the newer
		// code may deserve a proposal of its own.
		if p.Status == ProposalRejected {
			if err := h.coolDownIn(tx, p, now); err != nil {
				return err
			}
		}
		tx.Note(fmt.Sprintf("proposal %s: %s", id, p.Status))
		out = view(a, *p, rootNames(tx))
		return h.saveProposal(tx, a, p)
	})
	if err != nil {
		return ProposalView{}, err
	}
	h.broadcast()
	if out.Status != ProposalAccepted {
		return out, fmt.Errorf("proposal %s %s: %s", id, out.Status, out.Reason)
	}
	return out, nil
}

func (h *Heartbeat) coolDownIn(tx *image.Tx, p *Proposal, now time.Time) error {
	s, err := LoadSettings(tx)
	if err != nil {
		return err
	}
	return coolDown(tx, methodKey(p.Owner, p.Selector), now, s.Cooldown)
}

// Reject refuses a proposal awaiting approval (its method cools down),
// saying why if reason is given.
func (h *Heartbeat) Reject(ctx context.Context, id, by, reason string) (ProposalView, error) {
	now := h.opts.Now()
	var out ProposalView
	err := h.db.Update(ctx, func(tx *image.Tx) error {
		tx.SetUser(by)
		a, p, err := findProposal(tx, id)
		if err != nil {
			return err
		}
		if p.Status != ProposalWaiting {
			return fmt.Errorf("%w: %s is %s", ErrDecided, id, p.Status)
		}
		p.Status, p.DecidedBy, p.Decided = ProposalRejected, by, now.UTC()
		p.Reason = "rejected by " + by
		if reason != "" {
			p.Reason += ": " + clip(reason, 1000)
		}
		if p.Cycle != 0 {
			// A cycle that is gone, or is no improvement (the proposal was
			// edited), has no outcome to keep: the rejection stands alone.
			err := cycle.SetOutcome(tx, p.Cycle, p.Reason)
			if err != nil && !errors.Is(err, cycle.ErrNoCycle) && !errors.Is(err, cycle.ErrState) {
				return err
			}
		}
		if err := h.coolDownIn(tx, p, now); err != nil {
			return err
		}
		tx.Note(fmt.Sprintf("proposal %s: rejected", id))
		out = view(a, *p, rootNames(tx))
		return h.saveProposal(tx, a, p)
	})
	if err == nil {
		h.broadcast()
	}
	return out, err
}
