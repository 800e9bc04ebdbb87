package cycle

import (
	"sync"
	"time"

	"batos/internal/metrics"
)

// Cycle metrics. Each counts what this process's Machine did: a cycle
// resumed after a restart counts its transitions from then on, and the
// time of the state it resumed in is not observed (the image records no
// entry time per state); a whole cycle's duration comes from the image
// (Created to Updated), so it spans restarts.
var (
	cycleTransitions = metrics.NewCounterVec("batos_cycle_transitions_total",
		"Cycle transitions, by the state entered (IDLE counts cycles opened).",
		"state")
	cycleStateSeconds = metrics.NewHistogramVec("batos_cycle_state_duration_seconds",
		"Time a cycle spent in a state, by that state, observed when it left it.",
		metrics.SlowSeconds, "state")
	cycleSeconds = metrics.NewHistogramVec("batos_cycle_duration_seconds",
		"Time from a cycle's opening to its end, by the state it ended in (COMPLETE, FAILED).",
		metrics.SlowSeconds, "state")
	transitionsTo = perState(func(s State) metrics.Counter { return cycleTransitions.With(s.String()) })
	stateTime     = perState(func(s State) metrics.Histogram { return cycleStateSeconds.With(s.String()) })
	finishTime    = [...]metrics.Histogram{Complete: cycleSeconds.With(Complete.String()), Failed: cycleSeconds.With(Failed.String())}
)

func perState[T any](f func(State) T) [len(stateNames)]T {
	var a [len(stateNames)]T
	for s := range a {
		a[s] = f(State(s))
	}
	return a
}

// stateClock remembers when each cycle this process moved entered its
// state. It is safe for concurrent use; its zero value is ready.
type stateClock struct {
	mu      sync.Mutex
	entered map[int64]time.Time
}

// opened counts cycle id opened, in IDLE.
func (sc *stateClock) opened(id int64) {
	transitionsTo[Idle].Inc()
	sc.mark(id, time.Now())
}

// moved counts cycle c's move from state from; it is c.State now.
func (sc *stateClock) moved(c *Cycle, from State) {
	if c.State < 0 || int(c.State) >= len(stateNames) || from < 0 || int(from) >= len(stateNames) {
		return
	}
	now := time.Now()
	transitionsTo[c.State].Inc()
	sc.mu.Lock()
	since, ok := sc.entered[c.ID]
	if c.State.Terminal() {
		delete(sc.entered, c.ID)
	}
	sc.mu.Unlock()
	if ok {
		stateTime[from].Observe(now.Sub(since))
	}
	if c.State.Terminal() {
		finishTime[c.State].Observe(max(c.Updated.Sub(c.Created), 0))
		return
	}
	sc.mark(c.ID, now)
}

func (sc *stateClock) mark(id int64, at time.Time) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.entered == nil {
		sc.entered = map[int64]time.Time{}
	}
	sc.entered[id] = at
}
