package heartbeat_test

import (
	"strings"
	"testing"

	"batos/internal/heartbeat"
	"batos/internal/image"
	"batos/internal/uvm"
	"batos/internal/vm"
)

// record is the Starlark naming calc.average's telemetry record.
const record = `telemetry.methods[oid(calc) + " average"]`

// averageStats is the telemetry of the version calc.average holds now.
func averageStats(t *testing.T, u *uvm.UVM) heartbeat.MethodStats {
	t.Helper()
	if err := u.FlushTelemetry(t.Context()); err != nil {
		t.Fatal(err)
	}
	var out heartbeat.MethodStats
	err := u.DB().View(t.Context(), func(tx *image.Tx) error {
		stats, err := heartbeat.Stats(tx, 0)
		for _, s := range stats {
			if s.Selector == "average" && s.Current && s.OwnerName == "calc" {
				out = s
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHostileTelemetryEdits: telemetry a person mangles from the REPL is
// skipped, never an error: the counts go on, stats and audits read what
// is left, and nothing is written anywhere but the telemetry's own
// objects.
func TestHostileTelemetryEdits(t *testing.T) {
	for _, code := range []string{
		`telemetry.methods = None`,
		`telemetry.methods = {"a": 1, 2: "b", "oid:1 x": [1], "oid:99999 y": calc}`,
		record + `.versions = "junk"`,
		record + `.versions = [1, None, {"version": 5}, {"version": "v", "calls": "x", "latency": {70000: 1, -1: 5, 3: -2, "q": 1}, "error_kinds": {4: 5, "error": -1}}]`,
		record + `.versions = [{"version": "v", "calls": 9223372036854775807, "errors": 9223372036854775807, "steps_total": 9223372036854775807, "latency": {65535: 9223372036854775807, 0: 9223372036854775807}}]`,
		record + `.versions[0]["first"] = "yesterday"`,
		record + `.versions[0]["latency"] = {65535: 9223372036854775807}`,
		record + `.samples = 5`,
		record + `.samples = calc`,
		record + `.samples = root`,
		record + `.samples.samples = 7`,
		record + `.samples.samples = [1, None, {"receiver": 5, "args": [1]}, {"receiver": calc, "args": "x"}, {"receiver": calc, "args": [1], "ok": True, "result": "y" * 1000000}]`,
		record + `.samples.samples = [{"receiver": calc, "args": [[1, 2]] * 10000, "ok": False, "error": "\n" * 100, "error_kind": 5, "snapshot": "zz"}]`,
		record + `.samples.samples = [{"receiver": root, "args": [], "ok": False, "kwargs": {1: 2, "self": 3}}]`,
		record + `.owner = 5`,
		record + `.owner = root`,
		record + `.selector = 5`,
		`telemetry.methods[oid(calc) + " average"] = calc`,
		`telemetry.methods[oid(calc) + " average"] = root`,
		`telemetry.methods[oid(calc) + " average"] = telemetry`,
	} {
		t.Run(code, func(t *testing.T) {
			u, l := openHostile(t, retireAverage)
			evalOK(t, u, code)
			calcSlots, rootSlots, telemetrySlots := slotNames(t, u, "calc"), slotNames(t, u, "root"), slotNames(t, u, "telemetry")
			callAverage(t, u, "calc", 3)
			callAverage(t, u, "calc", 4)
			callAverage(t, u, "calc")
			if s := averageStats(t, u); s.Calls < 3 || s.Errors < 1 {
				t.Errorf("calc.average after the edit: %d calls, %d errors; want the 3 new ones counted", s.Calls, s.Errors)
			}
			if _, err := l.MethodStats(t.Context(), "calc"); err != nil {
				t.Fatalf("method stats: %v", err)
			}
			if a := runAudit(t, u, l); a.State != heartbeat.AuditAnswered {
				t.Fatalf("audit: %s %s", a.State, a.Error)
			}
			for _, o := range []struct{ name, before string }{{"calc", calcSlots}, {"root", rootSlots}, {"telemetry", telemetrySlots}} {
				if got := slotNames(t, u, o.name); got != o.before {
					t.Errorf("the flush wrote into %s: slots %s, were %s", o.name, got, o.before)
				}
			}
		})
	}
}

// TestHostileErrorKindsKeys: an error kind a person wrote into a record
// is no kind the VM counts, and the facts an audit keeps never carry it
// (a "$ref" key made the audit unstorable).
func TestHostileErrorKindsKeys(t *testing.T) {
	u, l := openHostile(t, retireAverage)
	evalOK(t, u, record+`.versions[-1]["error_kinds"] = {"$ref": 3, "error": 1, "bogus": 2}`)
	s := averageStats(t, u)
	for k := range s.ErrorKinds {
		if k != vm.KindError {
			t.Errorf("error kind %q read from a mangled record", k)
		}
	}
	if a := runAudit(t, u, l); a.State != heartbeat.AuditAnswered {
		t.Fatalf("audit: %s %s", a.State, a.Error)
	}
}

// TestHostileEvidenceBounded: a recorded call with ten thousand
// arguments is evidence of one line, not of megabytes.
func TestHostileEvidenceBounded(t *testing.T) {
	u, l := openHostile(t, retireAverage)
	evalOK(t, u, record+`.samples.samples = [{"receiver": calc, "args": [[1, 2]] * 10000, "ok": False, "error": "boom", "error_kind": "error"}]`)
	a := runAudit(t, u, l)
	for _, m := range a.Facts.Failing {
		for _, ev := range m.Evidence {
			if len(ev) > 1000 {
				t.Errorf("evidence of %d bytes: %s…", len(ev), ev[:80])
			}
		}
	}
	if len(a.Facts.Failing) == 0 || !strings.Contains(strings.Join(a.Facts.Failing[0].Evidence, "\n"), "boom") {
		t.Fatalf("the mangled sample is not evidence: %+v", a.Facts.Failing)
	}
}

// TestHostileTelemetryGrown: versions and samples lists a person grew
// to tens of thousands of entries read as what a flush keeps: the last
// 8 versions, 16 calls of each outcome.
func TestHostileTelemetryGrown(t *testing.T) {
	u, l := openHostile(t, retireAverage)
	evalOK(t, u, record+`.versions = [{"version": "v%d" % i, "calls": 1} for i in range(20000)] + `+record+`.versions`)
	evalOK(t, u, record+`.samples.samples = [{"receiver": calc, "args": [[i]], "ok": i % 2 == 0, "result": 1, "error": "e"} for i in range(20000)]`)
	if err := u.FlushTelemetry(t.Context()); err != nil {
		t.Fatal(err)
	}
	r, err := l.MethodStats(t.Context(), "calc")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Methods) > 8 {
		t.Errorf("method stats reads %d versions, want at most 8", len(r.Methods))
	}
	s := averageStats(t, u)
	if s.Calls != 2 || s.Samples > 32 || s.FailedSamples > 16 {
		t.Errorf("calc.average: %d calls, %d samples (%d failed)", s.Calls, s.Samples, s.FailedSamples)
	}
	var n int
	if err := u.DB().View(t.Context(), func(tx *image.Tx) error {
		samples, err := heartbeat.Samples(tx, s.Owner, "average")
		n = len(samples)
		return err
	}); err != nil || n > 32 {
		t.Errorf("the recorded calls to replay: %d, %v", n, err)
	}
}
