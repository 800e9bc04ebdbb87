// Package vm runs behaviour stored in the image: objects are Starlark
// values, methods are Starlark source in slots, and a message send looks
// its selector up in the receiver and then, depth-first, in its parents.
//
// # Objects
//
// Reading obj.name finds the slot in obj or in a parent (slots whose name
// ends in "*"); a method slot yields a callable bound to obj as self, a
// primitive slot a Go function. Assigning obj.name = v writes obj's own
// slot. Reading a name nothing in the chain has is an error (getattr
// with a default answers the default, hasattr False); calling it,
// obj.name(...), sends it as a message, which asks the
// doesNotUnderstand [Handler].
//
// A send ([VM.Send], send(obj, "name", ...)) is as in Self: a method or
// primitive slot is called with the arguments, a data slot answers its
// value (and takes no arguments), and a name nothing understands goes
// to the doesNotUnderstand handler.
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
// # REPL sessions
//
// [VM.Eval] hands back the globals its input left as image values
// (Result.Globals), so a REPL can bind them again in its next input. A
// function cannot be carried that way (it can be neither stored nor kept
// past its execution's transaction): Result.Defs carries the source of
// each top-level def and name = lambda instead, and [VM.EvalAfter] runs
// those definitions, each as a chunk of its own, before the next input,
// evaluating their default values again. What neither carries (a set, a
// bound method, a function made inside another) is named in
// Result.Dropped.
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
// Memory is bounded where it is allocated. Code is rewritten before it
// is compiled (guard.go) so that the operations that can allocate far
// more than their operands hold (repetition, concatenation, % and
// format, join, replace, split, extend, int products, slices) call
// guards; so does indexing by anything but a literal (x[k]), because
// Starlark's "key not in dict" error prints the whole key in one step (a
// shared tuple key prints exponentially large): the guard cuts the key
// short at 1 KiB. That costs about 170 ns per such index. And
// the built-ins that materialise or print (list, tuple, dict, set,
// sorted, enumerate, zip, reversed, str, repr, print, fail, int,
// getattr, json's functions) are replaced by guarded ones. A guard
// estimates the result's size and reserves it before allocating: the
// heap may grow by at most MaxMemory while the execution runs, and the
// process's heap, every execution of every VM together, may not pass
// MaxTotalMemory. Over either, after one garbage collection, the
// operation fails with a MemoryLimit error at its line; when an
// execution stops at the memory limit its garbage is returned to the
// operating system (at most once a second). The watchdog still samples
// the heap every few milliseconds, for what no guard sees.
//
// A built-in that iterates a whole iterable in one step (list, tuple,
// sorted, reversed, set, dict, enumerate, zip, min, max, any, all,
// str.join, list.extend, +=, update, union) is refused up front, with a
// StepLimit error, when the iterable's length passes the steps the
// execution has left; one without a length (s.codepoints()) is made a
// list by the guard first, which reserves its memory, counts its
// elements against the steps left and looks at the time limit every few
// thousand elements; any and all are the guards' own loops, which do
// the same and still stop early.
//
// The VM prints values itself, without recursion and looking at the time
// limit as it goes, and refuses to print values nested more than 1000
// levels deep (NestingLimit); it stores none, and json.encode encodes
// none, deeper than the image holds (100 levels). Tuple displays with
// elements that are not constants, + and * of tuples, tuple, zip,
// enumerate and dict.items refuse to make a tuple nested more than 1000
// levels deep in tuples (NestingLimit), which Starlark would hash by
// recursing on the Go stack; so does the tuple a def's *args packs.
// Converting a value to an image value (to store it in a slot, to hand
// an Eval's globals back) expands what it shares, since the image shares
// nothing: it is counted first, under the execution's limits, and
// refused past what a record (64 MiB) or, for an Eval's globals all
// together, a reply could hold, a value to a byte, or past the memory
// an execution may use (a MemoryLimit error, or ReplyLimit for
// globals), before anything is converted.
// An execution's result is bounded by MaxResult as a reply carries it
// (value, repr and output): output past it is dropped, and a result past
// it is a ReplyLimit error, the one limit error after which the caller
// may still commit the execution's changes.
//
// What the limits cannot do, since they run in the same process as the
// code: the time limit stops Starlark between steps, so one built-in call
// that runs long by itself (sorting a huge list, hashing a tuple that
// shares its parts: a = (a, a) 31 levels deep is 2^31 hashes, 25 s in
// one step) overruns it until it returns; the tuple a lambda's *args
// packs (lambda *a: a) is not checked, so a loop of such calls can
// still nest a tuple deeper than 1000 levels (a call per level: the
// step limit bounds it to a few million, which hashing may not
// survive); an allocation no guard sizes (a
// comprehension, many small values) is seen only by the
// watchdog, after it is made; sizes are estimates of the results, not of
// what the runtime keeps besides; and memory is the process's heap, so
// an execution running beside one that hogs memory can be stopped with
// it. A worker process per execution would remove all of these; so far
// it is not needed.
//
// # Telemetry
//
// With Options.Telemetry set, every execution of a method slot, sent from
// Go or from another method, is counted in memory: per method (the
// object owning the slot and the selector) and per version of its source
// (a replaced method starts new counts), its calls, its failures by kind
// (the method's code, a limit, the caller giving up, a message nothing
// understood), its latency in quarter-octave buckets and its Starlark
// steps. Primitives and built-ins are not counted. A few real calls are
// kept as samples for replay, at most 16 that succeeded and 16 that
// failed per method for the Telemetry's lifetime, distinct by their
// receiver and arguments, each at most 4 KiB encoded; calls whose values
// cannot be stored are not sampled, nor calls the caller cancelled. Only
// the first 64 calls of each outcome, and every 256th after, are
// considered, their arguments converted once the outcome is known; but
// arguments holding a list or a dict, which the method could change, are
// converted before the call, for the method's first 64 calls and every
// 256th after. So most calls cost a map lookup, two clock readings and a
// few counter updates, and sampling changes nothing the execution does.
// Drain hands what was counted to whoever persists it; Restore gives it
// back when that fails.
package vm
