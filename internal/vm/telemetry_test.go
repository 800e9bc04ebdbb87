package vm_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
	"batos/internal/vm"
)

// telemetryVM is a VM counting into a fresh Telemetry, over a fresh image.
func telemetryVM(t *testing.T, opts *vm.Options) (*image.DB, *vm.VM, *vm.Telemetry) {
	t.Helper()
	var o vm.Options
	if opts != nil {
		o = *opts
	}
	o.Telemetry = vm.NewTelemetry()
	return imagetest.Open(t, nil), vm.New(&o), o.Telemetry
}

// installMethod stores source in genesis's slot name as it is.
func installMethod(t *testing.T, db *image.DB, name, source string) {
	t.Helper()
	setGenesisSlot(t, db, name, &image.Method{Source: source})
}

// sendTo sends selector to target in its own Update.
func sendTo(t *testing.T, db *image.DB, m *vm.VM, target store.OID, selector string, args ...image.Value) (vm.Result, error) {
	t.Helper()
	var res vm.Result
	err := db.Update(ctx, func(tx *image.Tx) error {
		var err error
		res, err = m.Send(ctx, tx, target, selector, args, nil)
		return err
	})
	return res, err
}

func mustSend(t *testing.T, db *image.DB, m *vm.VM, target store.OID, selector string, args ...image.Value) vm.Result {
	t.Helper()
	res, err := sendTo(t, db, m, target, selector, args...)
	if err != nil {
		t.Fatalf("send %s: %v", selector, err)
	}
	return res
}

// deltaOf finds the delta of key in ds.
func deltaOf(t *testing.T, ds []vm.Delta, key vm.MethodKey) vm.Delta {
	t.Helper()
	for _, d := range ds {
		if d.Key == key {
			return d
		}
	}
	t.Fatalf("no delta for %+v in %+v", key, ds)
	return vm.Delta{}
}

// onlyCounts is the one Counts of key in ds.
func onlyCounts(t *testing.T, ds []vm.Delta, key vm.MethodKey) vm.Counts {
	t.Helper()
	d := deltaOf(t, ds, key)
	if len(d.Counts) != 1 {
		t.Fatalf("%s has %d versions, want 1: %+v", key.Selector, len(d.Counts), d.Counts)
	}
	return d.Counts[0]
}

func versionOf(source string) string {
	sum := sha256.Sum256([]byte(source))
	return hex.EncodeToString(sum[:])[:16]
}

// checkCounts checks what every Counts must satisfy.
func checkCounts(t *testing.T, c vm.Counts) {
	t.Helper()
	var kinds uint64
	for _, n := range c.ErrorKinds {
		kinds += n
	}
	switch {
	case kinds != c.Errors:
		t.Errorf("error kinds add up to %d, want Errors = %d", kinds, c.Errors)
	case c.Errors > c.Calls || c.LimitHits > c.Errors:
		t.Errorf("calls %d, errors %d, limit hits %d: want calls >= errors >= limit hits", c.Calls, c.Errors, c.LimitHits)
	case c.Latency.Count() != c.Calls:
		t.Errorf("latency counts %d calls, want %d", c.Latency.Count(), c.Calls)
	case c.StepsMax > c.StepsTotal:
		t.Errorf("steps max %d > total %d", c.StepsMax, c.StepsTotal)
	case c.Calls > 0 && (c.First.IsZero() || c.Last.Before(c.First)):
		t.Errorf("first %v, last %v", c.First, c.Last)
	}
}

