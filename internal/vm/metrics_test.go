package vm_test

import (
	"testing"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/metrics/metricstest"
	"batos/internal/store"
	"batos/internal/vm"
)

// TestMetricsCountMethodCalls sends to methods that answer, nest, fail
// and hit the step limit, and checks the scrape's method calls by
// outcome and their latencies.
func TestMetricsCountMethodCalls(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(&vm.Options{Telemetry: vm.NewTelemetry(), MaxSteps: 10_000})
	var obj store.OID
	err := db.Update(ctx, func(tx *image.Tx) error {
		res, err := m.Eval(ctx, tx, `
o = new(None, name = "metrics")
o.inner = method("def inner(self):\n    return 1")
o.outer = method("def outer(self):\n    return self.inner() + 1")
o.broken = method("def broken(self):\n    fail('on purpose')")
o.spin = method("def spin(self):\n    for i in range(100000000):\n        pass")
o`, vm.GlobalsOf(rootGlobals(t, db)))
		if err == nil {
			obj = store.OID(res.Value.(image.Ref))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	before := metricstest.Take(t)
	for sel, wantErr := range map[string]bool{"outer": false, "broken": true, "spin": true} {
		err := db.View(ctx, func(tx *image.Tx) error {
			_, err := m.Send(ctx, tx, obj, sel, nil, nil)
			return err
		})
		if (err != nil) != wantErr {
			t.Errorf("send %s: got %v, want an error: %v", sel, err, wantErr)
		}
	}
	d := metricstest.Take(t).Sub(before)
	for series, want := range map[string]float64{
		`batos_method_calls_total{outcome="ok"}`:         2, // outer and inner
		`batos_method_calls_total{outcome="error"}`:      1,
		`batos_method_calls_total{outcome="step_limit"}`: 1,
		`batos_method_duration_seconds_count`:            4,
	} {
		if got := d[series]; got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
}
