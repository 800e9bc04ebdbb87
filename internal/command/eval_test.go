package command_test

import (
	"context"
	"testing"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/uvm/uvmtest"
)

// TestEvalAnswersLastExpression: through the command layer, an eval whose
// last line is an expression answers that expression's value, one whose
// last statement is not answers None, and the names defined come back
// either way.
func TestEvalAnswersLastExpression(t *testing.T) {
	ctx := context.Background()
	svc := command.NewLocal(uvmtest.Open(t, nil), "tester")
	cases := []struct {
		code  string
		value image.Value
		repr  string
	}{
		{"x = 20\nx + 1", image.Int(21), "21"},
		{"genesis.colour = 'blue'\ngenesis.colour", image.String("blue"), `"blue"`},
		{"y = 3", image.None, "None"},
	}
	for _, tc := range cases {
		res, err := svc.Eval(ctx, command.EvalRequest{Code: tc.code})
		if err != nil || res.Value != tc.value || res.Repr != tc.repr {
			t.Errorf("eval %q: got %v (%s), %v, want %v (%s)", tc.code, res.Value, res.Repr, err, tc.value, tc.repr)
		}
	}
	res, err := svc.Eval(ctx, command.EvalRequest{Code: "a = 1\nb = a + 1\nb * 10"})
	if err != nil || res.Value != image.Int(20) || res.Globals["a"] != image.Int(1) || res.Globals["b"] != image.Int(2) {
		t.Errorf("statements then an expression: got %v, globals %v, %v; want 20 with a and b", res.Value, res.Globals, err)
	}
}