func TestTelemetryCountsPerOwner(t *testing.T) {
	db, m, tel := telemetryVM(t, nil)
	installMethod(t, db, "hello", "def hello(self):\n    return 'hello'")
	mustEval(t, db, m, `root.kid = new(genesis, name = "kid")`)
	g := rootGlobals(t, db)
	genesis, kid := g["genesis"], g["kid"]
	if tel.Pending() {
		t.Errorf("pending before any method ran")
	}
	for range 3 {
		mustSend(t, db, m, kid, "hello")
	}
	mustSend(t, db, m, genesis, "hello")
	if !tel.Pending() {
		t.Errorf("not pending after sends")
	}
	ds := tel.Drain()
	if len(ds) != 1 {
		t.Fatalf("got %d deltas, want 1 (the inherited method is counted under its owner): %+v", len(ds), ds)
	}
	c := onlyCounts(t, ds, vm.MethodKey{Owner: genesis, Selector: "hello"})
	checkCounts(t, c)
	if c.Calls != 4 || c.Errors != 0 {
		t.Errorf("calls %d, errors %d, want 4 and 0", c.Calls, c.Errors)
	}
	if c.StepsTotal == 0 {
		t.Errorf("no steps counted")
	}
	receivers := map[store.OID]bool{}
	for _, s := range ds[0].Samples {
		receivers[s.Receiver] = true
		if !image.Equal(s.Result, image.String("hello")) || s.Error != "" || s.ErrorKind != "" {
			t.Errorf("sample %+v, want the answer hello", s)
		}
	}
	if len(ds[0].Samples) != 2 || !receivers[kid] || !receivers[genesis] {
		t.Errorf("samples %+v, want one per receiver (kid %s, genesis %s)", ds[0].Samples, kid, genesis)
	}
	if tel.Pending() {
		t.Errorf("pending after Drain")
	}
	if ds := tel.Drain(); len(ds) != 0 {
		t.Errorf("a second Drain got %+v, want nothing", ds)
	}
}

func TestTelemetryVersions(t *testing.T) {
	db, m, tel := telemetryVM(t, nil)
	v1 := "def answer(self):\n    return 1"
	v2 := "def answer(self):\n    return 2"
	genesis := genesisOID(t, db)
	installMethod(t, db, "answer", v1)
	mustSend(t, db, m, genesis, "answer")
	mustSend(t, db, m, genesis, "answer")
	installMethod(t, db, "answer", v2)
	for range 3 {
		mustSend(t, db, m, genesis, "answer")
	}
	d := deltaOf(t, tel.Drain(), vm.MethodKey{Owner: genesis, Selector: "answer"})
	if len(d.Counts) != 2 {
		t.Fatalf("got %d versions, want 2: %+v", len(d.Counts), d.Counts)
	}
	for i, want := range []struct {
		version string
		calls   uint64
	}{{versionOf(v1), 2}, {versionOf(v2), 3}} {
		checkCounts(t, d.Counts[i])
		if d.Counts[i].Version != want.version || d.Counts[i].Calls != want.calls {
			t.Errorf("version %d: got %s with %d calls, want %s with %d", i, d.Counts[i].Version, d.Counts[i].Calls, want.version, want.calls)
		}
	}
	// After a Drain the same version starts a new Counts, still named.
	mustSend(t, db, m, genesis, "answer")
	if c := onlyCounts(t, tel.Drain(), vm.MethodKey{Owner: genesis, Selector: "answer"}); c.Version != versionOf(v2) || c.Calls != 1 {
		t.Errorf("after a drain: %s with %d calls, want %s with 1", c.Version, c.Calls, versionOf(v2))
	}
}

func TestTelemetryNestedSends(t *testing.T) {
	db, m, tel := telemetryVM(t, nil)
	genesis := genesisOID(t, db)
	installMethod(t, db, "outer", "def outer(self):\n    return self.inner(1) + self.inner(2)")
	installMethod(t, db, "inner", "def inner(self, x):\n    n = 0\n    for i in range(100):\n        n += x\n    return n")
	res := mustSend(t, db, m, genesis, "outer")
	if !image.Equal(res.Value, image.Int(300)) {
		t.Fatalf("outer answered %s, want 300", res.Repr)
	}
	ds := tel.Drain()
	outer := onlyCounts(t, ds, vm.MethodKey{Owner: genesis, Selector: "outer"})
	inner := onlyCounts(t, ds, vm.MethodKey{Owner: genesis, Selector: "inner"})
	if res.Steps != outer.StepsTotal {
		t.Errorf("the send took %d steps, the outer method %d: want the same", res.Steps, outer.StepsTotal)
	}
	checkCounts(t, outer)
	checkCounts(t, inner)
	if outer.Calls != 1 || inner.Calls != 2 {
		t.Errorf("outer %d calls, inner %d, want 1 and 2", outer.Calls, inner.Calls)
	}
	if outer.StepsTotal <= inner.StepsTotal || inner.StepsMax == 0 {
		t.Errorf("outer took %d steps, inner %d (max %d): the outer's include the inner's", outer.StepsTotal, inner.StepsTotal, inner.StepsMax)
	}
	if d := deltaOf(t, ds, vm.MethodKey{Owner: genesis, Selector: "inner"}); len(d.Samples) != 2 {
		t.Errorf("inner has %d samples, want 2 (two distinct arguments)", len(d.Samples))
	}
	// The one call's latency is in the bucket of its sample's.
	d := deltaOf(t, ds, vm.MethodKey{Owner: genesis, Selector: "outer"})
	if len(d.Samples) != 1 || outer.Latency.Buckets[vm.BucketOf(d.Samples[0].Latency)] != 1 || d.Samples[0].Steps != outer.StepsTotal {
		t.Errorf("outer latency %v, steps %d; samples %+v", outer.Latency.Buckets, outer.StepsTotal, d.Samples)
	}
}

