package vm

import (
	"errors"
	"fmt"
	"sync"

	"go.starlark.net/starlark"
)

// threads keeps the Starlark threads of finished executions for the next
// ones: a thread comes with its call frames and its map of locals, which
// a fresh one would allocate on every send. A thread that was cancelled
// (a limit, the caller gone) is never reused: Starlark cannot take a
// cancellation back.
var threads = sync.Pool{New: func() any {
	return &starlark.Thread{Name: "batos", Print: threadPrint, Load: threadLoad, OnMaxSteps: threadMaxSteps}
}}

// takeThread returns a thread for ex, with no steps taken and ex's step
// limit.
func takeThread(ex *execution) *starlark.Thread {
	t := threads.Get().(*starlark.Thread)
	t.Steps = 0
	t.SetMaxExecutionSteps(ex.vm.opts.MaxSteps)
	t.SetLocal(execKey, ex)
	return t
}

// maxPooledSteps bounds the steps of an execution whose thread is
// pooled. A thread keeps the frames of the deepest call it made, and a
// call chain costs a step per call: a thread that took few steps holds
// little, while one that recursed deep, a hostile method's, is left to
// the collector rather than kept by the pool.
const maxPooledSteps = 4096

// releaseThread gives t back to the pool once its execution has stopped,
// if it can run another: reusable (never cancelled), with no call left on
// its stack, and small (maxPooledSteps).
func releaseThread(t *starlark.Thread, reusable bool) {
	if !reusable || t.CallStackDepth() != 0 || t.Steps > maxPooledSteps {
		return
	}
	t.SetLocal(execKey, nil)
	threads.Put(t)
}

func threadPrint(t *starlark.Thread, msg string) { executionOf(t).print(msg) }

func threadLoad(*starlark.Thread, string) (starlark.StringDict, error) {
	return nil, errors.New("load is not available to method code")
}

func threadMaxSteps(t *starlark.Thread) {
	ex := executionOf(t)
	ex.trip(&LimitError{Limit: StepLimit, Detail: fmt.Sprintf("%d steps", ex.vm.opts.MaxSteps)})
}
