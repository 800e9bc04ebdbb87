package cycle

import (
	"context"
	"strings"
	"sync"
	"testing"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
)

// fakeImprover stands in for the heartbeat's replay: check and replay
// say what each call answers (nil: go on, and pass).
type fakeImprover struct {
	mu      sync.Mutex
	check   func(ctx context.Context, c *Cycle) error
	replay  func(ctx context.Context, c *Cycle) (ReplayReport, error)
	checks  []State // the state of each check
	replays int
}

func (f *fakeImprover) Check(ctx context.Context, c *Cycle) error {
	f.mu.Lock()
	f.checks = append(f.checks, c.State)
	check := f.check
	f.mu.Unlock()
	if check == nil {
		return nil
	}
	return check(ctx, c)
}

func (f *fakeImprover) replayed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.replays
}

func (f *fakeImprover) Replay(ctx context.Context, c *Cycle) (ReplayReport, error) {
	f.mu.Lock()
	f.replays++
	replay := f.replay
	f.mu.Unlock()
	if replay == nil {
		return ReplayReport{Samples: 1, Passed: true, Summary: "passed"}, nil
	}
	return replay(ctx, c)
}

const (
	improveBase = "def average(self, xs):\n    t = 0\n    for x in xs:\n        t += x\n    return t / len(xs)\n"
	improvePlan = `{"intent": "average an empty list as 0.0", "selector": "average", "signature": "def average(self, xs)",
 "sub_questions": null, "tests": [{"name": "empty", "expr": "self.average([]) == 0.0", "fails": null}], "refuses": null}`
	improveMethod = `{"source": "def average(self, xs):\n    if len(xs) == 0:\n        return 0.0\n    t = 0\n    for x in xs:\n        t += x\n    return t / len(xs)\n", "tests": null, "disputes": null}`
)

// startImprovement puts improveBase in genesis's average and starts an
// improvement of it (installed when it passes, unless hold).
func startImprovement(t *testing.T, m *Machine, db *image.DB, hold bool) (int64, store.OID) {
	t.Helper()
	g := genesis(t, db)
	setAverage(t, db, g, &image.Method{Source: improveBase})
	mission := Mission{Message: vm.Message{Receiver: g, Selector: "average"}, Brief: "answer 0.0 for an empty list",
		Improve: &Improvement{Kind: ImproveFix, Goal: "answer 0.0 for an empty list", Base: improveBase, Hold: hold}}
	id, _, err := m.Start(t.Context(), mission, false)
	if err != nil {
		t.Fatal(err)
	}
	return id, g
}

func setAverage(t *testing.T, db *image.DB, oid store.OID, v image.Value) {
	t.Helper()
	if err := db.Update(t.Context(), func(tx *image.Tx) error {
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		return o.Set("average", v)
	}); err != nil {
		t.Fatal(err)
	}
}

// TestImprovementNeverInstalledOverCodeChangedAfterTheReplay: the method
// changed after the replay passed and before the install: the candidate
// is dropped, the newer code stays.
func TestImprovementNeverInstalledOverCodeChangedAfterTheReplay(t *testing.T) {
	const newer = "def average(self, xs):\n    return 7\n"
	var db *image.DB
	imp := &fakeImprover{}
	imp.replay = func(ctx context.Context, c *Cycle) (ReplayReport, error) {
		setAverage(t, db, c.Mission.Receiver, &image.Method{Source: newer})
		return ReplayReport{Samples: 1, Passed: true, Summary: "passed"}, nil
	}
	b := &brain{plans: []string{improvePlan}, methods: []string{improveMethod}}
	m, d := testMachine(t, b, &Options{Improver: imp})
	db = d
	id, g := startImprovement(t, m, db, false)
	c := waitDone(t, m, id)
	if c.State != Failed || !c.Mission.Improve.Dropped() || !strings.Contains(c.Reason, ErrBaseChanged.Error()) {
		t.Fatalf("cycle %s (%q), outcome %q; want failed, dropped for changed code", c.State, c.Reason, c.Mission.Improve.Outcome)
	}
	if got := installedMethod(t, db, g, "average").Source; got != newer {
		t.Fatalf("the newer code was replaced:\n%s", got)
	}
}

