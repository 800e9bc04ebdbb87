package vm

import (
	"fmt"

	"go.starlark.net/starlark"
)

// Iteration in one step. A built-in that iterates a whole iterable (list,
// sorted, max, any, str.join, ...) does it in one Starlark step, which
// neither the step limit nor the time limit interrupts: max(range(1 <<
// 40)) would run for hours. And an iterable without a length
// (s.codepoints()) cannot be sized before it is made into a container.
// So the guarded built-ins and methods that iterate an argument first
// refuse, with a StepLimit error, one whose length passes the steps the
// execution has left (an element a step), and make one without a length
// into a list themselves (drain), looking at the limits as they go,
// before the real built-in sizes and takes it. any and all, which may
// stop early, are the guards' own loops.

// drainCheckEvery is how many elements drain and the loops of any and
// all take between looks at the limits.
const drainCheckEvery = 4096

// stepsLeft is how many steps thread's execution has left.
func stepsLeft(ex *execution) uint64 {
	steps, limit := ex.thread.ExecutionSteps(), ex.vm.opts.MaxSteps
	if steps >= limit {
		return 0
	}
	return limit - steps
}

// tooManySteps is the StepLimit error of a call of name iterating n
// elements (or more, when more).
func tooManySteps(ex *execution, name string, n uint64, more bool) error {
	what := fmt.Sprintf("%d elements", n)
	if more {
		what = "more than " + what
	}
	return &LimitError{Limit: StepLimit, Detail: fmt.Sprintf("%s iterates %s in one step, more than the %d steps the execution has left of %d", name, what, stepsLeft(ex), ex.vm.opts.MaxSteps)}
}

// boundIterables checks the iterables among args that the call of name
// iterates, and returns args with those that have no length made into
// lists.
func boundIterables(thread *starlark.Thread, name string, args starlark.Tuple) (starlark.Tuple, error) {
	ex := executionOf(thread)
	if ex == nil {
		return args, nil
	}
	out := args
	for i, a := range args {
		it, ok := a.(starlark.Iterable)
		if !ok {
			continue
		}
		if _, ok := a.(starlark.String); ok {
			continue
		}
		n := starlark.Len(a)
		if n >= 0 {
			if uint64(n) > stepsLeft(ex) {
				return nil, tooManySteps(ex, name, uint64(n), false)
			}
			continue
		}
		l, err := ex.drain(name, it)
		if err != nil {
			return nil, err
		}
		if &out[0] == &args[0] {
			out = append(starlark.Tuple(nil), args...)
		}
		out[i] = l
	}
	return out, nil
}

// drain makes the elements of it, which has no length, into a list,
// reserving memory for them, looking at the time limit and
// cancellation, and counting them against the steps left, every
// drainCheckEvery elements.
func (ex *execution) drain(name string, it starlark.Iterable) (*starlark.List, error) {
	iter := it.Iterate()
	defer iter.Done()
	left := stepsLeft(ex)
	var elems []starlark.Value
	var x starlark.Value
	for iter.Next(&x) {
		elems = append(elems, x)
		if len(elems)%drainCheckEvery != 0 {
			continue
		}
		if err := ex.iterationCheck(name, uint64(len(elems)), left); err != nil {
			return nil, err
		}
		held, err := ex.reserve(drainCheckEvery * (slotSize + boxedSize))
		release(held)
		if err != nil {
			return nil, err
		}
	}
	return starlark.NewList(elems), nil
}

// iterationCheck is the look at the limits every drainCheckEvery
// elements: n elements taken with left steps left.
func (ex *execution) iterationCheck(name string, n, left uint64) error {
	if n > left {
		return tooManySteps(ex, name, left, true)
	}
	return ex.stopped()
}

// iterating wraps the sizer of a built-in that iterates its first
// argument (every argument, for zip; only a lone one, for min and max)
// with boundIterables.
func iterating(name string, size argsSizer) argsSizer {
	return func(thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, error) {
		var err error
		switch {
		case name == "zip":
			args, err = boundIterables(thread, name, args)
		case (name == "min" || name == "max") && len(args) != 1:
		case len(args) > 0:
			var first starlark.Tuple
			first, err = boundIterables(thread, name, args[:1])
			if err == nil && first[0] != args[0] {
				args = append(starlark.Tuple{first[0]}, args[1:]...)
			}
		}
		if err != nil {
			return 0, nil, err
		}
		if size == nil {
			return 0, args, nil
		}
		return size(thread, args, kwargs)
	}
}

// guardedAnyAll is any or all: Starlark's loop, looking at the limits
// every drainCheckEvery elements.
func guardedAnyAll(name string) *starlark.Builtin {
	real := starlark.Universe[name].(*starlark.Builtin)
	want := name == "any"
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		ex := executionOf(thread)
		it, ok := starlark.Iterable(nil), false
		if len(args) == 1 && len(kwargs) == 0 {
			it, ok = args[0].(starlark.Iterable)
		}
		if ex == nil || !ok {
			return real.CallInternal(thread, args, kwargs)
		}
		iter := it.Iterate()
		defer iter.Done()
		left := stepsLeft(ex)
		var x starlark.Value
		for n := uint64(1); iter.Next(&x); n++ {
			if bool(x.Truth()) == want {
				return starlark.Bool(want), nil
			}
			if n%drainCheckEvery == 0 {
				if err := ex.iterationCheck(name, n, left); err != nil {
					return nil, tripped(thread, err)
				}
			}
		}
		return starlark.Bool(!want), nil
	})
}