// learnError stands for the uvm's learning handler's error: a type of
// its own, nothing the vm knows.
type learnError struct{ selector string }

func (e *learnError) Error() string { return "learn " + e.selector }

type learningHandler struct{}

func (learningHandler) DoesNotUnderstand(ctx context.Context, tx *image.Tx, msg *vm.Message) (image.Value, error) {
	return nil, &learnError{msg.Selector}
}

func TestTelemetryErrorKinds(t *testing.T) {
	cases := []struct {
		name    string
		opts    vm.Options
		methods map[string]string
		send    string
		// cancel ends the sender's context this long after the send began.
		cancel time.Duration
		// want is each method's calls and failures of the kind.
		want      map[string]uint64
		kind      string
		limit     bool
		noSamples bool
	}{
		{name: "fail", send: "f", kind: "error",
			methods: map[string]string{"f": "def f(self):\n    fail('no')"},
			want:    map[string]uint64{"f": 1}},
		{name: "runtime error in a nested send", send: "outer", kind: "error",
			methods: map[string]string{"outer": "def outer(self):\n    return self.inner()", "inner": "def inner(self):\n    return 1 // 0"},
			want:    map[string]uint64{"outer": 1, "inner": 1}},
		{name: "step limit", send: "spin", kind: "step limit", limit: true, opts: vm.Options{MaxSteps: 20_000},
			methods: map[string]string{"spin": "def spin(self):\n    while True:\n        pass"},
			want:    map[string]uint64{"spin": 1}},
		{name: "time limit", send: "spin", kind: "time limit", limit: true, opts: vm.Options{Timeout: 50 * time.Millisecond},
			methods: map[string]string{"spin": "def spin(self):\n    while True:\n        pass"},
			want:    map[string]uint64{"spin": 1}},
		{name: "call-depth limit", send: "down", kind: "call-depth limit", limit: true, opts: vm.Options{MaxDepth: 10},
			methods: map[string]string{"down": "def down(self):\n    return self.down()"},
			// The sends up to the limit, and the one the limit refused.
			want: map[string]uint64{"down": 6}},
		{name: "cancelled", send: "spin", kind: "cancelled", cancel: 50 * time.Millisecond, noSamples: true,
			methods: map[string]string{"spin": "def spin(self):\n    while True:\n        pass"},
			want:    map[string]uint64{"spin": 1}},
		{name: "not understood, no mind", send: "ask", kind: "not understood",
			methods: map[string]string{"ask": "def ask(self):\n    return self.relay()", "relay": "def relay(self):\n    return self.no_such_thing()"},
			want:    map[string]uint64{"ask": 1, "relay": 1}},
		{name: "not understood, learning", send: "ask", kind: "not understood", opts: vm.Options{Handler: learningHandler{}},
			methods: map[string]string{"ask": "def ask(self):\n    return self.no_such_thing()"},
			want:    map[string]uint64{"ask": 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db, m, tel := telemetryVM(t, &tc.opts)
			genesis := genesisOID(t, db)
			for name, src := range tc.methods {
				installMethod(t, db, name, src)
			}
			sctx := ctx
			if tc.cancel > 0 {
				var cancel context.CancelFunc
				sctx, cancel = context.WithTimeout(ctx, tc.cancel)
				defer cancel()
			}
			err := db.View(ctx, func(tx *image.Tx) error {
				_, err := m.Send(sctx, tx, genesis, tc.send, nil, nil)
				return err
			})
			if err == nil {
				t.Fatalf("send %s succeeded", tc.send)
			}
			ds := tel.Drain()
			if len(ds) != len(tc.want) {
				t.Errorf("got %d deltas, want %d: %+v", len(ds), len(tc.want), ds)
			}
			for name, calls := range tc.want {
				d := deltaOf(t, ds, vm.MethodKey{Owner: genesis, Selector: name})
				c := onlyCounts(t, ds, d.Key)
				checkCounts(t, c)
				wantLimits := uint64(0)
				if tc.limit {
					wantLimits = calls
				}
				if c.Calls != calls || c.Errors != calls || c.ErrorKinds[tc.kind] != calls || c.LimitHits != wantLimits {
					t.Errorf("%s: calls %d, errors %d, kinds %v, limit hits %d; want %d calls failing with %q, %d limit hits", name, c.Calls, c.Errors, c.ErrorKinds, c.LimitHits, calls, tc.kind, wantLimits)
				}
				if tc.noSamples {
					if len(d.Samples) != 0 {
						t.Errorf("%s: samples %+v, want none", name, d.Samples)
					}
					continue
				}
				if len(d.Samples) != 1 {
					t.Fatalf("%s: %d samples, want 1: %+v", name, len(d.Samples), d.Samples)
				}
				if s := d.Samples[0]; s.ErrorKind != tc.kind || s.Error == "" || s.Result != nil {
					t.Errorf("%s: sample %+v, want a failure of kind %q", name, s, tc.kind)
				}
			}
		})
	}
}