// TestImprovementCheckedBeforeEveryStep: an improvement whose method
// changes while BRICK plans is dropped before ROBIN is asked, with the
// reason, and its outcome says dropped.
func TestImprovementCheckedBeforeEveryStep(t *testing.T) {
	for _, why := range []error{ErrBaseChanged, ErrUnwanted} {
		t.Run(why.Error(), func(t *testing.T) {
			imp := &fakeImprover{}
			imp.check = func(ctx context.Context, c *Cycle) error {
				if c.State >= Delegating {
					return why
				}
				return nil
			}
			b := &brain{plans: []string{improvePlan}, methods: []string{improveMethod}}
			m, db := testMachine(t, b, &Options{Improver: imp})
			id, g := startImprovement(t, m, db, false)
			c := waitDone(t, m, id)
			if c.State != Failed || !c.Mission.Improve.Dropped() || !strings.Contains(c.Reason, why.Error()) {
				t.Fatalf("cycle %s (%q), outcome %q; want failed and dropped: %v", c.State, c.Reason, c.Mission.Improve.Outcome, why)
			}
			if n := b.count("ROBIN"); n != 0 {
				t.Fatalf("ROBIN was asked %d times for a dropped improvement", n)
			}
			if imp.replayed() != 0 {
				t.Fatalf("a dropped improvement was replayed %d times", imp.replayed())
			}
			if got := installedMethod(t, db, g, "average").Source; got != improveBase {
				t.Fatalf("a dropped improvement changed the method:\n%s", got)
			}
		})
	}
}

// TestImprovementWithoutReplayFailsAtOnce: a machine with no Improver
// cannot judge an improvement: it fails before any model is paid.
func TestImprovementWithoutReplayFailsAtOnce(t *testing.T) {
	b := &brain{plans: []string{improvePlan}, methods: []string{improveMethod}}
	m, db := testMachine(t, b, nil)
	id, _ := startImprovement(t, m, db, false)
	c := waitDone(t, m, id)
	if c.State != Failed || !strings.Contains(c.Reason, "replay") {
		t.Fatalf("cycle %s (%q), want failed for want of a replay", c.State, c.Reason)
	}
	if n := b.count("BRICK") + b.count("ROBIN"); n != 0 {
		t.Fatalf("%d model calls for an improvement nothing could judge", n)
	}
}

// TestImprovementResumesInValidating: a machine closed while the replay
// runs leaves the cycle in VALIDATING; the next machine replays again
// and installs, asking no model again.
func TestImprovementResumesInValidating(t *testing.T) {
	imp := &fakeImprover{}
	blocked := make(chan struct{})
	var once sync.Once
	imp.replay = func(ctx context.Context, c *Cycle) (ReplayReport, error) {
		if imp.replays == 1 {
			once.Do(func() { close(blocked) })
			<-ctx.Done()
			return ReplayReport{}, ctx.Err()
		}
		return ReplayReport{Samples: 1, Passed: true, Summary: "passed"}, nil
	}
	b := &brain{plans: []string{improvePlan}, methods: []string{improveMethod}}
	m, db := testMachine(t, b, &Options{Improver: imp})
	id, g := startImprovement(t, m, db, false)
	<-blocked
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	var c *Cycle
	if err := db.View(t.Context(), func(tx *image.Tx) (err error) {
		c, err = Load(tx, id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if c.State != Validating {
		t.Fatalf("after the close mid-replay the cycle is %s, want VALIDATING", c.State)
	}
	m2 := newMachineOn(t, db, b, &Options{Improver: imp})
	if _, err := m2.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	c = waitDone(t, m2, id)
	if c.State != Complete || c.Mission.Improve.Outcome != OutcomeInstalled {
		t.Fatalf("resumed cycle %s (%q), outcome %q", c.State, c.Reason, c.Mission.Improve.Outcome)
	}
	if b.count("BRICK") != 1 || b.count("ROBIN") != 1 || b.count("ALFRED") != 0 {
		t.Fatalf("model calls BRICK %d, ROBIN %d, ALFRED %d; want 1, 1, 0", b.count("BRICK"), b.count("ROBIN"), b.count("ALFRED"))
	}
	if n := imp.replayed(); n != 2 {
		t.Fatalf("%d replays, want 2 (the one cut off, the one after)", n)
	}
	if !strings.Contains(installedMethod(t, db, g, "average").Source, "return 0.0") {
		t.Fatal("the resumed improvement is not installed")
	}
}
