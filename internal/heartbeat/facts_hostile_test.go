package heartbeat_test

import (
	"strings"
	"testing"

	"batos/internal/heartbeat"
)

// TestHostileFactsSkipWhatTheyCannotRead: an audit gathers what it can;
// a persona or cycle edited past reading is named among the facts, not a
// reason to audit nothing.
func TestHostileFactsSkipWhatTheyCannotRead(t *testing.T) {
	for _, tc := range []struct{ code, unreadable string }{
		{`personas.BABS.usage = "x"`, "BABS"},
		{`cycles.c1 = 5`, ""},
		{`root.cycles = 5`, "cycles"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			u, l := openHostile(t, retireAverage)
			evalOK(t, u, tc.code)
			a := runAudit(t, u, l)
			if a.State != heartbeat.AuditAnswered || a.Proposals[0].Status != heartbeat.ProposalWaiting {
				t.Fatalf("audit: %s %q", a.State, a.Error)
			}
			if got := strings.Join(a.Facts.Unreadable, "\n"); !strings.Contains(got, tc.unreadable) || (tc.unreadable == "") != (got == "") {
				t.Errorf("the facts' unreadable: %q, want it to name %q", got, tc.unreadable)
			}
			if len(a.Facts.Failing) != 1 {
				t.Errorf("the failing methods: %+v", a.Facts.Failing)
			}
		})
	}
}
