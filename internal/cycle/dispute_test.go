package cycle

import (
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/vm"
)

// wrongPlan's test wants what the mission does not ask (the object's
// name in capitals).
const wrongPlan = `{"intent": "describe genesis in one line", "selector": "display_yourself",
 "signature": "def display_yourself(self)", "sub_questions": null,
 "tests": [{"name": "shouts", "expr": "self.display_yourself() == 'GENESIS'"}]}`

// disputingMethod disputes wrongPlan's test.
const disputingMethod = `{"source": "def display_yourself(self):\n    \"\"\"One line naming me.\"\"\"\n    return 'I am %s' % self.name\n",
 "tests": null, "disputes": [{"test": "shouts", "reason": "the mission asks for a line describing the object, not its name in capitals"}]}`

// TestDisputedPlanIsRevised: ROBIN disputes a wrong plan test instead of
// bending the method to it; the plan goes back to BRICK once, with the
// dispute quoted, and the cycle completes with the revised plan's tests.
func TestDisputedPlanIsRevised(t *testing.T) {
	b := &brain{plans: []string{wrongPlan, goodPlan}, methods: []string{disputingMethod, goodMethod}}
	m, db := testMachine(t, b, nil)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, m, id)
	if c.State != Complete {
		t.Fatalf("cycle ended %s: %s", c.State, c.Reason)
	}
	plans := c.stepsOf(StepPlan)
	if len(plans) != 2 || !strings.HasPrefix(plans[0].Rejected, disputePrefix) || !strings.Contains(plans[0].Rejected, "not its name in capitals") {
		t.Fatalf("plan steps %+v, want the first disputed", plans)
	}
	if len(c.Tests) == 0 || c.Tests[0].Name != "names itself" {
		t.Errorf("tests %+v, want the revised plan's", c.Tests)
	}
	if b.count("BRICK") != 2 || b.count("ROBIN") != 2 {
		t.Errorf("calls %v, want BRICK and ROBIN twice each", b.calls)
	}
	// BRICK's second prompt quoted the dispute beside the plan.
	err = db.View(t.Context(), func(tx *image.Tx) error { return LoadPrompts(tx, c) })
	if err != nil {
		t.Fatal(err)
	}
	second := c.stepsOf(StepPlan)[1]
	if len(second.Prompt) == 0 || !strings.Contains(second.Prompt[len(second.Prompt)-1].Content, "not its name in capitals") {
		t.Errorf("BRICK's second prompt does not quote the dispute: %+v", second.Prompt)
	}
}

// TestPlanDisputedTwiceFails: a revised plan disputed again was
// contradictory; the cycle fails saying so, and installs nothing.
func TestPlanDisputedTwiceFails(t *testing.T) {
	b := &brain{plans: []string{wrongPlan, wrongPlan}, methods: []string{disputingMethod, disputingMethod}}
	m, db := testMachine(t, b, nil)
	g := genesis(t, db)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, m, id)
	if c.State != Failed || !strings.Contains(c.Reason, "the plan was contradictory") || !strings.Contains(c.Reason, "not its name in capitals") {
		t.Fatalf("cycle %s: %q, want FAILED as contradictory", c.State, c.Reason)
	}
	if installedMethod(t, db, g, "display_yourself") != nil {
		t.Error("a method was installed")
	}
}

// planNamingNothing's test names an object the image does not have.
const planNamingNothing = `{"intent": "describe genesis in one line", "selector": "display_yourself",
 "signature": "def display_yourself(self)", "sub_questions": null,
 "tests": [{"name": "uses a helper", "expr": "helper.check(self.display_yourself())"}]}`

// TestPlanTestNamingNothingGoesBackToBRICK: a plan whose test names what
// does not exist is refused when it arrives, saying which name, and
// BRICK is asked again; ROBIN never sees it.
func TestPlanTestNamingNothingGoesBackToBRICK(t *testing.T) {
	b := &brain{plans: []string{planNamingNothing, goodPlan}, methods: []string{goodMethod}}
	m, db := testMachine(t, b, nil)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, m, id)
	plans := c.stepsOf(StepPlan)
	if c.State != Complete || len(plans) != 2 || !strings.Contains(plans[0].Rejected, "names what does not exist: helper") {
		t.Fatalf("cycle %s, plans %+v", c.State, plans)
	}
	if b.count("ROBIN") != 1 {
		t.Errorf("ROBIN asked %d times, want once (for the good plan)", b.count("ROBIN"))
	}
}
