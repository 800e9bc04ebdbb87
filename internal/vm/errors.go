package vm

import (
	"errors"
	"fmt"
	"strings"

	"batos/internal/store"
)

// noMindText is what every error of ErrNoMind says, whatever needed the
// mind.
const noMindText = "no mind: no inference server has answered yet"

// ErrNoMind is returned when a message nothing understands, or a command,
// needs a mind and there is none: no inference server has answered yet.
// Every such error reads "<what could not be done>: no mind: no inference
// server has answered yet", then, in parentheses, why the server asked
// did not answer, if one was (NoMindError, NotUnderstoodError), so the
// same failure reads the same whatever needed the mind.
var ErrNoMind = errors.New("vm: " + noMindText)

// NoMindError is ErrNoMind for one thing that needed a mind.
type NoMindError struct {
	// Doing is what could not be done, as "cannot ..." continues it:
	// "retry cycle 3".
	Doing string
	// Why is why the inference server asked did not answer, or "" when
	// none was asked.
	Why string
}

func (e *NoMindError) Error() string {
	return "cannot " + e.Doing + ": " + noMindText + why(e.Why)
}

func (e *NoMindError) Unwrap() error { return ErrNoMind }

// why is the reason a server did not answer, as the aside ending a
// no-mind error, or "".
func why(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}

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

// NotUnderstoodError is the answer to a message nothing understands when
// there is no mind to learn it (ErrNoMind).
type NotUnderstoodError struct {
	Receiver string // e.g. "oid:2 (genesis)"
	Selector string
	// Why is why the inference server asked did not answer, or "" when
	// none was asked.
	Why string
}

func (e *NotUnderstoodError) Error() string {
	return fmt.Sprintf("vm: %s does not understand %q, and cannot learn it: %s%s", e.Receiver, e.Selector, noMindText, why(e.Why))
}

func (e *NotUnderstoodError) Unwrap() error { return ErrNoMind }