func TestTelemetrySamplesDistinctAndBounded(t *testing.T) {
	db, m, tel := telemetryVM(t, nil)
	genesis := genesisOID(t, db)
	key := vm.MethodKey{Owner: genesis, Selector: "twice"}
	installMethod(t, db, "twice", "def twice(self, x):\n    return x * 2")
	for i := range 100 {
		mustSend(t, db, m, genesis, "twice", image.Int(i%3))
	}
	d := deltaOf(t, tel.Drain(), key)
	if len(d.Samples) != 3 {
		t.Fatalf("100 calls with 3 distinct arguments kept %d samples, want 3: %+v", len(d.Samples), d.Samples)
	}
	for _, s := range d.Samples {
		x := s.Args[0].(image.Int)
		if len(s.Args) != 1 || !image.Equal(s.Result, x*2) || s.Receiver != genesis || s.Key == "" || s.At.IsZero() || s.Latency <= 0 || s.Steps == 0 {
			t.Errorf("sample %+v, want twice(%d) = %d, with key, time, latency and steps", s, x, 2*x)
		}
	}

	// 100 distinct calls: 16 kept, over Drains too.
	key = vm.MethodKey{Owner: genesis, Selector: "thrice"}
	installMethod(t, db, "thrice", "def thrice(self, x):\n    return x * 3")
	keys := map[string]bool{}
	kept := func() {
		t.Helper()
		for _, s := range deltaOf(t, tel.Drain(), key).Samples {
			if keys[s.Key] {
				t.Errorf("key %s kept twice", s.Key)
			}
			keys[s.Key] = true
		}
	}
	for i := range 10 {
		mustSend(t, db, m, genesis, "thrice", image.Int(i))
	}
	kept()
	if len(keys) != 10 {
		t.Errorf("10 distinct calls kept %d samples, want 10", len(keys))
	}
	for i := range 90 {
		mustSend(t, db, m, genesis, "thrice", image.Int(10+i))
	}
	kept()
	if len(keys) != 16 {
		t.Errorf("100 distinct calls kept %d samples, want 16", len(keys))
	}
}

