package heartbeat_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"batos/internal/command"
	"batos/internal/heartbeat"
	"batos/internal/image"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
)

func loadSettings(t *testing.T, u *uvm.UVM) heartbeat.Settings {
	t.Helper()
	var s heartbeat.Settings
	if err := u.DB().View(t.Context(), func(tx *image.Tx) (err error) {
		s, err = heartbeat.LoadSettings(tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHostileHeartbeatSettings: a setting edited into something batos
// cannot use is read as its default, and the audit notes it; a setting
// batos can use, even an odd one (a budget of 0), is used as written.
func TestHostileHeartbeatSettings(t *testing.T) {
	cases := []struct {
		code string
		// note is what an audit's notes say, "" for none.
		note  string
		check func(t *testing.T, s heartbeat.Settings)
	}{
		{`heartbeat.policy = 5`, "heartbeat.policy is 5", func(t *testing.T, s heartbeat.Settings) {
			if s.Policy != heartbeat.PolicyPropose {
				t.Errorf("policy %q", s.Policy)
			}
		}},
		{`heartbeat.budget_per_audit = -3`, "heartbeat.budget_per_audit is -3", func(t *testing.T, s heartbeat.Settings) {
			if s.AuditBudget != heartbeat.DefaultAuditBudget {
				t.Errorf("audit budget %d", s.AuditBudget)
			}
		}},
		{`heartbeat.budget_per_audit = "lots"`, `heartbeat.budget_per_audit is "lots"`, func(t *testing.T, s heartbeat.Settings) {
			if s.AuditBudget != heartbeat.DefaultAuditBudget {
				t.Errorf("audit budget %d", s.AuditBudget)
			}
		}},
		{`heartbeat.budget_per_day = 1.5`, "heartbeat.budget_per_day is 1.5", func(t *testing.T, s heartbeat.Settings) {
			if s.DayBudget != heartbeat.DefaultDayBudget {
				t.Errorf("day budget %d", s.DayBudget)
			}
		}},
		{`heartbeat.budget_per_audit = 0`, "", func(t *testing.T, s heartbeat.Settings) {
			if s.AuditBudget != 0 {
				t.Errorf("a budget of 0 is read as %d", s.AuditBudget)
			}
		}},
		{`heartbeat.cooldown_s = 9223372036854775807`, "heartbeat.cooldown_s is 9223372036854775807", func(t *testing.T, s heartbeat.Settings) {
			if s.Cooldown <= 0 {
				t.Errorf("a huge cool-down is read as %v", s.Cooldown)
			}
		}},
		{`heartbeat.cooldown_s = -1`, "heartbeat.cooldown_s is -1", func(t *testing.T, s heartbeat.Settings) {
			if s.Cooldown != heartbeat.DefaultCooldown {
				t.Errorf("cool-down %v", s.Cooldown)
			}
		}},
		{`heartbeat.cooldown_s = 0`, "", func(t *testing.T, s heartbeat.Settings) {
			if s.Cooldown != 0 {
				t.Errorf("a cool-down of 0 is read as %v", s.Cooldown)
			}
		}},
		{`heartbeat.next_due = "garbage"`, "", func(t *testing.T, s heartbeat.Settings) {
			if !s.NextDue.IsZero() {
				t.Errorf("next due %v", s.NextDue)
			}
		}},
		{`heartbeat.cooldowns = [1]`, "", nil},
		{`heartbeat.cooldowns = {"x": 5, 3: "y"}`, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			u, l := openHostile(t, retireAverage)
			evalOK(t, u, tc.code)
			if tc.check != nil {
				tc.check(t, loadSettings(t, u))
			}
			a := runAudit(t, u, l)
			notes := strings.Join(a.Notes, "\n")
			if tc.note == "" && notes != "" || !strings.Contains(notes, tc.note) {
				t.Errorf("the audit's notes: %q, want %q", notes, tc.note)
			}
			if a.Proposals[0].Status != heartbeat.ProposalWaiting {
				return // a budget of 0 defers even a retirement
			}
			// A decision writes a cool-down whatever cooldowns held.
			if _, err := l.ProposalReject(t.Context(), heartbeat.ID(a.ID, 1), "no"); err != nil {
				t.Fatal(err)
			}
			if got := evalOK(t, u, `type(heartbeat.cooldowns)`); got != image.String("dict") {
				t.Errorf("heartbeat.cooldowns is a %s after a rejection", got)
			}
		})
	}
}

// TestHostileBudgetOfZero: a budget of 0 defers every improvement.
func TestHostileBudgetOfZero(t *testing.T) {
	u, l := openHostile(t, answer("s", "[]", proposal("calc", "average", "fix", "answer 0.0 for an empty list")))
	evalOK(t, u, `heartbeat.budget_per_audit = 0`)
	a := runAudit(t, u, l)
	if p := a.Proposals[0]; p.Status != heartbeat.ProposalDeferred {
		t.Fatalf("a fix under a budget of 0: %s %q", p.Status, p.Reason)
	}
}

// TestHostileNextDueGarbage: a next_due batos cannot read is scheduled
// anew, an interval from now.
func TestHostileNextDueGarbage(t *testing.T) {
	for _, code := range []string{`heartbeat.next_due = "garbage"`, `heartbeat.next_due = 5`, `heartbeat.next_due = "9999-12-31T23:59:59Z"`} {
		t.Run(code, func(t *testing.T) {
			u, _ := openHostile(t)
			evalOK(t, u, code)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() {
				defer close(done)
				u.Heartbeat().Run(ctx, time.Hour)
			}()
			defer func() { cancel(); <-done }()
			inAnHour := func() bool {
				until := time.Until(loadSettings(t, u).NextDue)
				return until > 50*time.Minute && until <= time.Hour
			}
			for deadline := time.Now().Add(10 * time.Second); !inAnHour(); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("next due %v; want in an hour", loadSettings(t, u).NextDue)
				}
			}
		})
	}
}

// TestHostileHeartbeatObjectWrong: a root whose heartbeat slot holds no
// object still opens (awakening leaves what a person put there), audits
// say what is wrong, and an object put back gets its defaults.
func TestHostileHeartbeatObjectWrong(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live_image.db")
	u, _ := uvmtest.OpenAt(t, path, nil)
	evalOK(t, u, `root.heartbeat = 3`)
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	u, _ = uvmtest.OpenAt(t, path, nil)
	l := command.NewLocal(u, "tester")
	if _, err := l.ProposalAccept(t.Context(), "1.1"); err == nil {
		t.Fatal("accept on an image without audits succeeded")
	}
	if r, err := l.MethodStats(t.Context(), ""); err != nil {
		t.Fatalf("method stats: %+v, %v", r, err)
	}
	err := u.DB().View(t.Context(), func(tx *image.Tx) error {
		_, err := heartbeat.LoadSettings(tx)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "heartbeat") || !strings.Contains(err.Error(), "3") {
		t.Fatalf("settings of root.heartbeat = 3: %v", err)
	}
	evalOK(t, u, `root.heartbeat = new(None, name = "heartbeat")`)
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	u, _ = uvmtest.OpenAt(t, path, nil)
	if got := evalOK(t, u, `heartbeat.policy`); got != image.String(heartbeat.PolicyPropose) {
		t.Fatalf("the heartbeat put back has policy %v", got)
	}
}
