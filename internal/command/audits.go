package command

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"batos/internal/heartbeat"
	"batos/internal/image"
	"batos/internal/store"
)

// MethodStatsReport is the method telemetry a command reports: one entry
// per method version counted.
type MethodStatsReport struct {
	Methods []heartbeat.MethodStats `json:"methods"`
}

// AuditView is an audit as commands report it; a list's entries leave
// out the facts and the answer.
type AuditView struct {
	heartbeat.Audit
	Tokens int64 `json:"tokens"`
}

func auditView(a *heartbeat.Audit, summary bool) AuditView {
	v := AuditView{Audit: *a, Tokens: a.Tokens()}
	if summary {
		v.Facts, v.Answer = nil, ""
	}
	return v
}

// heartbeatOf is the runtime's heartbeat, or why there is none.
func (l *Local) heartbeatOf() (*heartbeat.Heartbeat, error) {
	h := l.rt.Heartbeat()
	if h == nil {
		return nil, fmt.Errorf("%w: this image is open read-only, and audits write to it", store.ErrReadOnly)
	}
	return h, nil
}

func (l *Local) MethodStats(ctx context.Context, target string) (MethodStatsReport, error) {
	// What the VM counted since the last flush is in memory: saved first,
	// so the report is whole.
	if err := l.rt.FlushTelemetry(ctx); err != nil {
		return MethodStatsReport{}, fmt.Errorf("save telemetry: %w", err)
	}
	var r MethodStatsReport
	err := l.rt.DB().View(ctx, func(tx *image.Tx) error {
		var owner store.OID
		if target != "" {
			if len(target) > image.MaxSlotName {
				// No root name (a slot name) nor OID is this long.
				return fmt.Errorf("%w: the target is %d bytes long, and no root name or OID is", image.ErrNoTarget, len(target))
			}
			var err error
			if owner, err = tx.Resolve(target); err != nil {
				return notAnObject(tx, target, err)
			}
		}
		var err error
		r.Methods, err = heartbeat.Stats(tx, owner)
		return err
	})
	if r.Methods == nil {
		r.Methods = []heartbeat.MethodStats{}
	}
	return r, err
}

// notAnObject is err, the target not resolving, unless the target is a
// root name that holds something other than an object: then it says so,
// rather than that there is no such name.
func notAnObject(tx *image.Tx, target string, err error) error {
	root, rerr := tx.Root()
	if !errors.Is(err, image.ErrNoTarget) || rerr != nil {
		return err
	}
	if v, ok := root.Get(target); ok {
		return fmt.Errorf("%w: the root's %s holds %s, not an object", image.ErrNoTarget, target, clipRepr(v, 60))
	}
	return err
}

// clipRepr is v's repr, clipped to about n bytes.
func clipRepr(v image.Value, n int) string {
	r := image.Repr(v)
	if len(r) <= n {
		return r
	}
	for n > 0 && r[n]&0xC0 == 0x80 {
		n--
	}
	return r[:n] + "…"
}

func (l *Local) AuditRun(ctx context.Context) (AuditView, error) {
	h, err := l.heartbeatOf()
	if err != nil {
		return AuditView{}, err
	}
	if err := l.rt.FlushTelemetry(ctx); err != nil {
		return AuditView{}, fmt.Errorf("save telemetry: %w", err)
	}
	a, err := h.Audit(withTopic(ctx, TopicAudit), cmpUser(l.user))
	if err != nil {
		return AuditView{}, err
	}
	return auditView(a, false), nil
}

func cmpUser(u string) string {
	if u == "" {
		return "batos"
	}
	return u
}

func (l *Local) AuditList(ctx context.Context, limit int) ([]AuditView, error) {
	out := []AuditView{}
	err := l.rt.DB().View(ctx, func(tx *image.Tx) error {
		as, err := heartbeat.ListAudits(tx)
		if err != nil && len(as) == 0 {
			return err
		}
		for i := len(as) - 1; i >= 0 && (limit == 0 || len(out) < limit); i-- {
			out = append(out, auditView(as[i], true))
		}
		return nil
	})
	return out, err
}

func (l *Local) AuditShow(ctx context.Context, id int64) (AuditView, error) {
	var v AuditView
	err := l.rt.DB().View(ctx, func(tx *image.Tx) error {
		a, err := heartbeat.LoadAudit(tx, id)
		if err != nil {
			return err
		}
		v = auditView(a, false)
		return nil
	})
	return v, err
}

func (l *Local) ProposalList(ctx context.Context, all bool) ([]heartbeat.ProposalView, error) {
	var out []heartbeat.ProposalView
	err := l.rt.DB().View(ctx, func(tx *image.Tx) (err error) {
		out, err = heartbeat.Proposals(tx, all)
		return err
	})
	if out == nil {
		out = []heartbeat.ProposalView{}
	}
	return out, err
}

func (l *Local) ProposalShow(ctx context.Context, id string) (heartbeat.ProposalView, error) {
	if err := CheckProposalID(id); err != nil {
		return heartbeat.ProposalView{}, err
	}
	var v heartbeat.ProposalView
	err := l.rt.DB().View(ctx, func(tx *image.Tx) (err error) {
		v, err = heartbeat.ShowProposal(tx, id)
		return err
	})
	return v, err
}

func (l *Local) ProposalAccept(ctx context.Context, id string) (heartbeat.ProposalView, error) {
	if err := CheckProposalID(id); err != nil {
		return heartbeat.ProposalView{}, err
	}
	h, err := l.heartbeatOf()
	if err != nil {
		return heartbeat.ProposalView{}, err
	}
	return h.Accept(withTopic(ctx, TopicProposal), id, cmpUser(l.user))
}

func (l *Local) ProposalReject(ctx context.Context, id, reason string) (heartbeat.ProposalView, error) {
	if err := CheckProposalID(id); err != nil {
		return heartbeat.ProposalView{}, err
	}
	h, err := l.heartbeatOf()
	if err != nil {
		return heartbeat.ProposalView{}, err
	}
	return h.Reject(withTopic(ctx, TopicProposal), id, cmpUser(l.user), reason)
}

// CheckProposalID refuses, as a bad request, what is no proposal ID.
func CheckProposalID(id string) error {
	if strings.TrimSpace(id) == "" {
		return badRequest(`"proposal" is empty: give an ID like 3.2 (audit 3, proposal 2)`)
	}
	if _, _, err := heartbeat.ParseID(id); err != nil {
		return WithKind(ErrBadRequest, err)
	}
	return nil
}
