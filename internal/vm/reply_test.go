package vm_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/vm"
)

// TestReplyLimit: a result over MaxResult, measured without printing or
// converting more than the limit, is a ReplyLimit error that leaves the
// transaction to the caller; printed output past it is dropped with a
// note.
func TestReplyLimit(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"a big string", "return 'x' * 3000000", "its result, 2.9 MiB, is over the 1.0 MiB reply limit"},
		{"a big list", "return list(range(1000000))", "its result, more than 1.0 MiB, is over the 1.0 MiB reply limit"},
		{"a value bigger than its repr", "return method('def m(self):\\\\n    return 1\\\\n' + '#' * 2000000)", "its value of more than"},
		{"a deep list", "l = []\n    for i in range(5000):\n        l = [l]\n    return l", "nested more than 1000 levels deep"},
	}
	db := imagetest.Open(t, nil)
	m := vm.New(&vm.Options{MaxResult: 1 << 20})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setMethod(t, db, m, "big", "def big(self, n):\n    self.n = n\n    "+tc.body)
			var err error
			// The caller commits: only the answer is lost.
			uerr := db.Update(ctx, func(tx *image.Tx) error {
				_, err = m.Send(ctx, tx, genesisOID(t, db), "big", []image.Value{image.Int(i)}, nil)
				var le *vm.LimitError
				if errors.As(err, &le) && le.Limit == vm.ReplyLimit {
					return nil
				}
				return err
			})
			if uerr != nil {
				t.Fatal(uerr)
			}
			var le *vm.LimitError
			if !errors.As(err, &le) || le.Limit != vm.ReplyLimit || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a reply limit error saying %q", err, tc.want)
			}
			if got := mustEval(t, db, m, "genesis.n").Repr; got != strconv.Itoa(i) {
				t.Errorf("genesis.n = %s, want %d: the execution's change was lost", got, i)
			}
		})
	}
	res := mustEval(t, db, m, "for i in range(3000):\n    print('y' * 1000)")
	if len(res.Output) > 1<<20 || !strings.HasSuffix(res.Output, "bytes of output dropped: over the 1.0 MiB reply limit\n") {
		t.Errorf("output of 3 MB: %d bytes ending %q", len(res.Output), res.Output[max(len(res.Output)-80, 0):])
	}
}
