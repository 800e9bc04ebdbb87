package vm

import (
	"fmt"
	"runtime/metrics"
	"sync"
	"time"
)

// watchdog enforces the limits Starlark cannot check itself: wall time,
// memory and cancellation. One goroutine polls every running execution;
// it runs only while there are some, so an idle VM owns no goroutine.
type watchdog struct {
	mu      sync.Mutex
	active  map[*execution]watched
	running bool
}

type watched struct {
	deadline time.Time
	heapBase uint64
}

const watchInterval = 5 * time.Millisecond

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
var heapMu sync.Mutex

// heapBytes is the live heap, read without stopping the world.
func heapBytes() uint64 {
	heapMu.Lock()
	defer heapMu.Unlock()
	metrics.Read(heapSample)
	if heapSample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return heapSample[0].Value.Uint64()
}

// watch registers ex and returns the function that unregisters it.
func (ex *execution) watch() func() {
	w := &ex.vm.watch
	w.mu.Lock()
	if w.active == nil {
		w.active = make(map[*execution]watched)
	}
	w.active[ex] = watched{deadline: time.Now().Add(ex.vm.opts.Timeout), heapBase: heapBytes()}
	if !w.running {
		w.running = true
		go w.loop(ex.vm)
	}
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		delete(w.active, ex)
		w.mu.Unlock()
	}
}

func (w *watchdog) loop(vm *VM) {
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for range tick.C {
		w.mu.Lock()
		if len(w.active) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		now, heap := time.Now(), heapBytes()
		for ex, st := range w.active {
			ex.checkLimits(st, now, heap)
		}
		w.mu.Unlock()
	}
}

// checkLimits trips ex if its caller gave up or it passed a limit.
func (ex *execution) checkLimits(st watched, now time.Time, heap uint64) {
	opts := &ex.vm.opts
	switch {
	case ex.caller.Err() != nil:
		ex.cancel(ex.caller.Err())
	case now.After(st.deadline):
		ex.trip(&LimitError{Limit: TimeLimit, Detail: opts.Timeout.String()})
	case heap > st.heapBase+opts.MaxMemory:
		ex.trip(&LimitError{Limit: MemoryLimit, Detail: fmt.Sprintf("heap grew by more than %d MiB", opts.MaxMemory>>20)})
	}
}

// checkLimitsNow runs the watchdog's check for ex at once.
func (ex *execution) checkLimitsNow() {
	w := &ex.vm.watch
	w.mu.Lock()
	st, ok := w.active[ex]
	w.mu.Unlock()
	if ok {
		ex.checkLimits(st, time.Now(), heapBytes())
	}
}
