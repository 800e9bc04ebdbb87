package command_test

import (
	"strings"
	"testing"

	"batos/internal/command"
	"batos/internal/uvm/uvmtest"
)

// TestHostileHeartbeatCommands: the heartbeat's commands answer what is
// no target, no audit and no proposal ID with the kind the protocol
// gives and a message of a sensible size; none needs a mind to refuse.
func TestHostileHeartbeatCommands(t *testing.T) {
	u := uvmtest.Open(t, nil)
	if _, err := u.Eval(t.Context(), "root.five = 5"); err != nil {
		t.Fatal(err)
	}
	svc := command.NewLocal(u, "tester")
	ctx := t.Context()
	for _, target := range []string{"five", "nowhere", "oid:0", "oid:99999", "-1", strings.Repeat("x", 1<<20), "\xff\xfe", "calc.average"} {
		_, err := svc.MethodStats(ctx, target)
		if command.KindOf(err) != command.KindNotFound || len(err.Error()) > 1000 {
			t.Errorf("method stats %.20q: %.200v (%s), want a short not_found", target, err, command.KindOf(err))
		}
	}
	if _, err := svc.MethodStats(ctx, "five"); err == nil || !strings.Contains(err.Error(), "holds 5, not an object") {
		t.Errorf("method stats of a root name holding 5: %v", err)
	}
	if r, err := svc.MethodStats(ctx, "root"); err != nil || r.Methods == nil {
		t.Errorf("method stats root: %+v, %v", r, err)
	}
	for _, id := range []int64{0, -1, 1 << 62} {
		if _, err := svc.AuditShow(ctx, id); command.KindOf(err) != command.KindNotFound {
			t.Errorf("audit show %d: %v (%s), want not_found", id, err, command.KindOf(err))
		}
	}
	if as, err := svc.AuditList(ctx, -1); err != nil || len(as) != 0 {
		t.Errorf("audit list -1: %v, %v", as, err)
	}
	for _, id := range []string{"", " ", "1.", ".1", "1.1.1", "-1.2", "1e3.1", "0.1", "1.0", "1.-1", "1.2147483648",
		"9223372036854775808.1", strings.Repeat("9", 1<<20), "1\x00.1", "\xff.1", "１.１"} {
		_, errShow := svc.ProposalShow(ctx, id)
		_, errAccept := svc.ProposalAccept(ctx, id)
		_, errReject := svc.ProposalReject(ctx, id, "")
		for what, err := range map[string]error{"show": errShow, "accept": errAccept, "reject": errReject} {
			if command.KindOf(err) != command.KindBadRequest || len(err.Error()) > 1000 {
				t.Errorf("proposal %s %.20q: %.200v (%s), want a short bad_request", what, id, err, command.KindOf(err))
			}
		}
	}
	if _, err := svc.AuditRun(ctx); command.KindOf(err) != command.KindNoMind {
		t.Errorf("audit without a mind: %v, want no_mind", err)
	}
}