// TestTelemetryFailedSampleBesideSuccess: a failed call with the key of
// a successful sample is a failed sample of its own.
func TestTelemetryFailedSampleBesideSuccess(t *testing.T) {
	db, m, tel := telemetryVM(t, nil)
	genesis := genesisOID(t, db)
	installMethod(t, db, "pick", "def pick(self, x):\n    if self.strict:\n        fail('strict')\n    return x")
	setGenesisSlot(t, db, "strict", image.Bool(false))
	mustSend(t, db, m, genesis, "pick", image.Int(7))
	setGenesisSlot(t, db, "strict", image.Bool(true))
	if _, err := sendTo(t, db, m, genesis, "pick", image.Int(7)); err == nil {
		t.Fatal("strict pick succeeded")
	}
	d := deltaOf(t, tel.Drain(), vm.MethodKey{Owner: genesis, Selector: "pick"})
	if len(d.Samples) != 2 {
		t.Fatalf("got %d samples, want a success and a failure: %+v", len(d.Samples), d.Samples)
	}
	ok, failed := d.Samples[0], d.Samples[1]
	if ok.Key != failed.Key {
		t.Errorf("keys %s and %s differ for the same call", ok.Key, failed.Key)
	}
	if !image.Equal(ok.Result, image.Int(7)) || failed.ErrorKind != "error" || !strings.Contains(failed.Error, "strict") || failed.Result != nil {
		t.Errorf("samples %+v and %+v, want 7 and a failure saying strict", ok, failed)
	}
	var snapshot store.TID
	db.View(ctx, func(tx *image.Tx) error { snapshot = tx.Snapshot(); return nil })
	if failed.Snapshot != snapshot || ok.Snapshot >= failed.Snapshot {
		t.Errorf("snapshots %s and %s, want increasing, the last %s", ok.Snapshot, failed.Snapshot, snapshot)
	}
}

func TestTelemetrySampleLimits(t *testing.T) {
	db, m, tel := telemetryVM(t, nil)
	genesis := genesisOID(t, db)
	installMethod(t, db, "echo", "def echo(self, x):\n    return x")
	installMethod(t, db, "grow", "def grow(self, n):\n    return 'y' * n")
	installMethod(t, db, "fn", "def fn(self, x):\n    return lambda: x")
	installMethod(t, db, "push", "def push(self, l):\n    l.append(len(l))\n    return len(l)")
	mustSend(t, db, m, genesis, "echo", image.String(strings.Repeat("x", 100)))
	mustSend(t, db, m, genesis, "echo", image.String(strings.Repeat("x", 5000)))
	mustSend(t, db, m, genesis, "grow", image.Int(10))
	mustSend(t, db, m, genesis, "grow", image.Int(5000))
	mustSend(t, db, m, genesis, "fn", image.Int(1))
	mustEval(t, db, m, "genesis.echo(lambda: 1)")
	mustSend(t, db, m, genesis, "push", image.NewList(image.Int(0)))
	// 4 KiB as encoded: a thousand big ints take 9 bytes each.
	bigInts := make([]image.Value, 1000)
	for i := range bigInts {
		bigInts[i] = image.Int(1 << 60)
	}
	mustSend(t, db, m, genesis, "echo", image.NewList(bigInts...))
	ds := tel.Drain()
	check := func(selector string, calls uint64, samples int) []vm.Sample {
		t.Helper()
		d := deltaOf(t, ds, vm.MethodKey{Owner: genesis, Selector: selector})
		if c := onlyCounts(t, ds, d.Key); c.Calls != calls {
			t.Errorf("%s: %d calls, want %d", selector, c.Calls, calls)
		}
		if len(d.Samples) != samples {
			t.Errorf("%s: %d samples, want %d: %+v", selector, len(d.Samples), samples, d.Samples)
		}
		return d.Samples
	}
	// Over 4 KiB (arguments or result), arguments that cannot be stored
	// (a function), an answer that cannot: counted, not sampled.
	if s := check("echo", 4, 1); len(s) == 1 && len(s[0].Args[0].(image.String)) != 100 {
		t.Errorf("echo kept the big call")
	}
	if s := check("grow", 2, 1); len(s) == 1 && !image.Equal(s[0].Args[0], image.Int(10)) {
		t.Errorf("grow kept the big answer")
	}
	check("fn", 1, 0)
	// The arguments as the method got them, not as it left them.
	if s := check("push", 1, 1); len(s) == 1 {
		if !image.Equal(s[0].Args[0], image.NewList(image.Int(0))) || !image.Equal(s[0].Result, image.Int(2)) {
			t.Errorf("push sample %s -> %s, want [0] -> 2", image.Repr(s[0].Args[0]), image.Repr(s[0].Result))
		}
	}
}

