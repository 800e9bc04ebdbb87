package vm_test

import (
	"testing"

	"batos/internal/image"
	"batos/internal/vm"
)

// evalUpdate runs code through Eval in its own Update.
func evalUpdate(t *testing.T, db *image.DB, m *vm.VM, code string) (vm.Result, error) {
	t.Helper()
	var res vm.Result
	err := db.Update(ctx, func(tx *image.Tx) error {
		var err error
		res, err = m.Eval(ctx, tx, code, vm.GlobalsOf(rootGlobals(t, db)))
		return err
	})
	return res, err
}

func mustEval(t *testing.T, db *image.DB, m *vm.VM, code string) vm.Result {
	t.Helper()
	res, err := evalUpdate(t, db, m, code)
	if err != nil {
		t.Fatalf("eval %q: %v", code, err)
	}
	return res
}

// setGenesisSlot stores v in genesis's slot name through the image API,
// bypassing every check method() and assignment make.
func setGenesisSlot(t *testing.T, db *image.DB, name string, v image.Value) {
	t.Helper()
	err := db.Update(ctx, func(tx *image.Tx) error {
		g, err := tx.Object(genesisOID(t, db))
		if err != nil {
			return err
		}
		return g.Set(name, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}
