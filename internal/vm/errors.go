package vm

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNoMind is returned by the default doesNotUnderstand handler.
var ErrNoMind = errors.New("vm: no mind is configured")

// ErrReadOnly is returned when a read-only execution tries to change an
// object.
var ErrReadOnly = errors.New("vm: read-only execution")

// Limit names a limit an execution can hit.
type Limit int

const (
	StepLimit Limit = iota + 1
	TimeLimit
	MemoryLimit
	DepthLimit
)

func (l Limit) String() string {
	switch l {
	case StepLimit:
		return "step limit"
	case TimeLimit:
		return "time limit"
	case MemoryLimit:
		return "memory limit"
	case DepthLimit:
		return "call-depth limit"
	}
	return fmt.Sprintf("Limit(%d)", int(l))
}

// LimitError reports an execution stopped by a limit.
type LimitError struct {
	Limit     Limit
	Detail    string // e.g. "10000000 steps"
	Backtrace string // where it was hit
}

func (e *LimitError) Error() string {
	msg := fmt.Sprintf("vm: %s exceeded (%s)", e.Limit, e.Detail)
	if e.Backtrace != "" {
		msg += "\n" + e.Backtrace
	}
	return msg
}

// Error is a failure of method code, with the Starlark backtrace (method
// names and line numbers).
type Error struct {
	Msg       string
	Backtrace string
	Err       error // the underlying error, if any
}

func (e *Error) Error() string {
	if e.Backtrace != "" {
		return e.Backtrace
	}
	if strings.HasPrefix(e.Msg, "vm: ") {
		return e.Msg
	}
	return "vm: " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// NotUnderstoodError is the default handler's answer.
type NotUnderstoodError struct {
	Receiver string // e.g. "oid:2 (genesis)"
	Selector string
}

func (e *NotUnderstoodError) Error() string {
	return fmt.Sprintf("vm: %s does not understand %q, and no mind is configured to learn it (batos run with an inference server learns it, and sends go through it; batos doctor says how to start one)", e.Receiver, e.Selector)
}

func (e *NotUnderstoodError) Unwrap() error { return ErrNoMind }
