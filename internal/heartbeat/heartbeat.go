package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/mind"
	"batos/internal/vm"
)

// Mind is what audits need of the mind: ALFRED to ask, and the cycle
// machine improvements run on. An error (mind.ErrNoServer, say) means
// there is none yet.
type Mind func(ctx context.Context) (cycle.Asker, *cycle.Machine, error)

// Options configures a Heartbeat.
type Options struct {
	// Mind gives ALFRED and the cycles, connecting on demand.
	Mind Mind
	// Replayer judges improvements at acceptance (the cycles have their
	// own, the same).
	Replayer *Replayer
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger reports what the loop cannot return; default slog.Default().
	Logger *slog.Logger
}

// Heartbeat runs audits and acts on their proposals. It is safe for
// concurrent use.
type Heartbeat struct {
	db   *image.DB
	opts Options

	mu       sync.Mutex
	auditing bool           // an audit is being gathered or asked
	acting   map[int64]bool // audits whose proposals a goroutine advances
	base     context.Context
	stop     context.CancelFunc
	wg       sync.WaitGroup
	changed  chan struct{} // closed and replaced whenever a proposal moves
}

// New returns a heartbeat over db.
func New(db *image.DB, opts *Options) *Heartbeat {
	o := *opts
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// What the background work commits (settling proposals) is the
	// heartbeat's: its commit events say so.
	base, stop := context.WithCancel(image.WithTopic(context.Background(), "commit.heartbeat", nil))
	return &Heartbeat{db: db, opts: o, acting: map[int64]bool{}, base: base, stop: stop, changed: make(chan struct{})}
}

// ErrBusy is returned by Audit while another audit runs: never two at
// once.
var ErrBusy = errors.New("heartbeat: an audit is already running")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("heartbeat: closed")

// Close stops the goroutines acting on proposals (improvement cycles stop
// with the cycle machine, and resume with it) and waits for them.
func (h *Heartbeat) Close() {
	h.stop()
	h.wg.Wait()
}

