package vm_test

import (
	"testing"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
	"batos/internal/vm"
)

// BenchmarkSendReadOnly is bench vm's read-only send: a method found two
// parents up reading slots of both, in a View.
func BenchmarkSendReadOnly(b *testing.B) {
	db := imagetest.Open(b, nil)
	m := vm.New(nil)
	var target image.Value
	err := db.Update(ctx, func(tx *image.Tx) error {
		_, err := m.Eval(ctx, tx, `
a = new(None, x = 20)
a.total = method("def total(self):\n    return self.x * 2 + self.y")
b = new(a, y = 2)
root.reader = new(b)`, vm.GlobalsOf(rootGlobals(b, db)))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	err = db.View(ctx, func(tx *image.Tx) error {
		res, err := m.Eval(ctx, tx, "root.reader", vm.GlobalsOf(rootGlobals(b, db)))
		target = res.Value
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	oid := target.(image.Ref)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		err := db.View(ctx, func(tx *image.Tx) error {
			_, err := m.Send(ctx, tx, store.OID(oid), "total", nil, nil)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
