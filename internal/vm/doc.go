// Package vm runs behaviour stored in the image: objects are Starlark
// values, methods are Starlark source in slots, and a message send looks
// its selector up in the receiver and then, depth-first, in its parents.
//
// # Objects
//
// Reading obj.name finds the slot in obj or in a parent (slots whose name
// ends in "*"); a method slot yields a callable bound to obj as self, a
// primitive slot a Go function. Assigning obj.name = v writes obj's own
// slot. A name nothing in the chain has yields a pending message: calling
// it asks the doesNotUnderstand [Handler].
//
// Containers read from slots are Starlark lists, dicts and tuples; changes
// made to them in an Update are written back to their slots when the
// execution ends. In a read-only execution they are frozen.
//
// # Methods
//
// A method's source defines exactly one function, named like its slot,
// whose first parameter is self. It is compiled once per source and name
// and cached; method code has no file, network or process access, only the
// built-ins this package hands it.
//
// # Limits
//
// Every execution has a step limit, a wall-time limit and a memory limit
// (each cancels the thread), and sends have a call-depth limit. Hitting one
// fails the execution with a *LimitError saying which and where; the
// caller's transaction then rolls back. Go code an execution calls
// (primitives, the doesNotUnderstand handler) gets a context that ends
// when a limit trips.
//
// What the limits cannot do, since they run in the same process as the
// code: the time limit stops Starlark between steps, so one built-in call
// that runs long by itself (sorting or printing a huge value) overruns it
// until it returns; and memory is the process's heap, so an execution
// running beside one that hogs memory can be stopped with it. A worker
// process per execution would remove both; so far it is not needed.
package vm