// TestTelemetrySamplingChangesNothing: a method changing the list it is
// given, in an Update, leaves the slot as it would without telemetry.
func TestTelemetrySamplingChangesNothing(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("telemetry %v", on), func(t *testing.T) {
			db := imagetest.Open(t, nil)
			opts := &vm.Options{}
			if on {
				opts.Telemetry = vm.NewTelemetry()
			}
			m := vm.New(opts)
			installMethod(t, db, "push", "def push(self, l):\n    l.append(len(l))\n    return len(l)")
			mustEval(t, db, m, "genesis.items = [1]\ngenesis.push(genesis.items)\ngenesis.push(genesis.items)")
			res := mustEval(t, db, m, "genesis.items")
			if !image.Equal(res.Value, image.NewList(image.Int(1), image.Int(1), image.Int(2))) {
				t.Errorf("items %s, want [1, 1, 2]", res.Repr)
			}
			if on && opts.Telemetry.Drain()[0].Counts[0].Calls != 2 {
				t.Errorf("push not counted twice")
			}
		})
	}
}

func TestTelemetryDrainAndRestore(t *testing.T) {
	db, m, tel := telemetryVM(t, nil)
	genesis := genesisOID(t, db)
	key := vm.MethodKey{Owner: genesis, Selector: "twice"}
	installMethod(t, db, "twice", "def twice(self, x):\n    return x * 2")
	for i := range 3 {
		mustSend(t, db, m, genesis, "twice", image.Int(i))
	}
	first := tel.Drain()
	if tel.Pending() {
		t.Errorf("pending after Drain")
	}
	for i := range 2 {
		mustSend(t, db, m, genesis, "twice", image.Int(10+i))
	}
	tel.Restore(first)
	if !tel.Pending() {
		t.Errorf("not pending after Restore")
	}
	ds := tel.Drain()
	c := onlyCounts(t, ds, key)
	checkCounts(t, c)
	if c.Calls != 5 || c.Latency.Count() != 5 {
		t.Errorf("after Restore: %d calls (%d latencies), want 5", c.Calls, c.Latency.Count())
	}
	if want := onlyCounts(t, first, key); !c.First.Equal(want.First) || c.StepsTotal <= want.StepsTotal {
		t.Errorf("after Restore: first %v, steps %d; the restored first %v, steps %d", c.First, c.StepsTotal, want.First, want.StepsTotal)
	}
	var got []int64
	for _, s := range deltaOf(t, ds, key).Samples {
		got = append(got, int64(s.Args[0].(image.Int)))
	}
	if fmt.Sprint(got) != "[0 1 2 10 11]" {
		t.Errorf("samples for %v, want the restored ones first: [0 1 2 10 11]", got)
	}
	// Restored samples stay kept: sending one again keeps no new one.
	mustSend(t, db, m, genesis, "twice", image.Int(0))
	if d := deltaOf(t, tel.Drain(), key); len(d.Samples) != 0 {
		t.Errorf("a call already sampled was sampled again: %+v", d.Samples)
	}
	// Restored into nothing, or into another Telemetry, a Drain gives
	// back what was restored.
	for _, into := range []*vm.Telemetry{tel, vm.NewTelemetry()} {
		into.Restore(ds)
		if diff := cmp.Diff(into.Drain(), ds); diff != "" {
			t.Errorf("restored and drained (-got +want):\n%s", diff)
		}
	}
}

func TestTelemetryOff(t *testing.T) {
	db := imagetest.Open(t, nil)
	tel := vm.NewTelemetry()
	off := vm.New(nil)
	on := vm.New(&vm.Options{Telemetry: tel})
	genesis := genesisOID(t, db)
	installMethod(t, db, "hello", "def hello(self):\n    return 'hello'")
	mustSend(t, db, off, genesis, "hello")
	if tel.Pending() || len(tel.Drain()) != 0 {
		t.Errorf("a VM without telemetry counted")
	}
	mustSend(t, db, on, genesis, "hello")
	if c := onlyCounts(t, tel.Drain(), vm.MethodKey{Owner: genesis, Selector: "hello"}); c.Calls != 1 {
		t.Errorf("%d calls, want 1", c.Calls)
	}
	var none *vm.Telemetry
	none.Restore([]vm.Delta{{}})
	if none.Pending() || none.Drain() != nil {
		t.Errorf("a nil Telemetry holds something")
	}
}

