package cycle

import (
	"errors"
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/vm"
)

// TestRefusalFailure: what must fail passes only by failing as a method's
// error that mentions the plan's words; anything else says what happened
// instead.
func TestRefusalFailure(t *testing.T) {
	for _, tc := range []struct {
		res  vm.Result
		err  error
		want string // "" passes
	}{
		{err: &vm.Error{Msg: "Insufficient funds: balance 30"}, want: ""},
		{res: vm.Result{Value: image.Int(20), Repr: "20"}, want: `answered 20; it must fail, with an error mentioning "insufficient"`},
		{err: &vm.Error{Msg: "index out of range"}, want: `failed with "index out of range"; its error must mention "insufficient"`},
		{err: errors.New("store: conflict"), want: "not as a method's error"},
	} {
		got := refusalFailure("withdraw(50)", "insufficient", tc.res, tc.err)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%v / %v: %q, want %q", tc.res.Repr, tc.err, got, tc.want)
		}
	}
}

// TestRefusalInPrompts: a plan that refuses tells ROBIN the call must be
// refused, and its failing tests say so; the schema carries both fields.
func TestRefusalInPrompts(t *testing.T) {
	c := &Cycle{Mission: Mission{Message: vm.Message{Selector: "withdraw", Args: []image.Value{image.Int(50)}}},
		Plan: &Plan{Selector: "withdraw", Refuses: "insufficient", Tests: []Test{{Name: "too much", Expr: "self.withdraw(99)", Fails: "insufficient"}}}}
	p := synthesisPrompt(c, &receiverView{desc: "wallet (oid:9)"})[0].Content
	for _, want := range []string{`The call withdraw(50) must be refused`, `mentioning "insufficient"`, `too much: self.withdraw(99)  (must fail, with an error mentioning "insufficient")`} {
		if !strings.Contains(p, want) {
			t.Errorf("ROBIN's prompt lacks %q:\n%s", want, p)
		}
	}
	plan, _, err := parsePlan(`{"intent": "take money", "selector": "withdraw", "signature": "def withdraw(self, amount)", "sub_questions": null,
		"tests": [{"name": "too much", "expr": "self.withdraw(99)", "fails": "insufficient"}], "refuses": "insufficient"}`, "withdraw")
	if err != nil || plan.Refuses != "insufficient" || plan.Tests[0].Fails != "insufficient" {
		t.Errorf("parsePlan: %+v, %v", plan, err)
	}
	if merged := mergeTests(plan.Tests, []Test{{Expr: "self.withdraw(99)"}}); len(merged) != 2 {
		t.Errorf("a test that must fail and the same expression that must pass are two tests: %v", merged)
	}
}
