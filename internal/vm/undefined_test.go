package vm_test

import (
	"slices"
	"testing"

	"batos/internal/vm"
)

// TestUndefinedNames: a test's free names are the built-ins, self and
// what the caller knows; anything else is named, once each.
func TestUndefinedNames(t *testing.T) {
	known := func(n string) bool { return n == "self" || n == "genesis" }
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{"self.greet('ada') == 'hi' and len(genesis.name) > 0", nil},
		{"[x for x in range(3)] == [0, 1, 2]", nil},
		{"wallet.balance == 30 and sum([1]) == 1 and wallet.x", []string{"wallet", "sum"}},
		{"lambda y: y + z", []string{"z"}},
	} {
		got, err := vm.UndefinedNames(tc.expr, known)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.expr, got, err, tc.want)
		}
	}
	if _, err := vm.UndefinedNames("x = 1", known); err == nil {
		t.Error("a statement passed")
	}
}
