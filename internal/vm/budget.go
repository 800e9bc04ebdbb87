package vm

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.starlark.net/starlark"
)

// Memory budgets. An operation that can allocate much in one step (a
// repetition, a concatenation, a join, a conversion of a range to a list:
// see guard.go) estimates what it is about to allocate and asks reserve
// first. Reserve compares the heap as it is plus the estimate against two
// budgets: the execution's (the heap may grow by at most MaxMemory while
// it runs) and the process's (the heap, with what other executions have
// reserved and not yet allocated, may not pass MaxTotalMemory). Over
// either, it collects garbage once (collections are spaced: it may wait
// for its turn) and looks again, and otherwise refuses with a
// *LimitError before anything is allocated.
//
// Small allocations are not looked at one by one: those under
// ignoreBelow not at all (the watchdog sees them), those under
// reserveFrom counted, and every checkEvery bytes counted the heap is
// checked as it stands.
const (
	ignoreBelow = 4 << 10
	reserveFrom = 256 << 10
	checkEvery  = 1 << 20

	// minCollectInterval spaces the garbage collections a refusal
	// forces; minFreeInterval spaces the returns of memory to the OS
	// after a memory limit tripped.
	minCollectInterval = 100 * time.Millisecond
	minFreeInterval    = time.Second
)

// process is what every execution of every VM shares: the heap is one.
var process struct {
	mu       sync.Mutex // guards reserved
	reserved uint64     // bytes reserved by operations still allocating them

	gcMu        sync.Mutex // guards lastGC and lastFree; held while collecting
	gcSeq       atomic.Uint64
	lastGC      time.Time
	lastFree    time.Time
	freePending atomic.Bool // a return to the OS was put off
}

// reserve checks that n bytes the current operation of thread's execution
// is about to allocate fit the budgets, and holds them against the
// process's budget: the caller calls release with what it returns once
// the allocation is made. Outside an execution it allows everything.
func reserve(thread *starlark.Thread, n uint64) (uint64, error) {
	if n < ignoreBelow {
		return 0, nil
	}
	ex := executionOf(thread)
	if ex == nil {
		return 0, nil
	}
	return ex.reserve(n)
}

func (ex *execution) reserve(n uint64) (uint64, error) {
	if ex == nil || n < ignoreBelow {
		return 0, nil
	}
	if n < reserveFrom {
		ex.counted += n
		if ex.counted < checkEvery {
			return 0, nil
		}
		// What was counted is in the heap already: check it as it is.
		ex.counted = 0
		n = 0
	}
	opts := &ex.vm.opts
	if n > opts.MaxMemory || n > opts.MaxTotalMemory {
		return 0, &LimitError{Limit: MemoryLimit, Detail: fmt.Sprintf("one operation would allocate %s, over the %s an execution may use", mib(n), mib(min(opts.MaxMemory, opts.MaxTotalMemory)))}
	}
	for collected := false; ; collected = true {
		seq := process.gcSeq.Load()
		process.mu.Lock()
		err := ex.overBudget(heapBytes(), process.reserved, n)
		if err == nil {
			process.reserved += n
		}
		process.mu.Unlock()
		// Over, perhaps only because garbage is not collected yet:
		// look again after a collection.
		if err == nil {
			return n, nil
		}
		if collected || !collect(seq, true) {
			return 0, err
		}
	}
}

// release gives back what reserve held, once it is allocated (or not).
func release(n uint64) {
	if n == 0 {
		return
	}
	process.mu.Lock()
	process.reserved -= n
	process.mu.Unlock()
}

// overBudget reports whether n more bytes on a heap of heap bytes, with
// reserved bytes promised to other operations, would pass ex's budget or
// the process's.
func (ex *execution) overBudget(heap, reserved, n uint64) error {
	opts := &ex.vm.opts
	grown := heap + n - min(ex.heapBase, heap+n)
	if grown > opts.MaxMemory {
		return &LimitError{Limit: MemoryLimit, Detail: fmt.Sprintf("allocating %s would grow the heap by %s while this execution runs, over its %s", mib(n), mib(grown), mib(opts.MaxMemory))}
	}
	if total := heap + reserved + n; total > opts.MaxTotalMemory {
		return &LimitError{Limit: MemoryLimit, Detail: fmt.Sprintf("allocating %s would take the process heap to %s, over the %s all executions share", mib(n), mib(total), mib(opts.MaxTotalMemory))}
	}
	return nil
}

// collect runs the garbage collector, so that the heap's figure is live
// memory, unless one ran since seq was read (then the caller looks
// again). Collections are at least minCollectInterval apart: if one ran
// less than that ago, collect waits for the rest of the interval when
// wait is set, and otherwise does nothing. It reports whether the caller
// should look again.
func collect(seq uint64, wait bool) bool {
	process.gcMu.Lock()
	defer process.gcMu.Unlock()
	if process.gcSeq.Load() != seq {
		return true
	}
	if since := time.Since(process.lastGC); since < minCollectInterval {
		if !wait {
			return false
		}
		time.Sleep(minCollectInterval - since)
	}
	runtime.GC()
	process.lastGC = time.Now()
	process.gcSeq.Add(1)
	return true
}

// freeMemory returns the memory an execution stopped by the memory limit
// leaves behind to the operating system, at most once per
// minFreeInterval (a return put off is made after the next execution
// past the interval): the runtime would keep it for a long while.
func freeMemory() {
	process.gcMu.Lock()
	defer process.gcMu.Unlock()
	if time.Since(process.lastFree) < minFreeInterval {
		process.freePending.Store(true)
		return
	}
	process.freePending.Store(false)
	debug.FreeOSMemory()
	process.lastFree = time.Now()
	process.lastGC = process.lastFree
	process.gcSeq.Add(1)
}

// freeAfter frees memory after an execution that ended with err, if it
// was the memory limit or a return was put off.
func freeAfter(err error) {
	if le, ok := err.(*LimitError); (ok && le.Limit == MemoryLimit) || process.freePending.Load() {
		freeMemory()
	}
}

// mib formats a byte count for limit messages.
func mib(n uint64) string {
	if n >= 10<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
