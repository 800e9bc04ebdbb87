package vm

import (
	"fmt"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// watchdog enforces the limits Starlark cannot check itself: wall time,
// memory and cancellation. One goroutine polls every running execution;
// it runs only while there are some, so an idle VM owns no goroutine.
type watchdog struct {
	mu      sync.Mutex
	active  map[*execution]struct{}
	running bool
}

const watchInterval = 5 * time.Millisecond

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
var heapMu sync.Mutex

// heapBytes is the live heap, read without stopping the world.
func heapBytes() uint64 { return heapBytesAt(time.Now()) }

// heapBytesAt is heapBytes read at now.
func heapBytesAt(now time.Time) uint64 {
	heapMu.Lock()
	defer heapMu.Unlock()
	metrics.Read(heapSample)
	if heapSample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	n := heapSample[0].Value.Uint64()
	lastHeap.bytes.Store(n)
	lastHeap.at.Store(now.UnixNano())
	return n
}

// lastHeap is the heap as heapBytes last read it, and when (Unix
// nanoseconds).
var lastHeap struct {
	bytes atomic.Uint64
	at    atomic.Int64
}

// recentHeap is the heap as read at most a watchdog interval ago: what
// an execution's start and end look at, where reading it anew (a few
// hundred nanoseconds) would be a good part of a short send's cost.
// Guards deciding an allocation read it anew. now is the time: the
// caller reads the clock once for all it needs it for.
func recentHeap(now time.Time) uint64 {
	if now.UnixNano()-lastHeap.at.Load() < int64(watchInterval) {
		return lastHeap.bytes.Load()
	}
	return heapBytesAt(now)
}

// watch registers ex, started at now; unwatch unregisters it.
func (ex *execution) watch(now time.Time) {
	w := &ex.vm.watch
	w.mu.Lock()
	if w.active == nil {
		w.active = make(map[*execution]struct{})
	}
	// Set before ex is in the map, and cleared once it is out: the
	// watchdog reads it only under the lock, of executions in the map.
	ex.deadline = now.Add(ex.vm.opts.Timeout).UnixNano()
	w.active[ex] = struct{}{}
	if !w.running {
		w.running = true
		go w.loop(ex.vm)
	}
	w.mu.Unlock()
}

func (ex *execution) unwatch() {
	w := &ex.vm.watch
	w.mu.Lock()
	delete(w.active, ex)
	w.mu.Unlock()
	ex.deadline = 0
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
		seq := process.gcSeq.Load()
		now, heap := time.Now(), heapBytes()
		for ex := range w.active {
			ex.checkLimits(now, heap)
		}
		w.mu.Unlock()
		if heap > vm.opts.MaxTotalMemory && collect(seq, false) {
			w.stopBiggest(heapBytes(), vm.opts.MaxTotalMemory)
		}
	}
}

// stopBiggest trips, when heap is over the process's budget even after a
// collection, the execution that has seen the heap grow most: it started
// when the heap was smallest.
func (w *watchdog) stopBiggest(heap, limit uint64) {
	if heap <= limit {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var biggest *execution
	for ex := range w.active {
		if biggest == nil || ex.heapBase < biggest.heapBase {
			biggest = ex
		}
	}
	if biggest != nil {
		biggest.trip(&LimitError{Limit: MemoryLimit, Detail: fmt.Sprintf("the process heap is %s, over the %s all executions share", mib(heap), mib(limit))})
	}
}

// checkLimits trips ex if its caller gave up or it passed a limit.
func (ex *execution) checkLimits(now time.Time, heap uint64) {
	opts := &ex.vm.opts
	switch {
	case ex.caller.Err() != nil:
		ex.cancel(ex.caller.Err())
	case now.UnixNano() > ex.deadline:
		ex.trip(&LimitError{Limit: TimeLimit, Detail: opts.Timeout.String()})
	case heap > ex.heapBase+opts.MaxMemory:
		ex.trip(&LimitError{Limit: MemoryLimit, Detail: fmt.Sprintf("heap grew by more than %s", mib(opts.MaxMemory))})
	}
}

// checkLimitsNow runs the watchdog's check for ex at once, if it is
// watched, without the watchdog's lock: senders on every core would
// queue for it.
func (ex *execution) checkLimitsNow() {
	if ex.deadline == 0 {
		return
	}
	now := time.Now()
	ex.checkLimits(now, recentHeap(now))
}
