package protocol

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"batos/internal/command"
	"batos/internal/heartbeat"
)

// auditHandlers serve the heartbeat's commands: method telemetry,
// audits and proposals.
var auditHandlers = map[string]handler{
	"method_stats": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		target, err := stringArg(req, "target", false)
		if err != nil {
			return nil, err
		}
		res, err := svc.MethodStats(ctx, target)
		if err != nil {
			return nil, err
		}
		return plainView(res)
	},
	"audit_run": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		res, err := svc.AuditRun(ctx)
		if err != nil {
			return nil, err
		}
		return plainView(res)
	},
	"audit_list": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		limit, err := intArg(req, "limit", 0)
		if err != nil {
			return nil, err
		}
		res, err := svc.AuditList(ctx, limit)
		if err != nil {
			return nil, err
		}
		return plainView(auditList{Audits: res})
	},
	"audit_show": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		id, err := auditArg(req, "audit")
		if err != nil {
			return nil, err
		}
		res, err := svc.AuditShow(ctx, id)
		if err != nil {
			return nil, err
		}
		return plainView(res)
	},
	"proposal_list": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		all, err := boolArg(req, "all")
		if err != nil {
			return nil, err
		}
		res, err := svc.ProposalList(ctx, all)
		if err != nil {
			return nil, err
		}
		return plainView(proposalList{Proposals: res})
	},
	"proposal_show":   proposalHandler(command.Service.ProposalShow),
	"proposal_accept": proposalHandler(command.Service.ProposalAccept),
	"proposal_reject": func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		id, err := proposalArg(req)
		if err != nil {
			return nil, err
		}
		reason, err := textArg(req, "reason", false)
		if err != nil {
			return nil, err
		}
		res, err := svc.ProposalReject(ctx, id, reason)
		if err != nil {
			return nil, err
		}
		return plainView(res)
	},
}

// auditList and proposalList are the lists' wire forms: a map, as
// every result is.
type auditList struct {
	Audits []command.AuditView `json:"audits"`
}

type proposalList struct {
	Proposals []heartbeat.ProposalView `json:"proposals"`
}

func proposalHandler(fn func(command.Service, context.Context, string) (heartbeat.ProposalView, error)) handler {
	return func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		id, err := proposalArg(req)
		if err != nil {
			return nil, err
		}
		res, err := fn(svc, ctx, id)
		if err != nil {
			return nil, err
		}
		return plainView(res)
	}
}

// auditArg reads an audit ID: a positive integer, or one written as a
// string ("3", or "a3" as the audits object names it). A cycle's ID
// ("c3") is none.
func auditArg(req map[string]any, name string) (int64, error) {
	v, ok := req[name]
	if !ok || v == nil {
		return 0, fmt.Errorf("%w: %q is required", command.ErrBadRequest, name)
	}
	switch x := v.(type) {
	case int64:
		if x > 0 {
			return x, nil
		}
	case string:
		digits := strings.TrimPrefix(strings.TrimSpace(x), "a")
		if n, err := strconv.ParseInt(digits, 10, 64); err == nil && n > 0 && digits[0] != '+' {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%w: %q must be an audit ID (a positive integer, or a string like \"3\"), got %s", command.ErrBadRequest, name, argText(v))
}

func proposalArg(req map[string]any) (string, error) {
	id, err := textArg(req, "proposal", true)
	if err != nil {
		return "", err
	}
	return id, command.CheckProposalID(id)
}

func (r *Remote) MethodStats(ctx context.Context, target string) (command.MethodStatsReport, error) {
	args := map[string]any{}
	if target != "" {
		args["target"] = target
	}
	res, err := r.call(ctx, "method_stats", args)
	if err != nil {
		return command.MethodStatsReport{}, err
	}
	return viewOf[command.MethodStatsReport](res, "method stats")
}

// AuditRun waits as long as a model call may take.
func (r *Remote) AuditRun(ctx context.Context) (command.AuditView, error) {
	res, err := r.callFor(ctx, command.DefaultLearnTimeout+remoteTimeout, "audit_run", nil)
	if err != nil {
		return command.AuditView{}, err
	}
	return viewOf[command.AuditView](res, "audit")
}

func (r *Remote) AuditList(ctx context.Context, limit int) ([]command.AuditView, error) {
	res, err := r.call(ctx, "audit_list", map[string]any{"limit": int64(limit)})
	if err != nil {
		return nil, err
	}
	l, err := viewOf[auditList](res, "audit list")
	return l.Audits, err
}

func (r *Remote) AuditShow(ctx context.Context, id int64) (command.AuditView, error) {
	res, err := r.call(ctx, "audit_show", map[string]any{"audit": id})
	if err != nil {
		return command.AuditView{}, err
	}
	return viewOf[command.AuditView](res, "audit")
}

func (r *Remote) ProposalList(ctx context.Context, all bool) ([]heartbeat.ProposalView, error) {
	res, err := r.call(ctx, "proposal_list", map[string]any{"all": all})
	if err != nil {
		return nil, err
	}
	l, err := viewOf[proposalList](res, "proposal list")
	return l.Proposals, err
}

func (r *Remote) ProposalShow(ctx context.Context, id string) (heartbeat.ProposalView, error) {
	return r.proposalCall(ctx, remoteTimeout, "proposal_show", id, nil)
}

// ProposalAccept waits as long as a replay of many samples may take.
func (r *Remote) ProposalAccept(ctx context.Context, id string) (heartbeat.ProposalView, error) {
	return r.proposalCall(ctx, packTimeout, "proposal_accept", id, nil)
}

func (r *Remote) ProposalReject(ctx context.Context, id, reason string) (heartbeat.ProposalView, error) {
	var extra map[string]any
	if reason != "" {
		extra = map[string]any{"reason": reason}
	}
	return r.proposalCall(ctx, remoteTimeout, "proposal_reject", id, extra)
}

func (r *Remote) proposalCall(ctx context.Context, timeout time.Duration, cmd, id string, extra map[string]any) (heartbeat.ProposalView, error) {
	if err := command.CheckProposalID(id); err != nil {
		return heartbeat.ProposalView{}, refused(err)
	}
	args := map[string]any{"proposal": id}
	for k, v := range extra {
		args[k] = v
	}
	res, err := r.callFor(ctx, timeout, cmd, args)
	if err != nil {
		return heartbeat.ProposalView{}, err
	}
	return viewOf[heartbeat.ProposalView](res, "proposal")
}

func init() {
	for name, h := range auditHandlers {
		commands[name] = h
	}
}