// TestTelemetryPrimitivesNotCounted: a primitive slot is no method.
func TestTelemetryPrimitivesNotCounted(t *testing.T) {
	prims := map[string]vm.Primitive{"seven": func(context.Context, *image.Tx, image.Ref, []image.Value) (image.Value, error) {
		return image.Int(7), nil
	}}
	db, m, tel := telemetryVM(t, &vm.Options{Primitives: prims})
	setGenesisSlot(t, db, "seven", image.Primitive{Name: "seven"})
	installMethod(t, db, "call_seven", "def call_seven(self):\n    return self.seven()")
	genesis := genesisOID(t, db)
	mustSend(t, db, m, genesis, "seven")
	mustSend(t, db, m, genesis, "call_seven")
	ds := tel.Drain()
	if len(ds) != 1 || ds[0].Key.Selector != "call_seven" {
		t.Errorf("got %+v, want only call_seven counted", ds)
	}
}

func TestTelemetryConcurrentSenders(t *testing.T) {
	db, m, tel := telemetryVM(t, nil)
	genesis := genesisOID(t, db)
	key := vm.MethodKey{Owner: genesis, Selector: "twice"}
	installMethod(t, db, "twice", "def twice(self, x):\n    return x * 2")
	const senders, sends = 8, 50
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		drained []vm.Delta
	)
	stop := make(chan struct{})
	drainer := make(chan struct{})
	go func() {
		defer close(drainer)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ds := tel.Drain()
			mu.Lock()
			drained = append(drained, ds...)
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	for i := range senders {
		wg.Go(func() {
			for j := range sends {
				err := db.View(ctx, func(tx *image.Tx) error {
					_, err := m.Send(ctx, tx, genesis, "twice", []image.Value{image.Int(i*sends + j)}, nil)
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-drainer
	drained = append(drained, tel.Drain()...)
	var calls uint64
	var samples int
	for _, d := range drained {
		if d.Key != key {
			t.Errorf("delta for %+v", d.Key)
		}
		for _, c := range d.Counts {
			checkCounts(t, c)
			calls += c.Calls
		}
		samples += len(d.Samples)
	}
	if calls != senders*sends {
		t.Errorf("counted %d calls, want %d", calls, senders*sends)
	}
	if samples != 16 {
		t.Errorf("kept %d samples, want 16", samples)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h vm.Histogram
	if h.Quantile(0.5) != 0 || h.Count() != 0 {
		t.Errorf("empty histogram: p50 %v, count %d, want 0", h.Quantile(0.5), h.Count())
	}
	for i := 1; i <= 1000; i++ {
		h.Add(time.Duration(i) * time.Microsecond)
	}
	if h.Count() != 1000 {
		t.Errorf("count %d, want 1000", h.Count())
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {0.01, 10 * time.Microsecond}, {1, 1000 * time.Microsecond}} {
		got := h.Quantile(tc.q)
		if r := float64(got) / float64(tc.want); r < 1/1.19 || r > 1.19 {
			t.Errorf("p%g = %v, want within 19%% of %v", tc.q*100, got, tc.want)
		}
	}
	// Merging adds buckets: two halves make the whole.
	var lo, hi vm.Histogram
	for i := 1; i <= 1000; i++ {
		if i <= 500 {
			lo.Add(time.Duration(i) * time.Microsecond)
		} else {
			hi.Add(time.Duration(i) * time.Microsecond)
		}
	}
	lo.Merge(hi)
	if lo.Count() != 1000 || lo.Quantile(0.5) != h.Quantile(0.5) || lo.Quantile(0.99) != h.Quantile(0.99) {
		t.Errorf("merged halves: count %d, p50 %v, p99 %v; want %d, %v, %v", lo.Count(), lo.Quantile(0.5), lo.Quantile(0.99), h.Count(), h.Quantile(0.5), h.Quantile(0.99))
	}
}

func TestBucketBounds(t *testing.T) {
	prevHi := time.Duration(0)
	for i := 0; ; i++ {
		lo, hi := vm.BucketBounds(i)
		if lo != prevHi {
			t.Fatalf("bucket %d starts at %d, the previous ended at %d", i, lo, prevHi)
		}
		if hi == math.MaxInt64 {
			if vm.BucketOf(math.MaxInt64) != i || vm.BucketOf(lo) != i {
				t.Errorf("the last bucket %d [%d, max] holds %d and %d", i, lo, vm.BucketOf(lo), vm.BucketOf(math.MaxInt64))
			}
			break
		}
		if hi < lo {
			t.Fatalf("bucket %d: [%d, %d)", i, lo, hi)
		}
		if hi > lo {
			if vm.BucketOf(lo) != i || vm.BucketOf(hi-1) != i || vm.BucketOf(hi) == i {
				t.Errorf("bucket %d [%d, %d): BucketOf(lo) %d, BucketOf(hi-1) %d, BucketOf(hi) %d", i, lo, hi, vm.BucketOf(lo), vm.BucketOf(hi-1), vm.BucketOf(hi))
			}
		}
		if lo >= 100 {
			if r := float64(hi) / float64(lo); r < 1.16 || r > 1.22 {
				t.Errorf("bucket %d [%d, %d): ratio %.3f, want about 2^(1/4)", i, lo, hi, r)
			}
		}
		prevHi = hi
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10_000 {
		d := time.Duration(rng.Int64N(int64(time.Hour)))
		i := vm.BucketOf(d)
		if lo, hi := vm.BucketBounds(i); d < lo || d >= hi {
			t.Fatalf("%d is in bucket %d, [%d, %d)", d, i, lo, hi)
		}
	}
	if vm.BucketOf(-time.Second) != 0 || vm.BucketOf(0) != 0 {
		t.Errorf("negative and zero durations in buckets %d and %d, want 0", vm.BucketOf(-time.Second), vm.BucketOf(0))
	}
}

// TestTelemetryNotUnderstoodIsTheHandlersError: an error of the same
// text as the handler's, from the method's own code, is no "not
// understood".
func TestTelemetryNotUnderstoodIsTheHandlersError(t *testing.T) {
	db, m, tel := telemetryVM(t, &vm.Options{Handler: learningHandler{}})
	genesis := genesisOID(t, db)
	installMethod(t, db, "mimic", "def mimic(self):\n    fail('learn no_such_thing')")
	if _, err := sendTo(t, db, m, genesis, "mimic"); err == nil {
		t.Fatal("mimic succeeded")
	}
	installMethod(t, db, "ask", "def ask(self):\n    return self.no_such_thing()")
	_, err := sendTo(t, db, m, genesis, "ask")
	var le *learnError
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want the handler's error", err)
	}
	ds := tel.Drain()
	if c := onlyCounts(t, ds, vm.MethodKey{Owner: genesis, Selector: "mimic"}); c.ErrorKinds["error"] != 1 {
		t.Errorf("mimic kinds %v, want error", c.ErrorKinds)
	}
	if c := onlyCounts(t, ds, vm.MethodKey{Owner: genesis, Selector: "ask"}); c.ErrorKinds["not understood"] != 1 {
		t.Errorf("ask kinds %v, want not understood", c.ErrorKinds)
	}
}

// BenchmarkSendTelemetry is BenchmarkSendReadOnly with telemetry off and
// on: compare the two for the hook's cost.
func BenchmarkSendTelemetry(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("telemetry=%v", on), func(b *testing.B) {
			db := imagetest.Open(b, nil)
			opts := &vm.Options{}
			if on {
				opts.Telemetry = vm.NewTelemetry()
			}
			m := vm.New(opts)
			var reader image.Value
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
				reader = res.Value
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			oid := store.OID(reader.(image.Ref))
			b.ReportAllocs()
			for b.Loop() {
				err := db.View(ctx, func(tx *image.Tx) error {
					_, err := m.Send(ctx, tx, oid, "total", nil, nil)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