// Resume marks audits a crash interrupted while ALFRED was asked as
// failed (the next one is scheduled already: none runs twice), and goes
// on acting on the proposals of answered audits.
func (h *Heartbeat) Resume(ctx context.Context) error {
	var answered []int64
	err := h.db.Update(ctx, func(tx *image.Tx) error {
		tx.SetUser("batos")
		tx.Note("heartbeat: resume")
		answered = answered[:0]
		as, err := ListAudits(tx)
		if err != nil {
			h.opts.Logger.Error("heartbeat: unreadable audits", "err", err)
		}
		for _, a := range as {
			switch {
			case a.State == AuditAsking:
				_, err := updateAudit(tx, a.ID, func(a *Audit) error {
					a.State, a.Error, a.Finished = AuditFailed, "interrupted: batos stopped while ALFRED was asked", h.opts.Now().UTC()
					return nil
				})
				if err != nil {
					return err
				}
			case a.State == AuditAnswered && unsettled(a):
				answered = append(answered, a.ID)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range answered {
		h.act(id)
	}
	return nil
}

// unsettled reports whether an audit has proposals still to act on or
// to watch.
func unsettled(a *Audit) bool {
	for _, p := range a.Proposals {
		if p.Status == ProposalPending || p.Status == ProposalInCycle {
			return true
		}
	}
	return false
}

// Audit runs one audit now: it gathers the facts, keeps them in a new
// audit object, asks ALFRED, keeps the answer, and then acts on the
// proposals in the background (Wait follows them). It returns the audit
// as answered. by names who asked for it ("heartbeat" or a user).
func (h *Heartbeat) Audit(ctx context.Context, by string) (*Audit, error) {
	h.mu.Lock()
	if h.auditing {
		h.mu.Unlock()
		return nil, ErrBusy
	}
	if h.base.Err() != nil {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	h.auditing = true
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.auditing = false
		h.mu.Unlock()
	}()
	asker, _, err := h.opts.Mind(ctx)
	if err != nil {
		if errors.Is(err, vm.ErrNoMind) {
			return nil, err // it says what could not be done
		}
		return nil, fmt.Errorf("an audit asks ALFRED: %w", err)
	}
	a, err := h.begin(ctx, by)
	if err != nil {
		return nil, err
	}
	prompt, err := auditPrompt(a.Facts)
	if err != nil {
		return nil, err
	}
	ans, askErr := asker.Ask(ctx, mind.Request{Persona: "ALFRED", Messages: prompt, Schema: auditSchema})
	// Kept even if the caller has gone: the answer is paid for.
	a, err = h.settleAnswer(context.WithoutCancel(ctx), a.ID, ans, askErr)
	if err != nil {
		return nil, err
	}
	if a.State == AuditAnswered {
		h.act(a.ID)
	}
	return a, nil
}

// begin gathers the facts and keeps them in a new audit.
func (h *Heartbeat) begin(ctx context.Context, by string) (*Audit, error) {
	var prev *Facts
	err := h.db.View(ctx, func(tx *image.Tx) error {
		// An audit edited past reading (ListAudits says which) only
		// leaves the growth since it uncounted: createAudit names any
		// other trouble with the audits object.
		as, _ := ListAudits(tx)
		for i := len(as) - 1; i >= 0; i-- {
			if as[i].Facts != nil {
				prev = as[i].Facts
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	facts, err := gather(ctx, h.db, h.opts.Now(), prev)
	if err != nil {
		return nil, fmt.Errorf("gather facts: %w", err)
	}
	a := &Audit{State: AuditAsking, By: by, Started: h.opts.Now().UTC(), Facts: facts}
	err = h.db.Update(ctx, func(tx *image.Tx) error {
		tx.SetUser("batos")
		s, err := LoadSettings(tx)
		if err != nil {
			return err
		}
		a.Policy = s.Policy
		a.Notes = s.Notes
		if err := createAudit(tx, a); err != nil {
			return err
		}
		tx.Note(fmt.Sprintf("audit %d: facts gathered, asking ALFRED", a.ID))
		return nil
	})
	return a, err
}

// settleAnswer keeps ALFRED's answer (or why there is none) in the
// audit, with its proposals resolved to methods, before any is acted on.
func (h *Heartbeat) settleAnswer(ctx context.Context, id int64, ans *mind.Answer, askErr error) (*Audit, error) {
	var out *Audit
	err := h.db.Update(ctx, func(tx *image.Tx) error {
		tx.SetUser("batos")
		a, err := updateAudit(tx, id, func(a *Audit) error {
			a.Finished = h.opts.Now().UTC()
			if ans != nil {
				a.Answer, a.Model = clip(ans.Text, 64<<10), ans.Call.Model
				a.PromptTokens, a.CompletionTokens = int64(ans.Call.PromptTokens), int64(ans.Call.CompletionTokens)
				a.LatencyMS = ms(ans.Call.Latency)
			}
			if askErr != nil {
				a.State, a.Error = AuditFailed, "ALFRED: "+askErr.Error()
				return nil
			}
			parsed, err := parseAnswer(ans.Text)
			if err != nil {
				a.State, a.Error = AuditFailed, err.Error()
				return nil
			}
			a.State, a.Summary, a.Findings = AuditAnswered, parsed.Summary, parsed.Findings
			open := openProposals(tx, id)
			for i, p := range parsed.Proposals {
				pr := Proposal{N: i + 1, Receiver: p.Receiver, Selector: p.Selector, Kind: p.Kind, Goal: clip(p.Goal, 1000), Status: ProposalPending}
				if why := resolveProposal(tx, &pr); why != "" {
					pr.Status, pr.Reason = ProposalRefused, why
				} else if other, ok := open[methodKey(pr.Owner, pr.Selector)]; ok {
					pr.Status, pr.Reason = ProposalRefused, fmt.Sprintf("proposal %s for this method is %s: one at a time", other.id, other.status)
				} else {
					open[methodKey(pr.Owner, pr.Selector)] = openProposal{ID(id, pr.N), "yet to be acted on"}
				}
				a.Proposals = append(a.Proposals, pr)
			}
			return nil
		})
		if err != nil {
			return err
		}
		tx.Note(fmt.Sprintf("audit %d: %s", id, a.State))
		out = a
		return nil
	})
	return out, err
}

// openProposal is a proposal not yet settled: its ID and status.
type openProposal struct{ id, status string }

// openProposals are the proposals of the audits but audit that are
// pending, in a cycle or awaiting approval, by method: a method gets one
// at a time, or a person away for a day would find a day of audits'
// improvement cycles spent on the same change.
func openProposals(tx *image.Tx, audit int64) map[string]openProposal {
	out := map[string]openProposal{}
	as, _ := ListAudits(tx) // one that cannot be read proposes nothing
	for _, a := range as {
		for _, p := range a.Proposals {
			switch {
			case a.ID == audit || p.Owner == 0:
			case p.Status == ProposalPending || p.Status == ProposalInCycle || p.Status == ProposalWaiting:
				out[methodKey(p.Owner, p.Selector)] = openProposal{ID(a.ID, p.N), p.Status}
			}
		}
	}
	return out
}

// Wait returns audit id once none of its proposals is pending or in a
// cycle, or ctx's error.
func (h *Heartbeat) Wait(ctx context.Context, id int64) (*Audit, error) {
	for {
		h.mu.Lock()
		changed := h.changed
		h.mu.Unlock()
		var a *Audit
		err := h.db.View(ctx, func(tx *image.Tx) (err error) {
			a, err = LoadAudit(tx, id)
			return err
		})
		if err != nil {
			return nil, err
		}
		if !unsettled(a) {
			return a, nil
		}
		select {
		case <-changed:
		case <-time.After(time.Second):
		case <-ctx.Done():
			return a, ctx.Err()
		}
	}
}

func (h *Heartbeat) broadcast() {
	h.mu.Lock()
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// Run audits the image every interval until ctx ends. The next due time
// is kept in the image (heartbeat.next_due): a restart neither resets
// nor repeats it. A due audit is claimed — the next one scheduled — in
// the transaction that sees it due, before it runs: an audit a crash
// interrupts is not run again, and two processes on one image never run
// the same one. A due audit waits for a mind if there is none yet.
func (h *Heartbeat) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(h.base, cancel)() // Close ends the loop too
	for ctx.Err() == nil {
		due, err := h.schedule(ctx, interval)
		if err != nil {
			if ctx.Err() == nil {
				h.opts.Logger.Error("heartbeat: schedule", "err", err)
			}
			if !sleep(ctx, time.Minute) {
				return
			}
			continue
		}
		if !sleep(ctx, time.Until(due)) {
			return
		}
		claimed, err := h.claim(ctx, due, interval)
		if err != nil || !claimed {
			if err != nil && ctx.Err() == nil {
				h.opts.Logger.Error("heartbeat: claim the due audit", "err", err)
			}
			continue
		}
		h.runDue(ctx)
	}
}

// runDue runs a claimed audit, once there is a mind.
func (h *Heartbeat) runDue(ctx context.Context) {
	for told := false; ; told = true {
		if _, _, err := h.opts.Mind(ctx); err == nil {
			break
		} else if !told {
			h.opts.Logger.Warn("heartbeat: an audit is due and there is no mind yet; it runs once one answers", "err", err)
		}
		if !sleep(ctx, 30*time.Second) {
			return
		}
	}
	a, err := h.Audit(ctx, "heartbeat")
	switch {
	case errors.Is(err, ErrBusy):
		h.opts.Logger.Info("heartbeat: an audit was due while another ran; the next is scheduled")
	case err != nil:
		if ctx.Err() == nil {
			h.opts.Logger.Error("heartbeat: audit", "err", err)
		}
	default:
		h.opts.Logger.Info("heartbeat: audit", "audit", a.ID, "state", a.State, "proposals", len(a.Proposals))
	}
}

// schedule returns when the next audit is due, scheduling it interval
// from now if none is, or if the one kept is further off than interval
// (the interval was shortened).
func (h *Heartbeat) schedule(ctx context.Context, interval time.Duration) (time.Time, error) {
	var due time.Time
	err := h.db.Update(ctx, func(tx *image.Tx) error {
		s, err := LoadSettings(tx)
		if err != nil {
			return err
		}
		now := h.opts.Now()
		due = s.NextDue
		if !due.IsZero() && !due.After(now.Add(interval)) {
			return nil
		}
		due = now.Add(interval)
		tx.SetUser("batos")
		tx.Note("heartbeat: schedule the next audit")
		return setNextDue(tx, due)
	})
	return due, err
}

// claim moves the schedule on from due, if no one did meanwhile, and
// reports whether this process is to run the audit due.
func (h *Heartbeat) claim(ctx context.Context, due time.Time, interval time.Duration) (bool, error) {
	claimed := false
	err := h.db.Update(ctx, func(tx *image.Tx) error {
		claimed = false
		s, err := LoadSettings(tx)
		if err != nil {
			return err
		}
		if !s.NextDue.Equal(due) {
			return nil // rescheduled, or claimed by another process
		}
		claimed = true
		tx.SetUser("batos")
		tx.Note("heartbeat: an audit is due")
		return setNextDue(tx, h.opts.Now().Add(interval))
	})
	return claimed, err
}

func setNextDue(tx *image.Tx, t time.Time) error {
	o, err := heartbeatObject(tx)
	if err != nil {
		return err
	}
	return o.Set("next_due", image.String(t.UTC().Format(time.RFC3339Nano)))
}
