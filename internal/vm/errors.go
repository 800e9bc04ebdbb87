package vm

import (
	"errors"
	"fmt"
	"strings"

	"batos/internal/store"
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
	// NestingLimit: a value nested too deep to print or to store.
	NestingLimit
	// ReplyLimit: the execution finished, but its result is too big (or
	// too deep) to return. Unlike the others it is no reason to roll the
	// execution's changes back: a caller may commit them, and then sets
	// the error's TID.
	ReplyLimit
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
	case NestingLimit:
		return "nesting limit"
	case ReplyLimit:
		return "reply limit"
	}
	return fmt.Sprintf("Limit(%d)", int(l))
}

// LimitError reports an execution stopped by a limit, or, for
// ReplyLimit, a result too big to return.
type LimitError struct {
	Limit     Limit
	Detail    string // e.g. "10000000 steps"
	Backtrace string // where it was hit
	// TID, for ReplyLimit, is the transaction that saved the execution's
	// changes, 0 if none did.
	TID store.TID
}

func (e *LimitError) Error() string {
	msg := fmt.Sprintf("vm: %s exceeded (%s)", e.Limit, e.Detail)
	if e.TID != 0 {
		msg += fmt.Sprintf("; the transaction committed as TID %s: its changes are saved", e.TID)
	}
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

// SyntaxError reports code that does not parse, or names what is not
// defined, at a line and column (both from 1). An Error wraps it.
type SyntaxError struct {
	Line, Col int
	Msg       string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("syntax error at line %d, column %d: %s", e.Line, e.Col, e.Msg)
}

// NotUnderstoodError is the default handler's answer.
type NotUnderstoodError struct {
	Receiver string // e.g. "oid:2 (genesis)"
	Selector string
}

func (e *NotUnderstoodError) Error() string {
	return fmt.Sprintf("vm: %s does not understand %q, and no mind is configured to learn it", e.Receiver, e.Selector)
}

func (e *NotUnderstoodError) Unwrap() error { return ErrNoMind }
