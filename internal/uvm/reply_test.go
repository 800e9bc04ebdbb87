package uvm_test

import (
	"errors"
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
	"batos/internal/vm"
)

// TestResultTooBigToReturn: a send or eval whose result is over the reply
// limit answers a ReplyLimit error; what it changed is committed all the
// same, and the error names the transaction. One that changed nothing
// says nothing of a transaction.
func TestResultTooBigToReturn(t *testing.T) {
	u := uvmtest.Open(t, &uvm.Options{VM: &vm.Options{MaxResult: 1 << 20}})
	eval(t, u, `genesis.big = method("def big(self, keep):\n    if keep:\n        self.kept = True\n    return 'x' * 3000000")`)
	cases := []struct {
		name    string
		call    func() error
		changed bool
	}{
		{"send that writes", func() error {
			_, err := u.Send(ctx, "genesis", "big", []image.Value{image.Bool(true)}, nil)
			return err
		}, true},
		{"send that reads", func() error {
			_, err := u.Send(ctx, "genesis", "big", []image.Value{image.Bool(false)}, nil)
			return err
		}, false},
		{"eval that writes", func() error {
			_, err := u.Eval(ctx, "set_slot(genesis, 'evaluated', True) or 'y' * 3000000")
			return err
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := u.Store().LastTID()
			err := tc.call()
			var le *vm.LimitError
			if !errors.As(err, &le) || le.Limit != vm.ReplyLimit {
				t.Fatalf("got %v, want a reply limit error", err)
			}
			after := u.Store().LastTID()
			if changed := after != before; changed != tc.changed {
				t.Fatalf("committed: %v, want %v", changed, tc.changed)
			}
			msg := err.Error()
			if !strings.Contains(msg, "2.9 MiB") || !strings.Contains(msg, "1.0 MiB reply limit") {
				t.Errorf("error does not give the sizes: %s", msg)
			}
			if saved := strings.Contains(msg, "committed as TID "+after.String()); saved != tc.changed {
				t.Errorf("error names the commit: %v, want %v: %s", saved, tc.changed, msg)
			}
		})
	}
	if got := eval(t, u, "[genesis.kept, genesis.evaluated]"); got != "[True, True]" {
		t.Errorf("after the sends: %s, want both changes kept", got)
	}
}
