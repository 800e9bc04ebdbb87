package image

import (
	"errors"
	"fmt"

	"batos/internal/store"
)

// Sentinel errors. Callers test for them with errors.Is.
var (
	// ErrIntRange is returned when an integer does not fit in an [Int]
	// (64-bit signed).
	ErrIntRange = errors.New("image: integer does not fit in 64 bits")
	// ErrUnhashable is returned when a value that is not hashable (see
	// [Hashable]) is used as a dict key.
	ErrUnhashable = errors.New("image: unhashable dict key")
	// ErrInvalid is returned when encoding a value that has no encoding:
	// a nil Value, a reference to OID 0, a negative blob size, a dict key
	// mutated after insertion.
	ErrInvalid = errors.New("image: invalid value")
	// ErrTooDeep is returned when a value nests containers deeper than
	// [MaxDepth].
	ErrTooDeep = errors.New("image: value nested too deeply")
	// ErrSlotName is returned for a slot name that is empty, longer than
	// [MaxSlotName] bytes, not valid UTF-8, or repeated within an object.
	ErrSlotName = errors.New("image: invalid slot name")
	// ErrUnsupported is returned by [ValueOf] for a Go type it cannot
	// convert.
	ErrUnsupported = errors.New("image: unsupported Go type")
	// ErrDecode is wrapped by every error from decoding a value or an
	// object state: the bytes are corrupt or not canonical.
	ErrDecode = errors.New("image: decode")
)

// intRangeError names the integer that did not fit; it is an
// [ErrIntRange].
type intRangeError struct{ n string }

func (e intRangeError) Error() string {
	return "image: integer " + e.n + " does not fit in 64 bits"
}

func (e intRangeError) Unwrap() error { return ErrIntRange }

// TooLargeError reports an object that encodes to more than one record
// holds (store.MaxRecordSize): nothing of it was stored. It matches
// [ErrInvalid] and store.ErrTooLarge.
type TooLargeError struct {
	// Object names the object ("oid:3 (genesis)"), "" when the value was
	// encoded outside one; Slot is the slot whose value went over.
	Object, Slot string
	// Size is how many bytes the encoding had reached when it went over:
	// the record would be at least as big.
	Size int
}

func (e *TooLargeError) Error() string {
	where := "a value"
	switch {
	case e.Object != "" && e.Slot != "":
		where = fmt.Sprintf("%s, slot %q,", e.Object, e.Slot)
	case e.Slot != "":
		where = fmt.Sprintf("slot %q", e.Slot)
	}
	return fmt.Sprintf("image: %s is too large to store: it encodes to at least %d bytes, and an object's record holds at most %d bytes (%d MiB)",
		where, e.Size, store.MaxRecordSize, store.MaxRecordSize>>20)
}

func (e *TooLargeError) Unwrap() []error { return []error{ErrInvalid, store.ErrTooLarge} }

// Errors of the object layer.
var (
	// ErrReadOnly is returned when a read-only transaction (View) tries
	// to change an object.
	ErrReadOnly = errors.New("image: read-only transaction")
	// ErrTxDone is returned when a transaction is used after its function
	// returned.
	ErrTxDone = errors.New("image: transaction already finished")
	// ErrNotObject is returned when a value that is not a reference is
	// dereferenced.
	ErrNotObject = errors.New("image: not an object reference")
	// ErrDangling is returned when a commit would store a reference to an
	// object that does not exist.
	ErrDangling = errors.New("image: reference to a missing object")
	// ErrNoRoot is returned when the image has no root object (it was
	// never initialised).
	ErrNoRoot = errors.New("image: no root object (run batos image init)")
)
