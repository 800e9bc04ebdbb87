package vm_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/vm"
)

// TestEvalValue: an eval answers its last expression statement's value,
// as a REPL would, when its input ends with one, and None otherwise; the
// globals come back either way.
func TestEvalValue(t *testing.T) {
	cases := []struct {
		name, code string
		value      image.Value
		globals    map[string]image.Value
	}{
		{"one expression", "1 + 2", image.Int(3), nil},
		{"statements then an expression", "x = 2\ny = x * 3\ny + 1", image.Int(7), map[string]image.Value{"x": image.Int(2), "y": image.Int(6)}},
		{"a def then a call", "def f(n):\n    return n * 2\n\nf(21)", image.Int(42), nil},
		{"a compound statement last", "n = 0\nfor i in range(3):\n    n += i\n", image.None, map[string]image.Value{"n": image.Int(3)}},
		{"an assignment last", "a = 5\nb = a", image.None, map[string]image.Value{"a": image.Int(5), "b": image.Int(5)}},
		{"a call answering None last", "z = []\nz.append(1)", image.None, map[string]image.Value{"z": &image.List{Elems: []image.Value{image.Int(1)}}}},
		{"an expression inside a block is not last", "if True:\n    7\n", image.None, nil},
		{"a slot read last", "genesis.k = 'v'\ngenesis.k", image.String("v"), nil},
		{"a comment after the expression", "q = 1\nq  # the answer\n", image.Int(1), map[string]image.Value{"q": image.Int(1)}},
	}
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := mustEval(t, db, m, tc.code)
			if diff := cmp.Diff(res.Value, tc.value); diff != "" {
				t.Errorf("value (-got +want):\n%s", diff)
			}
			for name, want := range tc.globals {
				if diff := cmp.Diff(res.Globals[name], want); diff != "" {
					t.Errorf("global %s (-got +want):\n%s", name, diff)
				}
			}
		})
	}
}

// TestEvalLastExpressionError: the last expression's error is the
// eval's, and the statements before it ran first.
func TestEvalLastExpressionError(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	res, err := evalUpdate(t, db, m, "print('before')\n1 // 0")
	if err == nil {
		t.Fatalf("got %v, want a division error", res.Repr)
	}
	if ve := (*vm.Error)(nil); !errors.As(err, &ve) {
		t.Errorf("got %T %v, want a *vm.Error", err, err)
	}
}
